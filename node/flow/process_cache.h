// Process identity -> display details (pgid, ppid, exe, cgroup and workload)
// from /proc, cached by (pid, start_ticks) so the aggregator reads /proc once
// per process, not per event, and never pins a reused pid's details on the
// wrong process.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "node/flow/flow.h"
#include "node/proc/process.h"
#include "node/proc/process_ref.h"
#include "node/proc/workload_resolver.h"

namespace flowmesh {

struct ProcessCacheOptions {
  size_t capacity = 16384;  // entries, least recently used go first
  // How long "that process is gone (or its pid now belongs to another)" is
  // remembered: a flood of short-lived clients must not reread /proc per
  // event, but a ref whose start_ticks was 0 (unverifiable) is retried soon.
  int64_t negative_ttl_ns = 5'000'000'000;
};

struct ProcessCacheStats {
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t proc_reads = 0;  // /proc/<pid> reads done
  uint64_t gone = 0;        // /proc/<pid> missing or unreadable
  uint64_t pid_reused = 0;  // /proc/<pid> belongs to a process with another start time
  uint64_t evictions = 0;
  size_t size = 0;
};

class ProcessCache {
 public:
  // `now_ns` is a monotonic clock (tests pass a fake one). `workloads`
  // (not owned; null = none) names each process's cgroup: without it
  // details carry the ref's cgroup id and no workload.
  explicit ProcessCache(ProcReader reader, ProcessCacheOptions options = {},
                        std::function<int64_t()> now_ns = {},
                        WorkloadResolver* workloads = nullptr);

  // Details of the process `ref` names. When /proc no longer has it (or the
  // pid was reused), the result holds only what the ref has: pid,
  // start_ticks, comm, and the cgroup id with its workload. The ref's
  // cgroup id (taken when the probe saw the process) wins over the one
  // /proc gives, which is read only when the ref has none (polling, seed).
  // A ref with pid 0 yields empty details.
  ProcessDetails Lookup(const ProcessRef& ref);

  // What the cache holds for `ref`, and nothing more: no /proc read, no
  // resolver, no insert, no refresh. Control threads ask about the processes
  // of old records: their asking must not evict live entries for negatives
  // of the dead, nor rename a live process after a record's old cgroup.
  // nullopt when `ref` is not cached (or its negative expired).
  std::optional<ProcessDetails> Peek(const ProcessRef& ref) const;

  // Whether a later Lookup may name `d` better than it is: its cgroup had
  // no path yet (a skipped walk) or its container no name yet. The
  // aggregator looks such a process up again, and writes it again once it
  // is named.
  bool MayNameLater(const ProcessDetails& d) const;

  ProcessCacheStats Stats() const;

 private:
  struct Key {
    uint32_t pid;
    uint64_t start_ticks;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>{}((uint64_t{k.pid} << 40) ^ k.start_ticks * 0x9e3779b97f4a7c15ULL);
    }
  };
  struct Entry {
    Key key;
    ProcessDetails details;
    int64_t expires_ns = 0;  // 0 = never (a verified identity does not change)
  };

  enum class ReadOutcome { kVerified, kUnverified, kGone };
  ProcessDetails ReadProc(const ProcessRef& ref, ReadOutcome* outcome);
  void InsertLocked(Key key, const ProcessDetails& details, int64_t expires_ns);
  // The ref's cgroup and its workload, when they are not what `d` holds.
  bool RefreshCgroup(const ProcessRef& ref, ProcessDetails* d);
  // The workload again when no path was found for the id or a container
  // has no name yet (its runtime writes its files after the cgroup exists).
  bool RetryWorkload(uint32_t pid, ProcessDetails* d);

  const ProcReader reader_;
  WorkloadResolver* const workloads_;
  const ProcessCacheOptions options_;
  const std::function<int64_t()> now_ns_;

  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
  ProcessCacheStats stats_;
};

}  // namespace flowmesh
