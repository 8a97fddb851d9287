// What the map's text and dot formats share: nodes by id (this window's,
// then the baseline's, so a disappeared edge still names its ends), edges by
// key, and how a node and an edge's counts read. Internal to cli/format.
#pragma once

#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "cli/format/format.h"
#include "cli/format/look_format.h"
#include "node/look/map_types.h"

namespace flowmesh::map_format_internal {

class NodeIndex {
 public:
  explicit NodeIndex(const MapResult& r) {
    for (const MapNode& n : r.graph.nodes) by_id_.try_emplace(n.id, &n);
    if (r.baseline)
      for (const MapNode& n : r.baseline->nodes) by_id_.try_emplace(n.id, &n);
  }
  // Null for an id no graph has (an answer that cut one end away).
  const MapNode* Find(const std::string& id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
  }

 private:
  std::unordered_map<std::string, const MapNode*> by_id_;
};

inline std::string Safe(std::string_view s) { return WithoutTerminalControls(s); }

// "nginx.service on web-1", "203.0.113.9:443"; an unknown id as itself.
inline std::string NodeName(const NodeIndex& index, const std::string& id) {
  const MapNode* n = index.Find(id);
  if (n == nullptr) return Safe(id);
  // A balancer's label says so ("balancer 10.96.0.10:80", MapLabel).
  std::string s = Safe(n->label.empty() ? n->id : n->label);
  if (!n->host.empty()) s += " on " + Safe(n->host);
  return s;
}

// An edge's identity across windows (MapEdgeChange): from, to, endpoint.
inline std::string EdgeKey(const MapEdge& e) {
  return e.from + '\0' + e.to + '\0' + e.endpoint.ToString();
}

// "3 conns 1.2 KB", as look's tree counts an edge.
inline std::string Traffic(const FlowStats& s) {
  return FormatLookConns(s) + " " + FormatLookBytes(s.bytes_tx + s.bytes_rx);
}

// "x3.2", "x0.25": how a changed edge's traffic moved.
inline std::string Factor(double f) {
  char buf[32];
  std::snprintf(buf, sizeof buf, f >= 10 ? "x%.0f" : f >= 1 ? "x%.1f" : "x%.2f", f);
  return buf;
}

}  // namespace flowmesh::map_format_internal
