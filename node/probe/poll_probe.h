// The polling probe: a sock_diag snapshot every interval, diffed against the
// previous one into open/close/update/listen/unlisten events. Used where eBPF
// is not allowed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/probe/probe.h"
#include "node/probe/snapshot.h"

namespace flowmesh {

// What changed between consecutive snapshots. Pure: no clock, no I/O.
class PollDiff {
 public:
  // Compares `snap` with the previous snapshot and appends to `out`, in this
  // order: kListen, kOpen, kUpdate, kClose, kUnlisten. All stamped `now_ns`
  // (Unix ns).
  //  - The first snapshot's connections and listeners are reported as
  //    kOpen/kListen with source kSeed: they existed before we looked.
  //  - A connection that vanished is kClose with its last counters and
  //    duration now - first seen (0 when it was already there at the first
  //    snapshot: its real start is unknown). Counters and duration miss what
  //    happened after the last snapshot, at most one interval.
  //  - A connection whose counters or tcp_flags changed (or whose process
  //    became known) is kUpdate carrying the new values.
  //  - The same 4-tuple with a different socket cookie is a new connection:
  //    kClose of the old one, kOpen of the new.
  //  - A listener that changed owner is kUnlisten + kListen.
  void Apply(const Snapshot& snap, int64_t now_ns, std::vector<ConnEvent>* out);

  size_t connections() const { return conns_.size(); }
  size_t listeners() const { return listeners_.size(); }

 private:
  struct Tracked {
    ConnEvent last;  // as of the latest snapshot
    uint64_t cookie = 0;
    int64_t first_seen_ns = 0;  // 0: present at the first snapshot
  };

  std::unordered_map<ConnKey, Tracked, ConnKeyHash> conns_;
  std::unordered_map<ConnKey, ConnEvent, ConnKeyHash> listeners_;
  bool seeded_ = false;
};

class PollProbe : public Probe {
 public:
  // `cgroup_root`: see Snapshotter (nullopt: the host's cgroup v2 mount).
  PollProbe(ProbeFilter filter, std::chrono::milliseconds interval, std::string proc_root = "/proc",
            std::optional<std::string> cgroup_root = std::nullopt);

  std::string_view Mode() const override { return "polling"; }
  // Opens sock_diag in the selected namespace; the error names the fix.
  Status Init() override;
  // Sleeps until the next poll is due, but at most timeout_ms (returning 0
  // if it is still not due), then polls and delivers the diff. A failed poll
  // is logged and counted and returns 0; only a run of failures in a row is
  // returned as an error, since a probe that can never dump is dead.
  // A Wake() since the last poll makes it poll at once, off the cadence
  // (the scheduled poll still follows on time).
  Result<int> TransferData(EventSink& sink, int timeout_ms) override;
  uint64_t Wake() override;
  uint64_t WakesServed() const override { return wakes_served_; }
  // Wakes a sleeping TransferData; later calls return 0 at once.
  void Stop() override;
  ProbeStats Stats() const override;

 private:
  std::chrono::milliseconds interval_;
  Snapshotter snapshotter_;
  PollDiff diff_;
  bool initialized_ = false;
  int64_t next_poll_ns_ = 0;  // CLOCK_MONOTONIC; 0: poll at once
  int failures_in_a_row_ = 0;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopped_ = false;       // guarded by mu_
  uint64_t wakes_ = 0;         // tickets handed out; guarded by mu_
  uint64_t wakes_served_ = 0;  // the calling thread's (TransferData's) only

  std::atomic<uint64_t> polls_{0};
  std::atomic<uint64_t> events_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> poll_errors_{0};
  std::atomic<uint64_t> netns_skipped_{0};
  std::atomic<uint64_t> cgroup_errors_{0};
  std::atomic<uint64_t> tracked_{0};
};

}  // namespace flowmesh
