// Duration parsing and formatting.
#include "node/control/duration.h"

#include <cctype>
#include <charconv>
#include <cstdint>

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

}  // namespace flowmesh
