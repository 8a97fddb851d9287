// The map's member query and answer between nodes (schema/query.capnp
// NodeQuery.map, NodeAnswer.map), read with look_wire's bounded reader: a
// malformed, oversized or over-long answer is an error, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "node/common/status.h"
#include "node/look/look.h"

namespace flowmesh {

// "Your part of the map in this window, grouped so."
struct MapAsk {
  TimeWindow window;
  GroupBy group_by = GroupBy::kWorkload;
};

Result<std::vector<uint8_t>> EncodeMapQuery(const TimeWindow& w, GroupBy group_by);
// nullopt: the envelope holds no map query (a look query: LookService
// answers it as it always did).
Result<std::optional<MapAsk>> DecodeMapQuery(std::span<const uint8_t> bytes);

// An error travels as its message (the asker shows it as that member's
// failure). A map over the wire cap loses its quietest entries until it fits,
// and says `truncated`.
Result<std::vector<uint8_t>> EncodeMapAnswer(const Result<MemberMap>& answer);
// An answer without `map` is from a meshd without map (it read the query as
// an empty look); more than kMaxMapEntries entries or kMaxMemberMapEdges edges is
// malformed.
Result<MemberMap> DecodeMapAnswer(std::span<const uint8_t> bytes);

// What DecodeMapAnswer says of a member whose meshd has no map: the merge
// and the counters tell it apart from a failure by this text.
inline constexpr const char* kNoMapError = "meshd without map";

}  // namespace flowmesh
