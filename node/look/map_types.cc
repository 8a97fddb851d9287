// The names of map node kinds and edge changes, as every output spells them.
#include "node/look/map_types.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "node/common/clock.h"
#include "node/common/duration.h"
#include "node/look/look_query_text.h"

namespace flowmesh {

std::string_view MapNodeKindName(MapNodeKind k) {
  switch (k) {
    case MapNodeKind::kWorkload:
      return "workload";
    case MapNodeKind::kBalancer:
      return "balancer";
    case MapNodeKind::kExternal:
      return "external";
  }
  return "workload";
}

Result<MapNodeKind> ParseMapNodeKind(std::string_view text) {
  for (MapNodeKind k : {MapNodeKind::kWorkload, MapNodeKind::kBalancer, MapNodeKind::kExternal})
    if (MapNodeKindName(k) == text) return k;
  return InvalidArgument("unknown map node kind '" + std::string(text) +
                         "' (workload, balancer, external)");
}

std::string_view MapChangeKindName(MapChangeKind k) {
  switch (k) {
    case MapChangeKind::kAppeared:
      return "appeared";
    case MapChangeKind::kDisappeared:
      return "disappeared";
    case MapChangeKind::kChanged:
      return "changed";
  }
  return "changed";
}

Result<MapQuery> ParseMapQueryText(const MapQueryText& t, int64_t now_ns) {
  MapQuery q;
  FM_ASSIGN_OR_RETURN(q.window, ParseWindowText("--since", t.since.empty() ? "1h" : t.since,
                                                "--until", t.until, now_ns));
  if (!t.compare_to.empty() && (!t.baseline_since.empty() || !t.baseline_until.empty()))
    return InvalidArgument(
        "--compare-to and --baseline-since/--baseline-until both name a baseline; give one");
  if (!t.compare_to.empty()) {
    Result<std::chrono::milliseconds> back = ParseDuration(t.compare_to);
    if (!back.ok()) return back.status().WithContext("--compare-to");
    if (back->count() == 0) return InvalidArgument("--compare-to: must be more than 0");
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*back).count();
    q.baseline = TimeWindow{q.window.since_ns - ns, q.window.until_ns - ns};
  } else if (!t.baseline_since.empty()) {
    FM_ASSIGN_OR_RETURN(q.baseline, ParseWindowText("--baseline-since", t.baseline_since,
                                             "--baseline-until", t.baseline_until, now_ns));
  } else if (!t.baseline_until.empty()) {
    return InvalidArgument("--baseline-until needs --baseline-since");
  }
  if (!t.change_factor.empty()) {
    char* end = nullptr;
    double f = std::strtod(t.change_factor.c_str(), &end);
    if (end == t.change_factor.c_str() || *end != '\0' || !std::isfinite(f) || f <= 1.0)
      return InvalidArgument("--change-factor: '" + t.change_factor +
                             "' is not a number above 1 (2 = doubled or halved)");
    q.change_factor = f;
  }
  if (!t.group_by.empty()) {
    Result<GroupBy> g = ParseGroupBy(t.group_by);
    if (!g.ok()) return g.status().WithContext("--group-by");
    q.group_by = *g;
  }
  for (const auto& [flag, text] : {std::pair{"--host", &t.host}, {"--workload", &t.workload}})
    if (text->size() > kMaxMapQueryTextBytes)
      return InvalidArgument(std::string(flag) + ": " + std::to_string(text->size()) +
                             " bytes; at most " + std::to_string(kMaxMapQueryTextBytes));
  q.host = t.host;
  q.workload = t.workload;
  if (!t.depth.empty()) {
    int d = -1;
    auto [ptr, ec] = std::from_chars(t.depth.data(), t.depth.data() + t.depth.size(), d);
    if (ec != std::errc() || ptr != t.depth.data() + t.depth.size() || d < 0 || d > 64)
      return InvalidArgument("--depth: '" + t.depth + "' is not a whole number from 0 to 64");
    q.depth = d;
  }
  if (!t.timeout.empty()) {
    Result<std::chrono::milliseconds> d = ParseDuration(t.timeout);
    if (!d.ok()) return d.status().WithContext("--timeout");
    if (d->count() == 0) return InvalidArgument("--timeout: must be more than 0");
    if (*d > std::chrono::nanoseconds(kMaxMapTimeoutNs))
      return InvalidArgument("--timeout: at most " +
                             std::to_string(kMaxMapTimeoutNs / 1'000'000'000) + "s");
    q.timeout_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*d).count();
    if (q.hop_timeout_ns > q.timeout_ns) q.hop_timeout_ns = q.timeout_ns;
  }
  return q;
}

std::string ClampMapText(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  size_t n = max;
  // Back off continuation bytes (10xxxxxx) to the start of their character.
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80) n--;
  return std::string(text.substr(0, n));
}

}  // namespace flowmesh
