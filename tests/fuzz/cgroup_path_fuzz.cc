// The cgroup path parser (node/proc/cgroup_path.cc): any bytes as the path
// /proc/<pid>/cgroup or a walk of the hierarchy hands it. Besides not
// crashing, what it names must be well formed: a container id is 64 hex
// digits or empty, a pod uid is 32 or 36 characters with dashes restored,
// and a unit is one component of the path.
//
//   input = the path
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "node/proc/cgroup_path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  std::string_view path(reinterpret_cast<const char*>(data), size);
  Workload w = ParseCgroupPath(path);
  if (size <= kMaxCgroupPathBytes && w.cgroup != path) __builtin_trap();
  if (size > kMaxCgroupPathBytes && !w.empty()) __builtin_trap();
  if (!w.id.empty() && w.kind == WorkloadKind::kContainer) {
    if (w.id.size() != 64) __builtin_trap();
    for (char c : w.id)
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) __builtin_trap();
  }
  if (w.pod) {
    if (w.pod->uid.size() != 32 && w.pod->uid.size() != 36) __builtin_trap();
    if (w.pod->uid.find('_') != std::string::npos) __builtin_trap();
  }
  if (!w.unit.empty() &&
      (w.unit.find('/') != std::string::npos || path.find(w.unit) == std::string_view::npos))
    __builtin_trap();
  if (w.kind == WorkloadKind::kUnit && w.id != w.unit) __builtin_trap();
  (void)WorkloadLabel(w);
  (void)WorkloadGroupKey(w);
  return 0;
}
