// Writes metrics in the Prometheus text exposition format 0.0.4: HELP and
// TYPE once per family, then its samples, label values escaped.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "node/metrics/histogram.h"

namespace flowmesh::metrics {

inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { kCounter, kGauge, kHistogram };

using Label = std::pair<std::string_view, std::string_view>;
using Labels = std::initializer_list<Label>;

class Exposition {
 public:
  // Starts a family. Names and label names are the caller's constants and
  // must be valid Prometheus names; label values may hold anything.
  void Family(std::string_view name, Type type, std::string_view help);
  // One sample of the current family (a counter, gauge or untyped value).
  void Sample(std::string_view name, Labels labels, uint64_t value);
  void Sample(std::string_view name, Labels labels, double value);
  // The _bucket (cumulative, le="+Inf" last), _sum and _count samples of one
  // histogram series of the current family.
  void HistogramSamples(std::string_view name, Labels labels, const HistogramSnapshot& h);

  // Family plus its single sample.
  void Counter(std::string_view name, std::string_view help, uint64_t value, Labels labels = {});
  void Gauge(std::string_view name, std::string_view help, double value, Labels labels = {});

  const std::string& text() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void SampleStart(std::string_view name, std::string_view suffix, Labels labels,
                   const Label* extra = nullptr);

  std::string out_;
};

// Label values: backslash, double quote and newline are escaped.
std::string EscapeLabelValue(std::string_view value);
// HELP text: backslash and newline are escaped (quotes are not).
std::string EscapeHelp(std::string_view help);
// Shortest text that parses back to the same double; +Inf, -Inf, NaN as the format spells them.
std::string FormatValue(double value);

}  // namespace flowmesh::metrics
