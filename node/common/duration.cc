// Duration parsing and formatting.
#include "node/common/duration.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>

namespace flowmesh {
namespace {

constexpr std::string_view kExamples = "examples: 500ms, 2s, 15m, 1h30m, 7d";

Status NotADuration(std::string_view text, std::string_view why) {
  return InvalidArgument("'" + std::string(text) + "' is not a duration (" + std::string(why) +
                         "; " + std::string(kExamples) + ")");
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view text) {
  if (text.empty()) return NotADuration(text, "empty");
  std::string_view rest = text;
  int64_t total_ms = 0;
  while (!rest.empty()) {
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ptr == rest.data()) return NotADuration(text, "expected a number");
    if (ec == std::errc::result_out_of_range) return NotADuration(text, "too large");
    rest.remove_prefix(static_cast<size_t>(ptr - rest.data()));
    size_t unit_len = 0;
    while (unit_len < rest.size() && std::isalpha(static_cast<unsigned char>(rest[unit_len])))
      unit_len++;
    std::string_view unit = rest.substr(0, unit_len);
    rest.remove_prefix(unit_len);
    uint64_t scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else if (unit.empty())
      return NotADuration(text, "missing unit");
    else
      return NotADuration(text, "unknown unit '" + std::string(unit) + "'");
    // Ten years is far beyond any sensible flag and keeps the sum in range.
    constexpr uint64_t kMaxMs = 10ULL * 366 * 86'400'000;
    if (n > kMaxMs / scale || total_ms + static_cast<int64_t>(n * scale) > int64_t{kMaxMs})
      return NotADuration(text, "too large");
    total_ms += static_cast<int64_t>(n * scale);
  }
  return std::chrono::milliseconds(total_ms);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms < 0) ms = 0;
  if (ms < 1000) return std::to_string(ms) + "ms";
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (size_t i = 0; i < std::size(kUnits); i++) {
    if (ms < kUnits[i].ms) continue;
    std::string out = std::to_string(ms / kUnits[i].ms) + kUnits[i].name;
    if (i + 1 < std::size(kUnits))
      out += std::to_string(ms % kUnits[i].ms / kUnits[i + 1].ms) + kUnits[i + 1].name;
    return out;
  }
  return std::to_string(ms) + "ms";
}

Result<int64_t> ParseTimeSpec(std::string_view text, int64_t now_ns) {
  if (text == "now") return now_ns;
  if (text.find('T') == std::string_view::npos) {
    Result<std::chrono::milliseconds> ago = ParseDuration(text);
    if (!ago.ok())
      return InvalidArgument("'" + std::string(text) +
                             "' is neither a duration (15m, 2h, 7d) nor an RFC 3339 time "
                             "(2026-11-22T10:00:00Z)");
    return now_ns - static_cast<int64_t>(ago->count()) * 1'000'000;
  }
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  std::string t(text);
  auto bad = [&](const char* why) {
    return InvalidArgument("'" + t + "' is not an RFC 3339 time (" + why +
                           "); e.g. 2026-11-22T10:00:00Z");
  };
  int y, mo, d, h, mi, sec, consumed = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &consumed) !=
          6 ||
      consumed != 19)
    return bad("expected YYYY-MM-DDTHH:MM:SS");
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return bad("a field is out of range");
  std::string_view rest = std::string_view(t).substr(19);
  int64_t frac_ns = 0;
  if (!rest.empty() && rest[0] == '.') {
    rest.remove_prefix(1);
    int digits = 0;
    while (!rest.empty() && rest[0] >= '0' && rest[0] <= '9') {
      if (digits < 9) frac_ns = frac_ns * 10 + (rest[0] - '0');
      digits++;
      rest.remove_prefix(1);
    }
    if (digits == 0) return bad("no digits after '.'");
    for (int i = digits; i < 9; i++) frac_ns *= 10;
  }
  int64_t offset_s = 0;
  if (rest == "Z" || rest == "z") {
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = (rest[1] - '0') * 10 + (rest[2] - '0');
    int om = (rest[4] - '0') * 10 + (rest[5] - '0');
    if (oh > 23 || om > 59) return bad("bad UTC offset");
    offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return bad("expected Z or a UTC offset like +01:00 at the end");
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset_s;
  return secs * 1'000'000'000 + frac_ns;
}

}  // namespace flowmesh
