// DrainBarrier: tickets from the probe's Wake(), answered by probe rounds.
#include "node/daemon/drain_barrier.h"

#include <chrono>
#include <string>
#include <vector>

#include "node/common/clock.h"

namespace flowmesh {

namespace {

// A drain takes microseconds when meshd has a core; the upper buckets are
// a starved probe thread, up to the bound.
std::vector<double> WaitBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}

}  // namespace

DrainBarrier::DrainBarrier(int64_t timeout_ns) : timeout_ns_(timeout_ns), waited_(WaitBuckets()) {}

void DrainBarrier::Open(std::function<uint64_t()> wake) {
  std::lock_guard lock(mu_);
  wake_ = std::move(wake);
}

void DrainBarrier::RoundDone(uint64_t served) {
  {
    std::lock_guard lock(mu_);
    if (served <= served_) return;
    served_ = served;
  }
  done_.notify_all();
}

void DrainBarrier::Close() {
  {
    std::lock_guard lock(mu_);
    wake_ = nullptr;
  }
  done_.notify_all();
}

DrainBarrier::Outcome DrainBarrier::Wait() {
  const int64_t start_ns = MonotonicNs();
  std::unique_lock lock(mu_);
  if (!wake_) return Outcome::kNoProbe;
  // Under the lock, so Close() cannot pass between the check and the wake:
  // the probe outlives its thread's Close().
  const uint64_t ticket = wake_();
  stats_.waits++;
  const bool answered = done_.wait_for(lock, std::chrono::nanoseconds(timeout_ns_),
                                       [&] { return served_ >= ticket || !wake_; });
  waited_.ObserveNs(MonotonicNs() - start_ns);
  if (answered) return served_ >= ticket ? Outcome::kDrained : Outcome::kNoProbe;
  stats_.timeouts++;
  uint64_t held = 0;
  if (timeout_log_.Allow(MonotonicNs(), &held))
    FM_LOG(Warn, "look") << "answered a query after waiting " << timeout_ns_ / 1'000'000
                         << " ms for the probe to drain what the kernel saw before it (the probe "
                            "thread got no CPU in time?): connections of the last moments may be "
                            "missing from the answer"
                         << (held > 0 ? "; " + std::to_string(held) + " more since the last report"
                                      : "")
                         << " (counted in flowmesh_look_drain_timeouts_total)";
  return Outcome::kTimedOut;
}

DrainStats DrainBarrier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace flowmesh
