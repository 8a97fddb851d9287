// Reads process details (/proc/<pid>/stat, exe, cmdline, ns/net) from a
// configurable proc root, so tests can point it at a fake tree.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/status.h"

namespace flowmesh {

struct ProcessInfo {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t pgid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat: clock ticks since boot
  std::string comm;
  std::string exe;      // readlink of /proc/<pid>/exe; "" when unreadable (kernel thread, EACCES)
  std::string cmdline;  // arguments joined by spaces; "" for kernel threads
};

// The fields of /proc/<pid>/stat meshd needs.
struct ProcStat {
  uint32_t pid = 0;
  std::string comm;
  char state = '?';
  uint32_t ppid = 0;
  uint32_t pgid = 0;
  uint64_t start_ticks = 0;
};

// Parses the text of /proc/<pid>/stat. comm may hold spaces and ')', so it
// runs from the first '(' to the LAST ')'.
Result<ProcStat> ParseProcStat(std::string_view text);

// Parses a /proc link target of the form "<kind>:[<inode>]", e.g.
// "socket:[12345]" or "net:[4026531840]". nullopt if it is not one.
std::optional<uint32_t> ParseInodeLink(std::string_view link, std::string_view kind);

// Reads a whole (small) file. Errors name the path and the errno text.
Result<std::string> ReadSmallFile(const std::string& path, size_t max_bytes = 1 << 20);
// readlink(2) into a string. Errors name the path and the errno text.
Result<std::string> ReadLink(const std::string& path);

class ProcReader {
 public:
  explicit ProcReader(std::string proc_root = "/proc");

  // Everything about one process. Only stat is required; exe and cmdline are
  // left empty when they cannot be read (other users' processes as non-root).
  Result<ProcessInfo> Read(uint32_t pid) const;
  // Just /proc/<pid>/stat: the cheap part, for identity (pid, start_ticks).
  Result<ProcStat> ReadStat(uint32_t pid) const;
  // The inode of the process's network namespace, from "net:[4026531840]".
  Result<uint32_t> NetnsInode(uint32_t pid) const;
  // Every numeric directory under the proc root, ascending.
  Result<std::vector<uint32_t>> Pids() const;

  const std::string& root() const { return root_; }
  // "<root>/<pid>/<name>"
  std::string PidPath(uint32_t pid, std::string_view name) const;

 private:
  std::string root_;
};

}  // namespace flowmesh
