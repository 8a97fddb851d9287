// cgroup id -> v2 path -> Workload, with the runtime's names, cached. The
// probe hands over ids (bpf_get_current_cgroup_id); the path comes from the
// process's /proc/<pid>/cgroup when the process is still there (checked
// against the id), else from a walk of the hierarchy, which is rate-limited,
// one at a time, and remembers a few of the ids it passes.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "node/common/status.h"
#include "node/proc/process.h"
#include "node/proc/runtime_metadata.h"
#include "node/proc/workload.h"

namespace flowmesh {

struct WorkloadResolverOptions {
  std::string cgroup_root;  // the v2 mount (FindCgroupV2Root); "" resolves nothing
  RuntimeRoots runtime;
  size_t capacity = 4096;                   // ids remembered, least recently used go first
  int64_t negative_ttl_ns = 2'000'000'000;  // "no cgroup has that id" is believed this long
  int64_t min_walk_interval_ns = 1'000'000'000;
  int max_walk_depth = 16;
  size_t max_walk_entries = 65536;  // directories one walk visits at most
  // A container whose name the runtime's files did not give yet (docker
  // writes config.v2.json after the cgroup exists) is looked up again at
  // most this often, never per event.
  int64_t metadata_retry_ns = 2'000'000'000;
};

struct WorkloadResolverStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;             // answered from the cache
  uint64_t proc_paths = 0;       // paths from /proc/<pid>/cgroup that matched the id
  uint64_t walks = 0;            // walks of the hierarchy done
  uint64_t walks_skipped = 0;    // wanted, but within min_walk_interval of the last
  uint64_t unresolved = 0;       // ids no path was found for
  uint64_t metadata_reads = 0;   // runtime file lookups
  uint64_t metadata_errors = 0;  // runtime files there but malformed
  uint64_t named = 0;            // workloads (not kNone) resolved, units and containers
  size_t size = 0;
};

class WorkloadResolver {
 public:
  // `proc` gives /proc/<pid>/cgroup; `now_ns` is a monotonic clock (tests
  // pass a fake one).
  WorkloadResolver(ProcReader proc, WorkloadResolverOptions options,
                   std::function<int64_t()> now_ns = {});

  // The workload of cgroup `cgroup_id`; `pid_hint` (0 = none) names a
  // process that was in it. Empty when no path is known (yet) or the path
  // names nothing. Never fails; costs at most one /proc read, one bounded
  // walk (at most one a second) and a few runtime file reads on a miss.
  Workload Resolve(uint64_t cgroup_id, uint32_t pid_hint = 0);

  // The process's cgroup id now, from /proc/<pid>/cgroup and the
  // directory's inode (polling and the start-up seed have no BPF to ask).
  Result<uint64_t> CgroupIdOfPid(uint32_t pid);

  bool enabled() const { return !options_.cgroup_root.empty(); }
  const std::string& cgroup_root() const { return options_.cgroup_root; }
  WorkloadResolverStats Stats() const;

 private:
  struct Entry {
    uint64_t id = 0;
    std::string path;  // "" = no path found (a negative entry)
    Workload workload;
    bool metadata_read = false;
    int64_t metadata_at_ns = 0;
    int64_t expires_ns = 0;  // negatives only; 0 = never
  };

  Result<std::string> PathOfPid(uint32_t pid);
  // Walks the hierarchy, recording the first kMaxWalkRemembered ids seen;
  // the path of `want` or "". `busy` when another walk is running.
  std::string Walk(uint64_t want, bool* busy);
  static constexpr size_t kMaxWalkRemembered = 256;
  void AddMetadata(Workload* w);
  void PutLocked(Entry e);

  const ProcReader proc_;
  const WorkloadResolverOptions options_;
  const std::function<int64_t()> now_ns_;

  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<uint64_t, std::list<Entry>::iterator> index_;
  int64_t last_walk_ns_ = 0;
  bool walked_ = false;
  WorkloadResolverStats stats_;
  std::mutex walk_mu_;  // one walk at a time, outside mu_
};

}  // namespace flowmesh
