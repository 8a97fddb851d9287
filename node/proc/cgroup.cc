// /proc/<pid>/cgroup's v2 line, the v2 mount, and cgroup ids by path.
#include "node/proc/cgroup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstring>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace flowmesh {

Result<std::string> ParseProcCgroupV2(std::string_view text) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (line.substr(0, 3) == "0::") {
      std::string_view path = line.substr(3);
      if (path.empty() || path.front() != '/')
        return InvalidArgument("cgroup v2 line '" + std::string(line) + "' has no absolute path");
      // The kernel shows a cgroup outside the reader's cgroup namespace as
      // "/../<rest>": every path would be relative to meshd's own cgroup.
      if (path == "/.." || path.starts_with("/../"))
        return InvalidArgument("cgroup v2 path '" + std::string(path) +
                               "' is outside meshd's cgroup namespace; meshd must run in the "
                               "host's cgroup namespace to name workloads (docker run "
                               "--cgroupns=host, or no cgroup namespace in its unit)");
      return std::string(path);
    }
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return NotFound("no cgroup v2 line ('0::') in the process's cgroup file");
}

Result<std::string> FindCgroupV2Root() {
  for (const char* root : {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    struct statfs fs {};
    if (statfs(root, &fs) == 0 && static_cast<unsigned long>(fs.f_type) == CGROUP2_SUPER_MAGIC)
      return std::string(root);
  }
  return NotFound(
      "no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup; workloads "
      "(units, containers) cannot be named");
}

Result<uint64_t> CgroupIdOfPath(const std::string& root, std::string_view path) {
  std::string full = root;
  if (!path.empty() && path != "/") full += path;
  struct stat st {};
  if (stat(full.c_str(), &st) != 0) return Status::FromErrno(errno, "cannot stat cgroup " + full);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(full + " is not a cgroup directory");
  return CgroupIdOfDir(full, static_cast<uint64_t>(st.st_ino));
}

uint64_t CgroupIdOfDir(const std::string& dir, uint64_t ino) {
  // kernfs's handle is 8 bytes: the id cgroup_id() gives BPF on every kernel.
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + sizeof(uint64_t)]{};
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = sizeof(uint64_t);
  int mount_id = 0;
  if (name_to_handle_at(AT_FDCWD, dir.c_str(), fh, &mount_id, 0) != 0 ||
      fh->handle_bytes != sizeof(uint64_t))
    return ino;
  uint64_t id = 0;
  std::memcpy(&id, fh->f_handle, sizeof id);
  return id;
}

}  // namespace flowmesh
