// Human durations for flags ("500ms", "2s", "15m", "1h30m", "7d") and their
// short display ("1h2m3s"), shared by meshd and meshctl.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "node/common/status.h"

namespace flowmesh {

// Parses one or more <integer><unit> parts, units ms, s, m, h, d; a bare
// number is rejected because "5" could mean seconds or minutes. Zero is
// allowed ("0s"); the caller decides whether it makes sense.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// "450ms", "12s", "3m4s", "2h0m", "9d3h": the two largest units (ms only below 1 s).
std::string FormatDuration(std::chrono::milliseconds d);

// A point in time for --since/--until: "now", a duration meaning that long
// before now_ns ("15m", "1h30m"), or an RFC 3339 time ("2026-11-22T10:00:00Z",
// "2026-11-22T10:00:00.5+01:00"). Returns Unix epoch ns.
Result<int64_t> ParseTimeSpec(std::string_view text, int64_t now_ns);

}  // namespace flowmesh
