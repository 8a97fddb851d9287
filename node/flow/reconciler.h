// Reconciliation of the open-connection table with the kernel: a CLOSE or
// UNLISTEN the probe missed (ring buffer full, the BPF program skipped by
// the kernel) would leave a connection "open" in `top` forever. Every
// interval a sock_diag dump is compared with the table; what the table holds
// that the kernel no longer has is closed, marked reconstructed.
//
// No false closes:
// - Only what the table had before the dump began is judged (its seen_seq
//   is at most the table's Sequence() read before the dump): a connection
//   that opened while the dump ran may be missing from it.
// - Missing once makes a candidate. It is closed only when a second dump,
//   taken a while later, misses it too and nothing reported it in between
//   (same seen_seq): a real CLOSE still queued in the ring buffer at the
//   first dump has been applied by then, and a dump that skipped a socket
//   under churn is not trusted alone.
// - A real CLOSE arriving after all is dropped by the table (ConnTable::CloseMissed).
// - Only namespaces the dump covered are judged.
#pragma once

#include <atomic>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "node/flow/conn_table.h"
#include "node/probe/event.h"

namespace flowmesh {

struct Snapshot;

// The keys a dump found: one sorted array (44 bytes a key, one allocation)
// rather than a hash set's node per key (about 80 bytes and a heap block
// each, 100,000 of them a dump on a busy host). insert appends; Seal sorts
// before the first lookup.
class ConnKeySet {
 public:
  void insert(const ConnKey& key) { keys_.push_back(key); }
  void reserve(size_t n) { keys_.reserve(n); }
  void Seal();
  bool contains(const ConnKey& key) const;  // only after Seal
  size_t size() const { return keys_.size(); }

 private:
  std::vector<ConnKey> keys_;
};

// What one sock_diag dump found, as reconciliation needs it.
struct KernelView {
  int64_t taken_ns = 0;                // Unix ns when the dump began
  uint64_t table_seq = 0;              // ConnTable::Sequence() read before the dump began
  std::unordered_set<uint32_t> netns;  // namespaces dumped
  ConnKeySet connections;
  ConnKeySet listeners;  // as ListenKey gives them
  // Every connection the dump found went through the table as an UPDATE
  // before Apply, which moved its seen_seq past table_seq: then that says
  // what the dump found, and `connections` is not read (nor kept: 4.4 MB at
  // 100,000 connections, for the length of each dump).
  bool found_in_table = false;
};
KernelView KernelViewOf(const Snapshot& snap, int64_t taken_ns, uint64_t table_seq);

struct ReconcilerOptions {
  int64_t interval_ns = 30'000'000'000;
  // How long after a dump that found something missing the confirming dump
  // is taken (at most interval_ns).
  int64_t confirm_after_ns = 2'000'000'000;
};

struct ReconcilerStats {
  uint64_t dumps = 0;
  uint64_t dump_failures = 0;
  uint64_t candidates = 0;  // missing from one dump, waiting for the next
};

// One thread (the probe's) runs it; Stats() may be read from any.
class Reconciler {
 public:
  Reconciler(ConnTable& table, ReconcilerOptions options);

  // The first dump an interval after `now_ns` instead of at once: meshd's
  // start-up snapshot, just taken, is the view a dump would read. (At once,
  // it read every socket again while the probe thread was still delivering
  // the events held during the start: with 100k sockets under churn the
  // ring filled meanwhile and 12k events were lost.)
  void StartAfter(int64_t now_ns) { Schedule(now_ns); }
  // Whether a dump is due at `now_ns` (a monotonic clock).
  bool Due(int64_t now_ns) const { return now_ns >= next_ns_; }
  // Judges the table against a dump; returns the CLOSE and UNLISTEN events it
  // made up (already applied to the table) for the rest of the pipeline.
  // Seals the view's key sets.
  std::vector<ConnEvent> Apply(KernelView view, int64_t now_ns);
  // Drops the candidates the ring buffer has since reported (their CLOSE was
  // still queued when the dump ran: under churn every dump finds some), and
  // when none is left, the confirming dump: it waits for the interval again.
  // Call after the ring is drained, before Due; cheap without candidates.
  // Without it a host with churn dumped every confirm_after_ns, each dump
  // reading every open socket.
  void DropReported(int64_t now_ns);
  // The dump could not be taken: keep the candidates, try again later.
  void Failed(int64_t now_ns);
  ReconcilerStats Stats() const;

 private:
  struct Candidate {
    uint64_t seen_seq = 0;
    int64_t missing_since_ns = 0;  // taken_ns of the dump that first missed it
  };
  using Candidates = std::unordered_map<ConnKey, Candidate, ConnKeyHash>;

  void Schedule(int64_t now_ns);

  ConnTable& table_;
  const ReconcilerOptions options_;
  int64_t next_ns_ = 0;
  int64_t last_dump_ns_ = 0;  // now_ns of the last Apply
  Candidates connections_;
  Candidates listeners_;
  std::atomic<uint64_t> dumps_{0};
  std::atomic<uint64_t> dump_failures_{0};
  std::atomic<uint64_t> candidates_{0};
};

}  // namespace flowmesh
