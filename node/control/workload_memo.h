// The workloads of one control request's processes, each asked of the
// backend once: a watch or a flows stream names the same few processes
// thousands of times, and the daemon's answer may read /proc or the store.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "node/control/backend.h"

namespace flowmesh {

class WorkloadMemo {
 public:
  explicit WorkloadMemo(ControlBackend& backend) : backend_(backend) {}

  const Workload& Of(const ProcessRef& p) {
    auto key = std::make_pair(p.pid, p.start_ticks);
    auto it = known_.find(key);
    if (it != known_.end()) return it->second;
    // A long watch sees processes come and go: start over rather than grow.
    if (known_.size() >= kMaxProcesses) known_.clear();
    return known_.emplace(key, backend_.WorkloadOf(p)).first->second;
  }

 private:
  static constexpr size_t kMaxProcesses = 4096;
  ControlBackend& backend_;
  std::map<std::pair<uint32_t, uint64_t>, Workload> known_;
};

}  // namespace flowmesh
