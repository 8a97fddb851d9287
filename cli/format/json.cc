// JSON object writer for meshctl's output (strings through the common escaper),
// and the one workload object every output uses.
#include "cli/format/json.h"

#include <cmath>
#include <cstdio>

#include "node/common/json_string.h"

namespace flowmesh {

void JsonObject::Key(std::string_view key) {
  if (out_.size() > 1) out_.push_back(',');
  AppendJsonString(&out_, key);
  out_.push_back(':');
}

JsonObject& JsonObject::Str(std::string_view key, std::string_view value) {
  Key(key);
  AppendJsonString(&out_, value);
  return *this;
}

JsonObject& JsonObject::Int(std::string_view key, int64_t value) {
  Key(key);
  out_.append(std::to_string(value));
  return *this;
}

JsonObject& JsonObject::Uint(std::string_view key, uint64_t value) {
  Key(key);
  out_.append(std::to_string(value));
  return *this;
}

JsonObject& JsonObject::Fixed(std::string_view key, double value, int decimals) {
  if (!std::isfinite(value)) return Null(key);  // JSON has no NaN or Infinity
  Key(key);
  int n = std::snprintf(nullptr, 0, "%.*f", decimals, value);
  size_t at = out_.size();
  out_.resize(at + static_cast<size_t>(n) + 1);
  std::snprintf(out_.data() + at, static_cast<size_t>(n) + 1, "%.*f", decimals, value);
  out_.resize(at + static_cast<size_t>(n));
  return *this;
}

JsonObject& JsonObject::Null(std::string_view key) {
  Key(key);
  out_.append("null");
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view key, bool value) {
  Key(key);
  out_.append(value ? "true" : "false");
  return *this;
}

JsonObject& JsonObject::Raw(std::string_view key, std::string_view json) {
  Key(key);
  out_.append(json);
  return *this;
}

std::string JsonObject::Finish() && {
  out_.push_back('}');
  return std::move(out_);
}

std::string WorkloadJson(const Workload& w) {
  if (w.empty()) return "null";
  JsonObject o;
  o.Str("kind", WorkloadKindName(w.kind))
      .Str("runtime", w.runtime)
      .Str("id", w.id)
      .Str("name", w.name)
      .Str("unit", w.unit)
      .Bool("user_unit", w.user_unit);
  if (w.pod) {
    JsonObject pod;
    pod.Str("uid", w.pod->uid).Str("name", w.pod->name).Str("namespace", w.pod->ns);
    o.Raw("pod", std::move(pod.Str("qos", w.pod->qos)).Finish());
  } else {
    o.Null("pod");
  }
  return std::move(o.Str("cgroup", w.cgroup)).Finish();
}

}  // namespace flowmesh
