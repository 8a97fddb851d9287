// Names the workload a cgroup v2 path belongs to: the systemd unit, the
// container of a runtime (docker, containerd, cri-o, podman) under either
// cgroup driver, and the Kubernetes pod around it.
#pragma once

#include <string_view>

#include "node/proc/workload.h"

namespace flowmesh {

// The longest path ParseCgroupPath looks at; longer ones name nothing (the
// kernel's PATH_MAX, which no real hierarchy comes near).
inline constexpr size_t kMaxCgroupPathBytes = 4096;

// Parses a v2 path as /proc/<pid>/cgroup prints it ("/system.slice/nginx.service").
// Components are read from the root down, so any prefix (a nested host such
// as "/docker/<id>/kubepods/...", a lab's "/fmlab-a/system.slice/...") is
// skipped: the innermost container (or pod) and the innermost unit win.
// Never fails: a malformed path ("..", "//", not absolute, too long) is
// kNone; a container scope with a bad id is only a unit. `cgroup` is set to
// the path (empty when too long).
Workload ParseCgroupPath(std::string_view v2_path);

}  // namespace flowmesh
