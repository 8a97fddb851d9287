// Look's queries between nodes (schema/query.capnp): one request carries
// every question the origin has for a node at one level of the walk, one
// response every answer. Decoding checks the size against a cap before
// anything is allocated and reads with tight ReaderOptions; a malformed
// message is an error the caller counts and drops.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/look/look.h"

namespace flowmesh {

// What one node is asked: the window and its questions (their `node` is not
// sent: the receiver is the node).
struct QueryBatch {
  TimeWindow window;
  std::vector<LookQuestion> questions;
};

// Under the mesh's exchange cap (4 MiB) with room for its envelope.
constexpr size_t kMaxQueryBytes = (4u << 20) - 4096;

Result<std::vector<uint8_t>> EncodeQuery(const QueryBatch& batch);
Result<QueryBatch> DecodeQuery(std::span<const uint8_t> bytes);
// An answer whose status is not ok travels as its message.
Result<std::vector<uint8_t>> EncodeAnswers(const std::vector<LookAnswer>& answers);
// `kinds` are the questions asked, in order: they say which part of each
// answer to read, and the count must match.
Result<std::vector<LookAnswer>> DecodeAnswers(std::span<const uint8_t> bytes,
                                              const std::vector<LookQuestion>& asked);

}  // namespace flowmesh
