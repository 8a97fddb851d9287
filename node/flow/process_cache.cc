// ProcessCache: bounded LRU of verified identities plus short-lived negatives.
#include "node/flow/process_cache.h"

#include <utility>

#include "node/common/clock.h"

namespace flowmesh {
namespace {

ProcessDetails FromRef(const ProcessRef& ref) {
  ProcessDetails d;
  d.pid = ref.pid;
  d.start_ticks = ref.start_ticks;
  d.pgid = ref.pgid;  // the kernel's, read while the process was alive
  d.comm = std::string(ref.comm_view());
  return d;
}

// No path was found for its cgroup id, or a container has no name yet (its
// runtime writes its files after the cgroup exists).
bool Unnamed(const ProcessDetails& d) {
  const Workload& w = d.workload;
  return w.cgroup.empty() ||
         (w.kind == WorkloadKind::kContainer && (w.name.empty() || (w.pod && w.pod->name.empty())));
}

}  // namespace

ProcessCache::ProcessCache(ProcReader reader, ProcessCacheOptions options,
                           std::function<int64_t()> now_ns, WorkloadResolver* workloads)
    : reader_(std::move(reader)),
      workloads_(workloads),
      options_(options),
      now_ns_(now_ns ? std::move(now_ns) : std::function<int64_t()>(MonotonicNs)) {}

ProcessDetails ProcessCache::Lookup(const ProcessRef& ref) {
  if (!ref.known()) return {};
  const Key key{ref.pid, ref.start_ticks};
  const int64_t now = now_ns_();
  {
    std::unique_lock lock(mu_);
    stats_.lookups++;
    auto it = index_.find(key);
    if (it != index_.end()) {
      if (it->second->expires_ns == 0 || it->second->expires_ns > now) {
        stats_.hits++;
        lru_.splice(lru_.begin(), lru_, it->second);
        ProcessDetails d = it->second->details;
        const bool verified = it->second->expires_ns == 0;
        // A negative entry knows no comm of its own; the ref's is the best.
        if (d.comm.empty()) d.comm = std::string(ref.comm_view());
        if (d.pgid == 0) d.pgid = ref.pgid;
        lock.unlock();
        // Moved to another cgroup since it was cached: name the ref's (the
        // resolver caches it) and keep that for the next event. Or not
        // named yet: ask again (the resolver bounds how often it looks).
        if (RefreshCgroup(ref, &d) || RetryWorkload(verified ? ref.pid : 0, &d)) {
          std::lock_guard relock(mu_);
          auto again = index_.find(key);
          if (again != index_.end()) {
            again->second->details.cgroup_id = d.cgroup_id;
            again->second->details.workload = d.workload;
          }
        }
        return d;
      }
      lru_.erase(it->second);
      index_.erase(it);
    }
  }
  // /proc is read without the lock: a slow read must not stall other callers.
  ReadOutcome outcome = ReadOutcome::kGone;
  ProcessDetails d = ReadProc(ref, &outcome);
  std::lock_guard lock(mu_);
  if (outcome == ReadOutcome::kVerified) {
    InsertLocked(key, d, 0);
  } else if (outcome == ReadOutcome::kUnverified) {
    InsertLocked(key, d, now + options_.negative_ttl_ns);  // read, but unverifiable
  } else {
    // Gone or reused: remember only that (and the ref's own cgroup), never
    // another process's details.
    ProcessDetails neg = FromRef(ref);
    neg.comm.clear();
    neg.cgroup_id = d.cgroup_id;
    neg.workload = d.workload;
    InsertLocked(key, neg, now + options_.negative_ttl_ns);
  }
  return d;
}

std::optional<ProcessDetails> ProcessCache::Peek(const ProcessRef& ref) const {
  if (!ref.known()) return std::nullopt;
  const int64_t now = now_ns_();
  std::lock_guard lock(mu_);
  auto it = index_.find(Key{ref.pid, ref.start_ticks});
  if (it == index_.end()) return std::nullopt;
  const Entry& e = *it->second;
  if (e.expires_ns != 0 && e.expires_ns <= now) return std::nullopt;
  ProcessDetails d = e.details;
  // As Lookup answers: a negative knows no comm or pgid of its own.
  if (d.comm.empty()) d.comm = std::string(ref.comm_view());
  if (d.pgid == 0) d.pgid = ref.pgid;
  return d;
}

bool ProcessCache::MayNameLater(const ProcessDetails& d) const {
  return workloads_ != nullptr && d.cgroup_id != 0 && Unnamed(d);
}

bool ProcessCache::RetryWorkload(uint32_t pid, ProcessDetails* d) {
  if (!MayNameLater(*d)) return false;
  const Workload& w = d->workload;
  // No pid for an unresolved id: /proc already failed to name it, and the
  // resolver's negative must spare a /proc read per event.
  Workload again = workloads_->Resolve(d->cgroup_id, w.cgroup.empty() ? 0 : pid);
  if (again == w) return false;
  d->workload = std::move(again);
  return true;
}

bool ProcessCache::RefreshCgroup(const ProcessRef& ref, ProcessDetails* d) {
  if (ref.cgroup_id == 0 || ref.cgroup_id == d->cgroup_id) return false;
  d->cgroup_id = ref.cgroup_id;
  d->workload = workloads_ ? workloads_->Resolve(ref.cgroup_id) : Workload{};
  return true;
}

ProcessDetails ProcessCache::ReadProc(const ProcessRef& ref, ReadOutcome* outcome) {
  {
    std::lock_guard lock(mu_);
    stats_.proc_reads++;
  }
  Result<ProcessInfo> info = reader_.Read(ref.pid);
  bool reused = info.ok() && ref.start_ticks != 0 && info->start_ticks != ref.start_ticks;
  if (!info.ok() || reused) {
    {
      std::lock_guard lock(mu_);
      (reused ? stats_.pid_reused : stats_.gone)++;
    }
    // The process is gone, but the cgroup it was in may still be named
    // (by a walk: its pid is no one's, or someone else's, to ask).
    ProcessDetails d = FromRef(ref);
    RefreshCgroup(ref, &d);
    return d;
  }
  ProcessDetails d;
  d.pid = ref.pid;
  d.start_ticks = ref.start_ticks;
  d.pgid = info->pgid;
  d.ppid = info->ppid;
  d.comm = info->comm.empty() ? std::string(ref.comm_view()) : info->comm;
  d.exe = info->exe;
  if (ref.cgroup_id != 0) {
    d.cgroup_id = ref.cgroup_id;
  } else if (workloads_ && workloads_->enabled()) {
    Result<uint64_t> id = workloads_->CgroupIdOfPid(ref.pid);
    if (id.ok()) d.cgroup_id = *id;
  }
  if (workloads_ && d.cgroup_id != 0) d.workload = workloads_->Resolve(d.cgroup_id, ref.pid);
  // Without a start time the ref cannot be checked against /proc: use what is
  // there now, but only for as long as a negative would be kept.
  *outcome = ref.start_ticks != 0 ? ReadOutcome::kVerified : ReadOutcome::kUnverified;
  return d;
}

void ProcessCache::InsertLocked(Key key, const ProcessDetails& details, int64_t expires_ns) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(Entry{key, details, expires_ns});
  index_[key] = lru_.begin();
  while (lru_.size() > options_.capacity && !lru_.empty()) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
    stats_.evictions++;
  }
}

ProcessCacheStats ProcessCache::Stats() const {
  std::lock_guard lock(mu_);
  ProcessCacheStats s = stats_;
  s.size = lru_.size();
  return s;
}

}  // namespace flowmesh
