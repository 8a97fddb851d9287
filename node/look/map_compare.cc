// CompareMaps: what changed on the map's edges between two windows.
#include "node/look/map_compare.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

namespace flowmesh {
namespace {

using Key = std::tuple<std::string, std::string, Endpoint>;

Key KeyOf(const MapEdge& e) { return {e.from, e.to, e.endpoint}; }

uint64_t Bytes(const FlowStats& s) { return s.bytes_tx + s.bytes_rx; }

// after/before, or none when the edge did not change enough to show.
std::optional<double> Change(const FlowStats& before, const FlowStats& after, double factor) {
  double ratio;
  if (before.active() != after.active()) {
    if (before.active() == 0) return static_cast<double>(after.active());
    ratio = static_cast<double>(after.active()) / static_cast<double>(before.active());
  } else {
    if (Bytes(before) == 0) return std::nullopt;
    ratio = static_cast<double>(Bytes(after)) / static_cast<double>(Bytes(before));
  }
  if (factor < 1) factor = 1 / factor;  // 0.5 means what 2 does
  if (ratio > factor || ratio < 1 / factor) return ratio;
  return std::nullopt;
}

}  // namespace

std::vector<MapEdgeChange> CompareMaps(const MapGraph& baseline, const MapGraph& now,
                                       double factor) {
  if (!(factor > 0)) factor = 2;
  std::map<Key, const MapEdge*> before;
  for (const MapEdge& e : baseline.edges) before.emplace(KeyOf(e), &e);
  std::map<Key, const MapEdge*> after;
  for (const MapEdge& e : now.edges) after.emplace(KeyOf(e), &e);

  std::vector<MapEdgeChange> appeared, disappeared, changed;
  for (const auto& [key, e] : after) {
    auto was = before.find(key);
    if (was == before.end()) {
      appeared.push_back({MapChangeKind::kAppeared, *e, std::nullopt, 0});
      continue;
    }
    if (std::optional<double> ratio = Change(was->second->stats, e->stats, factor))
      changed.push_back({MapChangeKind::kChanged, *e, was->second->stats, *ratio});
  }
  for (const auto& [key, e] : before)
    if (!after.count(key)) disappeared.push_back({MapChangeKind::kDisappeared, *e, e->stats, 0});
  std::vector<MapEdgeChange> out = std::move(appeared);
  out.insert(out.end(), disappeared.begin(), disappeared.end());
  out.insert(out.end(), changed.begin(), changed.end());
  return out;
}

}  // namespace flowmesh
