// Socket inode -> owning process by scanning /proc/<pid>/fd, and the
// owner's cgroup v2 id from /proc/<pid>/cgroup.
#include "node/proc/socket_owners.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/proc/cgroup.h"

namespace flowmesh {
namespace {

struct DirCloser {
  void operator()(DIR* d) const { closedir(d); }
};

// Only the struct layout of ProcessRef is used here (ProcessRef::set_comm
// lives in flowmesh_probe, which depends on this library, not the reverse).
ProcessRef MakeRef(const ProcStat& st) {
  ProcessRef ref;
  ref.pid = st.pid;
  ref.start_ticks = st.start_ticks;
  std::memcpy(ref.comm, st.comm.data(), std::min(st.comm.size(), sizeof ref.comm - 1));
  return ref;
}

// Picks the one process to report among all holders of a socket.
//
// A socket is shared when a process forks after creating it (nginx master and
// workers, prefork servers) or when it is passed on (systemd socket
// activation: pid 1 keeps the listener and hands a copy to the service). The
// operator wants the process that serves on it, so a holder whose child also
// holds the socket is passed over in favour of that child: nginx reports a
// worker (same comm and pgid as the master), a socket-activated service
// reports the service, not systemd. Among the rest, the oldest process (then
// the lowest pid) wins, which makes the choice deterministic from one scan to
// the next instead of depending on readdir order.
std::optional<ProcessRef> ChooseOwner(const std::vector<const ProcStat*>& holders) {
  const ProcStat* best = nullptr;
  for (const ProcStat* h : holders) {
    bool parent_of_holder = std::any_of(holders.begin(), holders.end(),
                                        [&](const ProcStat* o) { return o->ppid == h->pid; });
    if (parent_of_holder) continue;
    if (!best || h->start_ticks < best->start_ticks ||
        (h->start_ticks == best->start_ticks && h->pid < best->pid))
      best = h;
  }
  // Unreachable for a real process tree (it has no cycles), but a fake or
  // racing one might; fall back to the lowest pid rather than to nothing.
  if (!best && !holders.empty())
    best = *std::min_element(holders.begin(), holders.end(),
                             [](const ProcStat* a, const ProcStat* b) { return a->pid < b->pid; });
  if (!best) return std::nullopt;
  return MakeRef(*best);
}

}  // namespace

SocketOwners::SocketOwners(std::string proc_root, std::chrono::milliseconds min_rescan, Clock clock,
                           std::optional<std::string> cgroup_root)
    : reader_(std::move(proc_root)),
      cgroup_root_wanted_(std::move(cgroup_root)),
      cgroup_root_(cgroup_root_wanted_.value_or("")),
      min_rescan_ns_(std::chrono::nanoseconds(min_rescan).count()),
      clock_(clock ? std::move(clock) : Clock(MonotonicNs)) {}

void SocketOwners::Refresh() { Scan(); }

ProcessRef SocketOwners::Lookup(uint32_t inode) {
  if (inode == 0) return {};
  if (auto it = owners_.find(inode); it != owners_.end()) return it->second;
  if (scanned_ && clock_() - last_scan_ns_ < min_rescan_ns_) return {};
  Scan();
  auto it = owners_.find(inode);
  return it == owners_.end() ? ProcessRef{} : it->second;
}

ProcessRef SocketOwners::Lookup(uint32_t inode, int64_t seen_at_ns) {
  if (inode == 0) return {};
  if (auto it = owners_.find(inode); it != owners_.end()) return it->second;
  if (scanned_ && last_scan_ns_ >= seen_at_ns) return {};
  Scan();
  auto it = owners_.find(inode);
  return it == owners_.end() ? ProcessRef{} : it->second;
}

void SocketOwners::Scan() {
  scanned_ = true;
  last_scan_ns_ = clock_();
  scans_++;
  owners_.clear();
  unreadable_ = 0;

  Result<std::vector<uint32_t>> pids = reader_.Pids();
  if (!pids.ok()) return;  // no proc: every socket shows without a process

  std::unordered_map<uint32_t, std::vector<uint32_t>> holders;  // inode -> pids
  char link[64];
  for (uint32_t pid : *pids) {
    std::string fd_dir = reader_.PidPath(pid, "fd");
    int dfd = open(fd_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
      if (errno != ENOENT) unreadable_++;  // ENOENT: the process exited meanwhile
      continue;
    }
    std::unique_ptr<DIR, DirCloser> dir(fdopendir(dfd));
    if (!dir) {
      close(dfd);
      unreadable_++;
      continue;
    }
    while (dirent* e = readdir(dir.get())) {
      if (e->d_name[0] == '.') continue;
      ssize_t n = readlinkat(dirfd(dir.get()), e->d_name, link, sizeof link);
      if (n <= 0 || static_cast<size_t>(n) >= sizeof link) continue;
      std::optional<uint32_t> inode =
          ParseInodeLink(std::string_view(link, static_cast<size_t>(n)), "socket");
      if (!inode) continue;
      std::vector<uint32_t>& h = holders[*inode];
      if (h.empty() || h.back() != pid) h.push_back(pid);  // dup'ed fds: count once
    }
  }

  if (!cgroup_root_wanted_) {
    // Once: the mount does not move while meshd runs.
    Result<std::string> root = FindCgroupV2Root();
    if (!root.ok()) FM_LOG(Warn, "proc") << root.status().message();
    cgroup_root_wanted_ = root.ok() ? *root : std::string();
    cgroup_root_ = *cgroup_root_wanted_;
  }
  std::unordered_map<uint32_t, uint64_t> cgroups;  // pid -> id: one read per owner per scan
  // stat is read once per socket-holding process, not once per socket.
  std::unordered_map<uint32_t, std::optional<ProcStat>> stats;
  std::vector<const ProcStat*> candidates;
  for (auto& [inode, pids_holding] : holders) {
    candidates.clear();
    for (uint32_t pid : pids_holding) {
      auto [it, inserted] = stats.try_emplace(pid);
      if (inserted) {
        Result<ProcStat> st = reader_.ReadStat(pid);
        if (st.ok()) it->second = std::move(st).value();
      }
      if (it->second) candidates.push_back(&*it->second);
    }
    std::optional<ProcessRef> owner = ChooseOwner(candidates);
    if (!owner) continue;
    auto [it, inserted] = cgroups.try_emplace(owner->pid);
    if (inserted) it->second = CgroupId(owner->pid);
    owner->cgroup_id = it->second;
    owners_[inode] = *owner;
  }
}

uint64_t SocketOwners::CgroupId(uint32_t pid) {
  if (cgroup_root_.empty()) return 0;  // no v2 hierarchy: nothing to name
  Result<std::string> text = ReadSmallFile(reader_.PidPath(pid, "cgroup"), 64 << 10);
  if (!text.ok()) {
    if (text.status().code() != Status::Code::kNotFound) cgroup_errors_++;  // else: it exited
    return 0;
  }
  Result<std::string> path = ParseProcCgroupV2(*text);
  Result<uint64_t> id = path.ok() ? CgroupIdOfPath(cgroup_root_, *path) : path.status();
  if (!id.ok()) {
    cgroup_errors_++;
    return 0;
  }
  return *id;
}

}  // namespace flowmesh
