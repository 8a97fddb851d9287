// meshd's config file: a TOML subset (key = value lines, no tables) that real TOML parsers accept.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/status.h"

namespace flowmesh {

struct ConfigEntry {
  enum class Type { kString, kInteger, kBool, kArray };
  std::string key;
  Type type = Type::kString;
  // A scalar's value (integers in decimal, booleans as "true"/"false"), or an array's elements.
  std::vector<std::string> items;
  int line = 0;
};

// Parses `text`; errors read "<path>:<line>: <what is wrong and the fix>".
Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, std::string_view path);

// Largest config file read: far above any real one, small enough that a wrong path (a log,
// a disk image) is refused rather than parsed.
inline constexpr size_t kMaxConfigFileBytes = 1u << 20;

// The whole file; a Status with Code::kNotFound when it does not exist. Anything but a regular
// file of at most kMaxConfigFileBytes (/dev/zero, a FIFO) is refused with kInvalidArgument.
Result<std::string> ReadConfigFile(const std::string& path);

// The known key closest to `key` (a typo, '_' for '-'), or "" if none is close.
std::string SuggestKey(std::string_view key, const std::vector<std::string>& known);

// `text` as a TOML basic string, quotes included.
std::string TomlQuote(std::string_view text);

}  // namespace flowmesh
