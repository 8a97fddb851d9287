// The one JSON string escaper, for meshd's JSON log lines and everything
// meshctl prints as JSON: the result is always valid JSON, whatever the bytes
// (comm, cmdline and log messages are arbitrary): control characters are
// escaped and invalid UTF-8 becomes U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace flowmesh {

// Appends `s` as a quoted JSON string.
void AppendJsonString(std::string* out, std::string_view s);
std::string JsonString(std::string_view s);

}  // namespace flowmesh
