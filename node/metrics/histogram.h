// A latency histogram that threads observe without a lock: one atomic count
// per bucket and an atomic sum, read as a snapshot at scrape time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace flowmesh::metrics {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // seconds, ascending; +Inf is implied
  std::vector<uint64_t> cumulative;  // one per bound: observations <= it
  uint64_t count = 0;                // every observation (the +Inf bucket)
  double sum = 0;                    // seconds
};

class Histogram {
 public:
  // `upper_bounds` in seconds, ascending and finite.
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // 1 ms to 10 s in 1-2.5-5 steps: a look answered from a local store takes
  // milliseconds, one that waits on an unreachable peer runs into seconds.
  static std::vector<double> LatencyBuckets();

  // Any thread, wait-free: two relaxed atomic adds.
  void ObserveNs(int64_t ns);

  // Buckets are read one by one while others may observe, so a snapshot can
  // miss an observation in flight; its count is the buckets' total, so it
  // always agrees with its +Inf bucket.
  HistogramSnapshot Snapshot() const;

 private:
  std::vector<double> bounds_;
  std::vector<int64_t> bounds_ns_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1, the last is +Inf
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace flowmesh::metrics
