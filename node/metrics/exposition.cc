// The text exposition format, as https://prometheus.io/docs/instrumenting/exposition_formats/
// describes version 0.0.4.
#include "node/metrics/exposition.h"

#include <charconv>
#include <cmath>

namespace flowmesh::metrics {
namespace {

std::string_view TypeName(Type t) {
  switch (t) {
    case Type::kCounter: return "counter";
    case Type::kGauge: return "gauge";
    case Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

void Exposition::Family(std::string_view name, Type type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += EscapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += TypeName(type);
  out_ += '\n';
}

void Exposition::SampleStart(std::string_view name, std::string_view suffix, Labels labels,
                             const Label* extra) {
  out_ += name;
  out_ += suffix;
  if (labels.size() == 0 && extra == nullptr) {
    out_ += ' ';
    return;
  }
  out_ += '{';
  bool first = true;
  auto add = [&](const Label& l) {
    if (!first) out_ += ',';
    first = false;
    out_ += l.first;
    out_ += "=\"";
    out_ += EscapeLabelValue(l.second);
    out_ += '"';
  };
  for (const Label& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  out_ += "} ";
}

void Exposition::Sample(std::string_view name, Labels labels, uint64_t value) {
  SampleStart(name, "", labels);
  out_ += std::to_string(value);
  out_ += '\n';
}

void Exposition::Sample(std::string_view name, Labels labels, double value) {
  SampleStart(name, "", labels);
  out_ += FormatValue(value);
  out_ += '\n';
}

void Exposition::HistogramSamples(std::string_view name, Labels labels,
                                  const HistogramSnapshot& h) {
  for (size_t i = 0; i < h.upper_bounds.size() && i < h.cumulative.size(); ++i) {
    std::string le = FormatValue(h.upper_bounds[i]);
    Label bound{"le", le};
    SampleStart(name, "_bucket", labels, &bound);
    out_ += std::to_string(h.cumulative[i]);
    out_ += '\n';
  }
  Label inf{"le", "+Inf"};
  SampleStart(name, "_bucket", labels, &inf);
  out_ += std::to_string(h.count);
  out_ += '\n';
  SampleStart(name, "_sum", labels);
  out_ += FormatValue(h.sum);
  out_ += '\n';
  SampleStart(name, "_count", labels);
  out_ += std::to_string(h.count);
  out_ += '\n';
}

void Exposition::Counter(std::string_view name, std::string_view help, uint64_t value,
                         Labels labels) {
  Family(name, Type::kCounter, help);
  Sample(name, labels, value);
}

void Exposition::Gauge(std::string_view name, std::string_view help, double value, Labels labels) {
  Family(name, Type::kGauge, help);
  Sample(name, labels, value);
}

}  // namespace flowmesh::metrics
