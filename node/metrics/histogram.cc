// Histogram: bucket search and snapshots.
#include "node/metrics/histogram.h"

#include <algorithm>
#include <cmath>

namespace flowmesh::metrics {

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  bounds_ns_.reserve(bounds_.size());
  for (double b : bounds_) bounds_ns_.push_back(static_cast<int64_t>(std::llround(b * 1e9)));
}

std::vector<double> Histogram::LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

void Histogram::ObserveNs(int64_t ns) {
  if (ns < 0) ns = 0;  // a clock step; monotonic clocks do not, but be safe
  // le is inclusive: an observation equal to a bound belongs to its bucket.
  size_t i = static_cast<size_t>(std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) -
                                 bounds_ns_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot s;
  s.upper_bounds = bounds_;
  s.cumulative.reserve(bounds_.size());
  uint64_t total = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total + counts_[bounds_.size()].load(std::memory_order_relaxed);
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

}  // namespace flowmesh::metrics
