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

const ProcessRef* SocketOwners::Find(uint32_t inode) const {
  auto it =
      std::lower_bound(owners_.begin(), owners_.end(), std::pair<uint32_t, uint32_t>{inode, 0});
  return it != owners_.end() && it->first == inode ? &processes_[it->second] : nullptr;
}

ProcessRef SocketOwners::Lookup(uint32_t inode) {
  if (inode == 0) return {};
  if (const ProcessRef* p = Find(inode)) return *p;
  if (scanned_ && clock_() - last_scan_ns_ < min_rescan_ns_) return {};
  Scan();
  const ProcessRef* p = Find(inode);
  return p ? *p : ProcessRef{};
}

ProcessRef SocketOwners::Lookup(uint32_t inode, int64_t seen_at_ns) {
  if (inode == 0) return {};
  if (const ProcessRef* p = Find(inode)) return *p;
  if (scanned_ && last_scan_ns_ >= seen_at_ns) return {};
  Scan();
  const ProcessRef* p = Find(inode);
  return p ? *p : ProcessRef{};
}

void SocketOwners::Scan() {
  scanned_ = true;
  last_scan_ns_ = clock_();
  scans_++;
  owners_.clear();
  processes_.clear();
  unreadable_ = 0;

  // (inode, pid) per socket fd, sorted below: a pair a socket rather than a
  // hash node and a vector each.
  std::vector<std::pair<uint32_t, uint32_t>> holders;
  std::optional<std::vector<std::pair<uint32_t, uint32_t>>> listed;
  if (holder_source_) listed = holder_source_();
  if (listed) holders = std::move(*listed);
  else if (!WalkFds(&holders)) return;  // no proc: every socket shows without a process
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());  // dup'ed fds
  Attribute(holders);
}

bool SocketOwners::WalkFds(std::vector<std::pair<uint32_t, uint32_t>>* holders) {
  Result<std::vector<uint32_t>> pids = reader_.Pids();
  if (!pids.ok()) return false;
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
      holders->emplace_back(*inode, pid);
    }
  }
  return true;
}

void SocketOwners::Attribute(const std::vector<std::pair<uint32_t, uint32_t>>& holders) {
  if (!cgroup_root_wanted_) {
    // Once: the mount does not move while meshd runs.
    Result<std::string> root = FindCgroupV2Root();
    if (!root.ok()) FM_LOG(Warn, "proc") << root.status().message();
    cgroup_root_wanted_ = root.ok() ? *root : std::string();
    cgroup_root_ = *cgroup_root_wanted_;
  }
  // pid -> its processes_ index: one cgroup read per owner per scan.
  std::unordered_map<uint32_t, uint32_t> owner_index;
  // stat is read once per socket-holding process, not once per socket.
  std::unordered_map<uint32_t, std::optional<ProcStat>> stats;
  std::vector<const ProcStat*> candidates;
  for (size_t i = 0; i < holders.size();) {
    const uint32_t inode = holders[i].first;
    candidates.clear();
    for (; i < holders.size() && holders[i].first == inode; i++) {
      const uint32_t pid = holders[i].second;
      auto [it, inserted] = stats.try_emplace(pid);
      if (inserted) {
        Result<ProcStat> st = reader_.ReadStat(pid);
        if (st.ok()) it->second = std::move(st).value();
      }
      if (it->second) candidates.push_back(&*it->second);
    }
    std::optional<ProcessRef> owner = ChooseOwner(candidates);
    if (!owner) continue;
    auto [it, inserted] =
        owner_index.try_emplace(owner->pid, static_cast<uint32_t>(processes_.size()));
    if (inserted) {
      owner->cgroup_id = CgroupId(owner->pid);
      processes_.push_back(*owner);
    }
    owners_.emplace_back(inode, it->second);  // in inode order, as holders are
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
