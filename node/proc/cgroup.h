// A process's cgroup v2 (unified) membership: its path, from
// /proc/<pid>/cgroup, and its id, which is the inode of the cgroup's
// directory in the v2 hierarchy and what bpf_get_current_cgroup_id()
// returns. On a hybrid host v2 is mounted at /sys/fs/cgroup/unified, on a
// unified one at /sys/fs/cgroup.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/common/status.h"

namespace flowmesh {

// The v2 path ("0::/system.slice/nginx.service" -> "/system.slice/nginx.service")
// from the text of /proc/<pid>/cgroup. NotFound when there is no "0::" line
// (a host with v1 only); InvalidArgument when the path starts with "/.."
// (meshd is in a cgroup namespace of its own and sees paths relative to it).
Result<std::string> ParseProcCgroupV2(std::string_view text);

// Where the v2 hierarchy is mounted: "/sys/fs/cgroup/unified" on a hybrid
// host, "/sys/fs/cgroup" on a unified one; NotFound when neither is cgroup2.
Result<std::string> FindCgroupV2Root();

// The id of the cgroup at `path` (as /proc/<pid>/cgroup names it) under the
// v2 mount `root`: its kernfs file handle, which is what
// bpf_get_current_cgroup_id() returns. From 5.5 on that is the directory's
// inode; before, (generation << 32 | inode), so the inode alone would match
// no probe's id.
Result<uint64_t> CgroupIdOfPath(const std::string& root, std::string_view path);

// The same for the directory `dir` (a full path) already stat'ed as `ino`:
// the handle, else (a filesystem without handles) the inode.
uint64_t CgroupIdOfDir(const std::string& dir, uint64_t ino);

}  // namespace flowmesh
