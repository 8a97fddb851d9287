// Socket inode -> owning process (and its cgroup v2 id), from the
// "socket:[INODE]" links under /proc/<pid>/fd and /proc/<pid>/cgroup, cached
// and rescanned at a bounded rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "node/proc/process.h"
#include "node/proc/process_ref.h"

namespace flowmesh {

// Not thread-safe: one owner per probe thread (or behind the caller's lock).
class SocketOwners {
 public:
  // Monotonic nanoseconds; injectable so tests can step time.
  using Clock = std::function<int64_t()>;

  // `cgroup_root`: where the cgroup v2 hierarchy is mounted, for owners'
  // cgroup ids (ProcessRef::cgroup_id). nullopt: FindCgroupV2Root(), looked
  // up once; "": none (ids stay 0). Tests point both roots at fake trees.
  explicit SocketOwners(std::string proc_root = "/proc",
                        std::chrono::milliseconds min_rescan = std::chrono::milliseconds(100),
                        Clock clock = nullptr,
                        std::optional<std::string> cgroup_root = std::nullopt);

  // Where a scan's (socket inode, pid) pairs come from instead of the walk
  // of /proc/<pid>/fd: meshd's BPF iterator (node/probe/socket_iter.h), one
  // read for every process. nullopt from it: the walk, that once.
  using HolderSource =
      std::function<std::optional<std::vector<std::pair<uint32_t, uint32_t>>>()>;
  void set_holder_source(HolderSource source) { holder_source_ = std::move(source); }

  // Rescans every process now, replacing the cache (closed sockets drop out).
  void Refresh();

  // The process holding socket `inode`, or an unknown ProcessRef (pid 0).
  // A cache miss rescans /proc, but at most once per `min_rescan`, so a storm
  // of unknown inodes (sockets of processes we may not inspect, sockets
  // already closed) costs one scan, not thousands. Inode 0 (a socket with no
  // file yet, e.g. still in the accept queue) never triggers a scan.
  ProcessRef Lookup(uint32_t inode);

  // Lookup for a socket known to exist at `seen_at_ns` (the clock's time
  // when the sock_diag dump that reported it had ended). A miss rescans only
  // if the last scan started before then: a scan started later would have
  // seen the socket's fd already. So a whole snapshot's misses cost at most
  // one scan, and a socket opened just after the previous snapshot's scan is
  // still found, however short the polling interval.
  ProcessRef Lookup(uint32_t inode, int64_t seen_at_ns);

  size_t size() const { return owners_.size(); }
  uint64_t scans() const { return scans_; }
  // Processes whose fd directory could not be read in the last scan
  // (EACCES as non-root); their sockets show without a process.
  uint64_t unreadable() const { return unreadable_; }
  // Owners whose cgroup id could not be found (unreadable cgroup file, no v2
  // line, cgroup directory missing under the root), over every scan; their
  // sockets show with cgroup id 0. A process gone meanwhile is not counted.
  uint64_t cgroup_errors() const { return cgroup_errors_; }
  // The v2 root in use; "" when there is none (after the first scan).
  const std::string& cgroup_root() const { return cgroup_root_; }

 private:
  void Scan();
  // The walk: a pair for each socket descriptor of each process.
  bool WalkFds(std::vector<std::pair<uint32_t, uint32_t>>* holders);
  // Chooses each socket's owner among its holders (sorted by inode) and
  // fills owners_ and processes_.
  void Attribute(const std::vector<std::pair<uint32_t, uint32_t>>& holders);
  // The v2 id of `pid`'s cgroup, 0 when unknown (counted in cgroup_errors_).
  uint64_t CgroupId(uint32_t pid);

  ProcReader reader_;
  HolderSource holder_source_;
  std::optional<std::string> cgroup_root_wanted_;  // nullopt until found
  std::string cgroup_root_;
  int64_t min_rescan_ns_;
  Clock clock_;
  // inode -> index into processes_, sorted by inode: 8 bytes a socket
  // instead of a hash node with a 48-byte ProcessRef (88), for the 100,000
  // sockets of a busy host, kept between scans.
  std::vector<std::pair<uint32_t, uint32_t>> owners_;
  std::vector<ProcessRef> processes_;  // each owner once
  // The owner of `inode` as of the last scan, if it had one.
  const ProcessRef* Find(uint32_t inode) const;
  bool scanned_ = false;
  int64_t last_scan_ns_ = 0;
  uint64_t scans_ = 0;
  uint64_t unreadable_ = 0;
  uint64_t cgroup_errors_ = 0;
};

}  // namespace flowmesh
