// The Prometheus text format as meshd writes it: HELP/TYPE, escaping,
// histograms and their buckets.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "node/metrics/exposition.h"
#include "node/metrics/histogram.h"

namespace flowmesh::metrics {
namespace {

TEST(MetricsExposition, FamilyHasHelpThenTypeThenSamples) {
  Exposition e;
  e.Counter("fm_events_total", "Events seen.", 42);
  e.Gauge("fm_size_bytes", "Size.", 1.5, {{"dir", "/var/lib"}});
  EXPECT_EQ(e.text(),
            "# HELP fm_events_total Events seen.\n"
            "# TYPE fm_events_total counter\n"
            "fm_events_total 42\n"
            "# HELP fm_size_bytes Size.\n"
            "# TYPE fm_size_bytes gauge\n"
            "fm_size_bytes{dir=\"/var/lib\"} 1.5\n");
}

TEST(MetricsExposition, LabelValuesAndHelpAreEscaped) {
  Exposition e;
  e.Family("fm_info", Type::kGauge, "A \"quoted\" back\\slash\nand a newline.");
  e.Sample("fm_info", {{"a", "x\"y"}, {"b", "c:\\d"}, {"c", "two\nlines"}}, uint64_t{1});
  EXPECT_EQ(e.text(),
            "# HELP fm_info A \"quoted\" back\\\\slash\\nand a newline.\n"
            "# TYPE fm_info gauge\n"
            "fm_info{a=\"x\\\"y\",b=\"c:\\\\d\",c=\"two\\nlines\"} 1\n");
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(MetricsExposition, ValuesKeepTheirPrecisionAndSpecialSpellings) {
  EXPECT_EQ(FormatValue(0.001), "0.001");
  EXPECT_EQ(FormatValue(10), "10");
  EXPECT_EQ(FormatValue(1.7e9 + 0.25), "1700000000.25");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(0.0 / 0.0), "NaN");
  Exposition e;
  e.Sample("fm_big_total", {}, uint64_t{18446744073709551615u});
  EXPECT_EQ(e.text(), "fm_big_total 18446744073709551615\n");
}

TEST(MetricsHistogram, BucketsAreCumulativeWithInfSumAndCount) {
  Histogram h({0.001, 0.01, 1});
  h.ObserveNs(500'000);         // 0.5 ms
  h.ObserveNs(1'000'000);       // exactly 1 ms: le is inclusive
  h.ObserveNs(3'000'000);       // 3 ms
  h.ObserveNs(20'000'000'000);  // 20 s: only +Inf
  HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 3}));
  EXPECT_EQ(s.count, 4u);
  Exposition e;
  e.Family("fm_look_duration_seconds", Type::kHistogram, "Look time.");
  e.HistogramSamples("fm_look_duration_seconds", {{"kind", "peer"}}, s);
  EXPECT_EQ(e.text(),
            "# HELP fm_look_duration_seconds Look time.\n"
            "# TYPE fm_look_duration_seconds histogram\n"
            "fm_look_duration_seconds_bucket{kind=\"peer\",le=\"0.001\"} 2\n"
            "fm_look_duration_seconds_bucket{kind=\"peer\",le=\"0.01\"} 3\n"
            "fm_look_duration_seconds_bucket{kind=\"peer\",le=\"1\"} 3\n"
            "fm_look_duration_seconds_bucket{kind=\"peer\",le=\"+Inf\"} 4\n"
            "fm_look_duration_seconds_sum{kind=\"peer\"} 20.0045\n"
            "fm_look_duration_seconds_count{kind=\"peer\"} 4\n");
}

TEST(MetricsHistogram, EmptyHistogramHasZeroBucketsAndNoLabelsNeeded) {
  Histogram h({0.5});
  Exposition e;
  e.HistogramSamples("fm_d_seconds", {}, h.Snapshot());
  EXPECT_EQ(e.text(),
            "fm_d_seconds_bucket{le=\"0.5\"} 0\n"
            "fm_d_seconds_bucket{le=\"+Inf\"} 0\n"
            "fm_d_seconds_sum 0\n"
            "fm_d_seconds_count 0\n");
}

TEST(MetricsHistogram, LatencyBucketsSpanOneMillisecondToTenSeconds) {
  std::vector<double> b = Histogram::LatencyBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.001);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

TEST(MetricsHistogram, ConcurrentObserversLoseNothing) {
  Histogram h(Histogram::LatencyBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 20000; ++i) h.ObserveNs(int64_t{t} * 1'000'000 + i);
    });
  for (auto& t : threads) t.join();
  HistogramSnapshot s = h.Snapshot();
  EXPECT_EQ(s.count, 80000u);
  EXPECT_EQ(s.cumulative.back(), 80000u);  // all under 10 s
}

}  // namespace
}  // namespace flowmesh::metrics
