// A look query as meshctl's flags and /api/look's parameters spell it; both
// parse it here, so they ask the same question (map_types.h does the same
// for the map).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "node/common/status.h"
#include "node/look/look_types.h"

namespace flowmesh {

// The deepest walk a look may ask for (the control protocol's bound).
inline constexpr int kMaxLookQueryDepth = 16;

struct LookQueryText {
  std::string target;  // IP:PORT, or IP alone (the host's processes, downward)
  std::string depth = "3";
  std::string direction = "both";     // in, out, both
  std::string group_by = "workload";  // workload, pgid, pid
  std::string since = "1h";           // a duration before now, "now" or RFC 3339
  std::string until = "now";
  std::string hop_timeout = "2s";
  std::string timeout = "10s";
};

// The query, or an error naming the flag ("--depth: ...") and the fix.
Result<LookQuery> ParseLookQueryText(const LookQueryText& text, int64_t now_ns);

// [since, until] from two time specs (ParseTimeSpec; an empty `until` is
// now); errors name the flag. meshctl's --since/--until and the map's too.
Result<TimeWindow> ParseWindowText(const char* since_flag, const std::string& since,
                                   const char* until_flag, const std::string& until,
                                   int64_t now_ns);

// A duration above zero ("2s", "500ms"); errors name the flag.
Result<std::chrono::milliseconds> ParsePositiveDuration(const char* flag, const std::string& text);

}  // namespace flowmesh
