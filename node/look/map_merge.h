// The map's merge (DESIGN.md "The map and the page"): every member's part
// (MemberMap) into one graph at the asking node, and the cut around a host
// or a workload. Pure functions: no I/O, no clock.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "node/look/look.h"
#include "node/look/map_types.h"
#include "node/look/remote_directory.h"

namespace flowmesh {

// One member's answer to a map query, or why there is none ("no answer from
// app-2 in 2s", "dead: not asked", "meshd without map").
struct MemberAnswer {
  std::string member;
  Result<MemberMap> map = MemberMap{};
  uint64_t bytes = 0;      // its answer's size on the wire (0: answered here)
  int64_t latency_ns = 0;  // query sent to answer decoded
  // Set: the answer came but was not read (the map's byte budget was
  // spent); the member shows truncated, with this as its error.
  std::string unread;
};

// `members` as look has them (this node included); `answers` one per member
// asked or not (a member without one counts as not asked; a repeated one is
// read once). Nodes by id, edges by (from, to, endpoint), members by name.
MapGraph MergeMap(const std::vector<LookMember>& members, const std::vector<MemberAnswer>& answers,
                  GroupBy group_by, TimeWindow window);

// The nodes on `host` and/or whose label, unit, container or pod name, comm,
// id or endpoint contains `workload` (both set: both must hold), and those
// within `depth` edges of them either way, with the edges among them.
// Members are kept whole. Neither set: the graph as it is. No seed: no
// nodes, no edges (CutMiss says why).
MapGraph CutMap(const MapGraph& graph, const std::string& host, const std::string& workload,
                int depth);
// "no node matches --host web-9 --workload foo (of 12 nodes); ..." for a cut
// that kept nothing, else "".
std::string CutMiss(const MapGraph& whole, const MapGraph& cut, const std::string& host,
                    const std::string& workload);

// What the map shows first for a process group (MapNode.label).
std::string MapLabel(const ProcessDetails& p, GroupBy group_by);

}  // namespace flowmesh
