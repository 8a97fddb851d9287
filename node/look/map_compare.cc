// CompareMaps: what changed on the map's edges between two windows.
#include "node/look/map_compare.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <tuple>

namespace flowmesh {
namespace {

using Key = std::tuple<std::string, std::string, Endpoint>;

Key KeyOf(const MapEdge& e) { return {e.from, e.to, e.endpoint}; }

uint64_t Bytes(const FlowStats& s) { return s.bytes_tx + s.bytes_rx; }

// How long a window is, or 0 when it is open at either end (its length is
// not what the counts were gathered over).
double Length(const TimeWindow& w) {
  if (w.since_ns <= 0 || w.until_ns == std::numeric_limits<int64_t>::max()) return 0;
  return w.until_ns > w.since_ns ? static_cast<double>(w.until_ns - w.since_ns) : 0;
}

// after / before of one measure, `after` already scaled to the baseline's
// window length. A zero baseline counts as one: from nothing to N is a
// factor of N, held to the same factor as any other change (0 -> 1
// connection is not news; 0 -> 1 MB is), and finite (the JSON has no
// infinity). Both zero: no signal.
std::optional<double> Ratio(double before, double after) {
  if (before == 0 && after == 0) return std::nullopt;
  return after / std::max(before, 1.0);
}

// How far a ratio is from 1 either way: 4 and 0.25 are as far.
double Distance(double ratio) { return ratio == 0 ? HUGE_VAL : std::max(ratio, 1 / ratio); }

// The ratio of connections or of bytes moved, whichever moved further from
// 1, or none when neither passed the factor. Both count: 100 -> 101
// connections carrying 1 MB -> 1 GB changed. `scale` is the baseline's
// window length over this one's (a 1h baseline against a 10m window).
std::optional<double> Change(const FlowStats& before, const FlowStats& after, double factor,
                             double scale) {
  if (factor < 1) factor = 1 / factor;  // 0.5 means what 2 does
  std::optional<double> best;
  for (auto [b, a] : {std::pair<double, double>(before.active(), after.active()),
                      std::pair<double, double>(Bytes(before), Bytes(after))}) {
    std::optional<double> r = Ratio(b, a * scale);
    if (!r || Distance(*r) <= factor) continue;
    if (!best || Distance(*r) > Distance(*best)) best = r;
  }
  return best;
}

}  // namespace

std::vector<MapEdgeChange> CompareMaps(const MapGraph& baseline, const MapGraph& now,
                                       double factor) {
  if (!(factor > 0)) factor = 2;
  const double before_ns = Length(baseline.window), now_ns = Length(now.window);
  const double scale = before_ns > 0 && now_ns > 0 ? before_ns / now_ns : 1;
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
    if (std::optional<double> ratio = Change(was->second->stats, e->stats, factor, scale))
      changed.push_back({MapChangeKind::kChanged, *e, was->second->stats, *ratio});
  }
  for (const auto& [key, e] : before)
    if (!after.count(key)) disappeared.push_back({MapChangeKind::kDisappeared, *e, e->stats, 0});
  std::vector<MapEdgeChange> out = std::move(appeared);
  out.insert(out.end(), disappeared.begin(), disappeared.end());
  out.insert(out.end(), changed.begin(), changed.end());
  return out;
}

std::vector<MapEdgeChange> ChangesWithin(std::vector<MapEdgeChange> changes,
                                         const MapGraph& now_cut, const MapGraph& baseline_cut) {
  std::set<std::string> kept;
  for (const MapGraph* g : {&now_cut, &baseline_cut})
    for (const MapNode& n : g->nodes) kept.insert(n.id);
  std::erase_if(changes, [&](const MapEdgeChange& c) {
    return !kept.contains(c.edge.from) || !kept.contains(c.edge.to);
  });
  return changes;
}

}  // namespace flowmesh
