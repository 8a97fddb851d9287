// WorkloadResolver: a bounded LRU of cgroup ids, filled from /proc or a walk.
#include "node/proc/workload_resolver.h"

#include <dirent.h>
#include <sys/stat.h>

#include <utility>
#include <vector>

#include "node/common/clock.h"
#include "node/proc/cgroup.h"
#include "node/proc/cgroup_path.h"

namespace flowmesh {

WorkloadResolver::WorkloadResolver(ProcReader proc, WorkloadResolverOptions options,
                                   std::function<int64_t()> now_ns)
    : proc_(std::move(proc)),
      options_(std::move(options)),
      now_ns_(now_ns ? std::move(now_ns) : std::function<int64_t()>(MonotonicNs)) {}

Result<std::string> WorkloadResolver::PathOfPid(uint32_t pid) {
  Result<std::string> text = ReadSmallFile(proc_.PidPath(pid, "cgroup"), 64 << 10);
  if (!text.ok()) return text.status();
  return ParseProcCgroupV2(*text);
}

void WorkloadResolver::AddMetadata(Workload* w) {
  MetadataOutcome out = AddRuntimeMetadata(options_.runtime, w);
  std::lock_guard lock(mu_);
  stats_.metadata_reads++;
  stats_.metadata_errors += static_cast<uint64_t>(out.malformed);
}

void WorkloadResolver::PutLocked(Entry e) {
  auto it = index_.find(e.id);
  if (it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
  uint64_t id = e.id;
  lru_.push_front(std::move(e));
  index_[id] = lru_.begin();
  while (lru_.size() > options_.capacity && !lru_.empty()) {
    index_.erase(lru_.back().id);
    lru_.pop_back();
  }
}

Result<uint64_t> WorkloadResolver::CgroupIdOfPid(uint32_t pid) {
  if (!enabled()) return Unavailable("workloads are off (no cgroup v2 root)");
  Result<std::string> path = PathOfPid(pid);
  if (!path.ok()) return path.status();
  Result<uint64_t> id = CgroupIdOfPath(options_.cgroup_root, *path);
  if (!id.ok()) return id.status();
  // Remember the path: Resolve(id) right after must not read /proc again.
  std::lock_guard lock(mu_);
  auto it = index_.find(*id);
  if (it == index_.end() || it->second->path != *path) {
    Entry e;
    e.id = *id;
    e.path = *path;
    e.workload = ParseCgroupPath(*path);
    PutLocked(std::move(e));
  }
  return *id;
}

std::string WorkloadResolver::Walk(uint64_t want, bool* busy) {
  // The probe thread asks: a second caller does not wait out a walk of up
  // to max_walk_entries directories, it is unresolved this once.
  std::unique_lock walk_lock(walk_mu_, std::try_to_lock);
  if (!walk_lock.owns_lock()) {
    *busy = true;
    std::lock_guard lock(mu_);
    stats_.walks_skipped++;
    return "";
  }
  const int64_t now = now_ns_();
  {
    std::lock_guard lock(mu_);
    // Another caller's walk may have just found it.
    auto it = index_.find(want);
    if (it != index_.end() && !it->second->path.empty()) return it->second->path;
    if (walked_ && now - last_walk_ns_ < options_.min_walk_interval_ns) {
      stats_.walks_skipped++;
      return "";
    }
    walked_ = true;
    last_walk_ns_ = now;
    stats_.walks++;
  }
  std::vector<std::pair<uint64_t, std::string>> seen;
  std::vector<std::pair<std::string, int>> stack = {{"", 0}};  // path below the root, depth
  std::string found;
  size_t visited = 0;
  while (!stack.empty() && visited < options_.max_walk_entries) {
    auto [rel, depth] = std::move(stack.back());
    stack.pop_back();
    std::string full = options_.cgroup_root + rel;
    struct stat st {};
    if (stat(full.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    visited++;
    std::string path = rel.empty() ? "/" : rel;
    uint64_t id = CgroupIdOfDir(full, static_cast<uint64_t>(st.st_ino));
    if (id == want) {
      found = path;
    } else if (seen.size() < kMaxWalkRemembered) {
      seen.emplace_back(id, std::move(path));
    }
    if (depth >= options_.max_walk_depth) continue;
    DIR* d = opendir(full.c_str());
    if (!d) continue;
    // What the walk holds is bounded too: a directory of a million
    // children stops adding at max_walk_entries, not at memory's end.
    while (dirent* e = readdir(d)) {
      if (visited + stack.size() >= options_.max_walk_entries) break;
      // cgroupfs directories are children; its files (cgroup.procs, ...) are not.
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      stack.emplace_back(rel + "/" + std::string(name), depth + 1);
    }
    closedir(d);
  }
  // Only a few others are remembered: a walk of 65536 directories must not
  // push every named entry out of the cache (the wanted id the caller puts).
  std::lock_guard lock(mu_);
  for (auto& [id, path] : seen) {
    auto it = index_.find(id);
    if (it != index_.end() && it->second->path == path) continue;
    Entry e;
    e.id = id;
    e.workload = ParseCgroupPath(path);
    e.path = std::move(path);
    PutLocked(std::move(e));
  }
  return found;
}

Workload WorkloadResolver::Resolve(uint64_t cgroup_id, uint32_t pid_hint) {
  if (!enabled() || cgroup_id == 0) return {};
  const int64_t now = now_ns_();
  Entry entry;
  bool cached = false;
  bool first = true;  // the first time this id is named (for the stats)
  {
    std::lock_guard lock(mu_);
    stats_.lookups++;
    auto it = index_.find(cgroup_id);
    bool live = it != index_.end() && (it->second->expires_ns == 0 || it->second->expires_ns > now);
    // A negative spares walks; a caller with a pid to ask may still find it.
    if (live && it->second->path.empty() && pid_hint != 0) live = false;
    if (live) {
      stats_.hits++;
      lru_.splice(lru_.begin(), lru_, it->second);
      Entry& e = *it->second;
      bool container = e.workload.kind == WorkloadKind::kContainer;
      bool unnamed = e.workload.name.empty() || (e.workload.pod && e.workload.pod->name.empty());
      bool retry =
          !e.metadata_read || (unnamed && now - e.metadata_at_ns >= options_.metadata_retry_ns);
      if (!container || !retry) {
        if (!e.metadata_read && !e.workload.empty()) stats_.named++;
        e.metadata_read = true;
        return e.workload;
      }
      first = !e.metadata_read;
      // Claimed now, so concurrent callers do not read the same files.
      e.metadata_read = true;
      e.metadata_at_ns = now;
      entry = e;
      cached = true;
    } else if (it != index_.end()) {
      lru_.erase(it->second);
      index_.erase(it);
    }
  }
  if (!cached) {
    entry.id = cgroup_id;
    if (pid_hint != 0) {
      Result<std::string> path = PathOfPid(pid_hint);
      // The process may have moved (or the pid been reused) since the id
      // was taken: the path counts only when its inode is that id.
      if (path.ok()) {
        Result<uint64_t> id = CgroupIdOfPath(options_.cgroup_root, *path);
        if (id.ok() && *id == cgroup_id) {
          entry.path = *path;
          std::lock_guard lock(mu_);
          stats_.proc_paths++;
        }
      }
    }
    bool busy = false;
    if (entry.path.empty()) entry.path = Walk(cgroup_id, &busy);
    if (entry.path.empty() && busy) return {};  // another walk runs: no negative entry
    if (entry.path.empty()) {
      std::lock_guard lock(mu_);
      stats_.unresolved++;
      entry.expires_ns = now + options_.negative_ttl_ns;
      PutLocked(std::move(entry));
      return {};
    }
    entry.workload = ParseCgroupPath(entry.path);
    entry.metadata_read = true;
    entry.metadata_at_ns = now;
  }
  if (entry.workload.kind == WorkloadKind::kContainer) {
    // The names are re-read from the path's parse: a retry must not keep a
    // runtime guessed from a file that has since gone.
    Workload fresh = ParseCgroupPath(entry.path);
    AddMetadata(&fresh);
    entry.workload = std::move(fresh);
  }
  Workload out = entry.workload;
  std::lock_guard lock(mu_);
  if (first && !out.empty()) stats_.named++;
  auto it = index_.find(cgroup_id);
  if (cached && it == index_.end()) return out;  // evicted meanwhile: not put back
  if (cached) {
    it->second->workload = out;
  } else {
    PutLocked(std::move(entry));
  }
  return out;
}

WorkloadResolverStats WorkloadResolver::Stats() const {
  std::lock_guard lock(mu_);
  WorkloadResolverStats s = stats_;
  s.size = lru_.size();
  return s;
}

}  // namespace flowmesh
