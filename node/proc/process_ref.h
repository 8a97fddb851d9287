// ProcessRef: a process as a probe saw it, the identity every layer above
// /proc passes around (probe events, flows, the store, look and control).
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <string_view>

namespace flowmesh {

// The kernel's TASK_COMM_LEN; bpf/flowmesh.h's FM_TASK_COMM_LEN is the same
// number (node/probe/event.h asserts it) so a ring-buffer comm copies whole.
inline constexpr size_t kTaskCommLen = 16;

// (pid, start_ticks) is its identity; comm is for display. start_ticks is
// /proc/<pid>/stat's starttime (clock ticks).
struct ProcessRef {
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  uint32_t pgid = 0;  // 0 = not known; the kernel reports it, /proc fills it in otherwise
  // The cgroup v2 id of the process when the probe saw it (at listen or
  // connect; node/proc/cgroup.h); 0 = not known. Names its workload.
  uint64_t cgroup_id = 0;
  char comm[kTaskCommLen] = {};

  bool known() const { return pid != 0; }
  std::string_view comm_view() const { return {comm, strnlen(comm, sizeof comm)}; }
  // Truncates to what the kernel keeps (TASK_COMM_LEN - 1 bytes and a NUL).
  void set_comm(std::string_view c) {
    std::memset(comm, 0, sizeof comm);
    std::memcpy(comm, c.data(), std::min(c.size(), sizeof comm - 1));
  }
};

}  // namespace flowmesh
