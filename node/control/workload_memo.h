// The workloads of one control request's processes, each asked of the
// backend once: a watch or a flows stream names the same few processes
// thousands of times, and the daemon's answer may read /proc or the store.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "node/common/clock.h"
#include "node/control/backend.h"

namespace flowmesh {

class WorkloadMemo {
 public:
  explicit WorkloadMemo(ControlBackend& backend) : backend_(backend) {}

  const Workload& Of(const ProcessRef& p) {
    auto key = std::make_pair(p.pid, p.start_ticks);
    auto it = known_.find(key);
    const int64_t now = MonotonicNs();
    // "None" may only mean "not resolved yet" (a process seen at its first
    // connect): a long watch asks again, at most once a second.
    if (it != known_.end() &&
        (!it->second.workload.empty() || now - it->second.asked_ns < kRetryNs))
      return it->second.workload;
    // A long watch sees processes come and go: start over rather than grow.
    if (it == known_.end() && known_.size() >= kMaxProcesses) known_.clear();
    Entry& e = known_[key];
    e.workload = backend_.WorkloadOf(p);
    e.asked_ns = now;
    return e.workload;
  }

 private:
  static constexpr size_t kMaxProcesses = 4096;
  static constexpr int64_t kRetryNs = 1'000'000'000;
  struct Entry {
    Workload workload;
    int64_t asked_ns = 0;
  };
  ControlBackend& backend_;
  std::map<std::pair<uint32_t, uint64_t>, Entry> known_;
};

}  // namespace flowmesh
