// A minimal, correct JSON writer for meshctl's output: compact objects, one
// per line, strings through the one escaper (node/common/json_string.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/common/json_string.h"
#include "node/proc/workload.h"

namespace flowmesh {

// Builds {"k":v,...} in insertion order.
class JsonObject {
 public:
  JsonObject() : out_("{") {}
  JsonObject& Str(std::string_view key, std::string_view value);
  JsonObject& Int(std::string_view key, int64_t value);
  JsonObject& Uint(std::string_view key, uint64_t value);
  // Fixed-point with `decimals` digits ("12.345"), never exponent notation.
  JsonObject& Fixed(std::string_view key, double value, int decimals);
  JsonObject& Null(std::string_view key);
  JsonObject& Bool(std::string_view key, bool value);
  // `json` must already be valid JSON (a nested object or array).
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string Finish() &&;

 private:
  void Key(std::string_view key);
  std::string out_;
};

// A process's workload as every output shows it: {"kind", "runtime", "id",
// "name", "unit", "user_unit", "pod": {"uid", "name", "namespace", "qos"} or
// null, "cgroup"}; "null" when it has none.
std::string WorkloadJson(const Workload& w);

}  // namespace flowmesh
