// Look query text -> LookQuery, and the window and duration rules every
// query (look, map, flows) spells the same way.
#include "node/look/look_query_text.h"

#include <charconv>

#include "node/common/clock.h"
#include "node/common/duration.h"
#include "node/look/map_types.h"

namespace flowmesh {

Result<TimeWindow> ParseWindowText(const char* since_flag, const std::string& since,
                                   const char* until_flag, const std::string& until,
                                   int64_t now_ns) {
  TimeWindow w;
  Result<int64_t> s = ParseTimeSpec(since, now_ns);
  if (!s.ok()) return s.status().WithContext(since_flag);
  Result<int64_t> u = ParseTimeSpec(until.empty() ? "now" : until, now_ns);
  if (!u.ok()) return u.status().WithContext(until_flag);
  if (*u < *s)
    return InvalidArgument(std::string(until_flag) + " (" + FormatRfc3339(*u) + ") is before " +
                           since_flag + " (" + FormatRfc3339(*s) + ")");
  w.since_ns = *s;
  w.until_ns = *u;
  return w;
}

Result<std::chrono::milliseconds> ParsePositiveDuration(const char* flag, const std::string& text) {
  Result<std::chrono::milliseconds> d = ParseDuration(text);
  if (!d.ok()) return d.status().WithContext(flag);
  if (d->count() == 0) return InvalidArgument(std::string(flag) + ": must be more than 0");
  return d;
}

Result<LookQuery> ParseLookQueryText(const LookQueryText& t, int64_t now_ns) {
  LookQuery q;
  Result<Endpoint> target = Endpoint::Parse(t.target, /*allow_no_port=*/true);
  if (!target.ok())
    return InvalidArgument("look: '" + t.target + "' is not IP:PORT or IP (" +
                           target.status().message() + "); e.g. 10.213.0.2:80");
  q.target = *target;
  int depth = -1;
  auto [ptr, ec] = std::from_chars(t.depth.data(), t.depth.data() + t.depth.size(), depth);
  if (ec != std::errc() || ptr != t.depth.data() + t.depth.size() || depth < 1 ||
      depth > kMaxLookQueryDepth)
    return InvalidArgument("--depth: '" + t.depth + "' is not a whole number from 1 to " +
                           std::to_string(kMaxLookQueryDepth));
  q.depth = depth;
  Result<LookDirection> dir = ParseLookDirection(t.direction);
  if (!dir.ok()) return dir.status().WithContext("--direction");
  q.direction = *dir;
  Result<GroupBy> group_by = ParseGroupBy(t.group_by);
  if (!group_by.ok()) return group_by.status().WithContext("--group-by");
  q.group_by = *group_by;
  FM_ASSIGN_OR_RETURN(q.window, ParseWindowText("--since", t.since, "--until", t.until, now_ns));
  Result<std::chrono::milliseconds> timeout = ParsePositiveDuration("--timeout", t.timeout);
  if (!timeout.ok()) return timeout.status();
  Result<std::chrono::milliseconds> hop = ParsePositiveDuration("--hop-timeout", t.hop_timeout);
  if (!hop.ok()) return hop.status();
  // A look holds a control or page worker until its deadline, as a map does:
  // the map's bound holds here too.
  for (const auto& [flag, d] : {std::pair{"--timeout", *timeout}, std::pair{"--hop-timeout", *hop}})
    if (d > std::chrono::nanoseconds(kMaxMapTimeoutNs))
      return InvalidArgument(std::string(flag) + ": at most " +
                             std::to_string(kMaxMapTimeoutNs / 1'000'000'000) + "s");
  q.hop_timeout_ns = hop->count() * 1'000'000;
  q.timeout_ns = timeout->count() * 1'000'000;
  return q;
}

}  // namespace flowmesh
