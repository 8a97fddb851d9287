// Connection events -> flows (Transtracer edges with the ephemeral port
// collapsed), closed-connection records, process details and endpoint
// changes, collected into the Batch the store writes at each flush. It sees
// every event after ConnTable::Apply, from every probe, and counts each real
// connection once however many probes reported it.
//
// Decisions:
// - A connection is counted as opened in the bucket of its first report (an
//   OPEN, or its CLOSE when no OPEN was seen); counters are added as deltas
//   where they were measured (OPEN/UPDATE from sock_diag, CLOSE), never more
//   than the final counters.
// - A connection found open at start-up (source kSeed) opened before meshd
//   looked: it is carried into the start-up bucket, not counted as opened,
//   and its counters so far are a baseline, not bytes of this bucket (after
//   a restart the previous meshd accounted them already).
// - Every connection still open when a checkpoint bucket (kFlowCheckpointNs)
//   begins is carried into it (FlowStats::carried), and the batch says so
//   (Batch::checkpoints): Tick does that once an hour for every tracked
//   connection, Checkpoint once at start-up. A window finds idle pooled
//   connections from the last checkpoint before it and the opens and closes
//   since, so an idle connection costs one row an hour.
// - Unknown process: the record keeps pid 0 and the flow goes to the
//   "unknown process" node, pid 0 and start_ticks 0 (a passive connection
//   first borrows its listener's owner, as BPF does).
// - Unknown direction (a CLOSE of a connection open before meshd that the
//   snapshot missed): the record says "unknown"; the flow is classified as
//   the poller classifies sockets, passive when the local port has a
//   listener in the same network namespace, else active.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "node/flow/flat_map.h"
#include "node/flow/flow.h"
#include "node/flow/interner.h"
#include "node/flow/process_cache.h"
#include "node/nat/nat_feed.h"
#include "node/probe/event.h"

namespace flowmesh {

struct AggregatorOptions {
  // A second CLOSE of the same 4-tuple within this long, with no OPEN in
  // between, is the other probe reporting the same close.
  int64_t duplicate_close_window_ns = 30'000'000'000;
  // Process details are written again when a process is seen after this
  // long, so retention does not drop a process that is still active.
  int64_t process_refresh_ns = 3600'000'000'000;
  // A process written before its workload was named (a skipped walk, a
  // container its runtime names late) is looked up again at most this
  // often while it is seen, and written again once its details change.
  int64_t process_recheck_ns = 1'000'000'000;
  // Bounds on what is remembered between events (open connections whose
  // CLOSE was lost would otherwise stay forever).
  size_t max_tracked = 1 << 20;
  // Closes remembered for duplicate detection: at 100k closes/s this still
  // covers 2.6 s, more than a poll interval, in ~40 MB.
  size_t max_closed = 1 << 18;
  size_t max_processes = 1 << 16;
  // A NAT alias (NatAlias) is announced this long after its last
  // connection, and at most this many are kept (the oldest go first).
  int64_t alias_ttl_ns = 3600'000'000'000;
  size_t max_aliases = 4096;
  // meshd --records off: a close still lands in its flow (counts, bytes,
  // durations per minute), but no per-connection record is kept.
  bool keep_records = true;
};

struct AggregatorStats {
  uint64_t events = 0;
  uint64_t records = 0;              // closes taken in (ConnRecords, unless --records off)
  uint64_t flows_touched = 0;        // (bucket, flow) deltas produced
  uint64_t duplicate_opens = 0;      // OPEN of a connection already counted
  uint64_t duplicates_ignored = 0;   // CLOSE of a connection already closed
  uint64_t stale_opens_ignored = 0;  // sock_diag OPEN of a connection the kernel closed
  uint64_t untracked_updates = 0;    // UPDATE of a connection not seen open
  uint64_t unattributed = 0;         // connections counted with no process
  uint64_t direction_inferred = 0;   // connections whose direction came from the listeners
  uint64_t tracked_evicted = 0;      // open connections forgotten to stay within max_tracked
  uint64_t carried = 0;              // (bucket, connection) pairs carried into a checkpoint
  uint64_t checkpoints = 0;          // checkpoints marked (hourly, and at start-up)
  // Hourly checkpoints not marked because meshd's probe thread did not run
  // through them (a suspended or starved meshd). Windows then count open
  // connections from the checkpoint before: slower to read, not wrong.
  uint64_t checkpoints_missed = 0;
  // Processes written again because a lookup after the first found another
  // cgroup or workload (named late, or moved).
  uint64_t processes_renamed = 0;
  // Connection tracking (set_nat): connections whose flow keeps a
  // translation, and a balancer's forwarded connections.
  uint64_t translated = 0;
  uint64_t forwarded_opened = 0;
  uint64_t forwarded_closed = 0;
  // Unclaimed entries from or to this node's own addresses: local
  // connections, not forwarded (closed before meshd looked, or in a
  // namespace not recorded).
  uint64_t forwarded_local_ignored = 0;
  uint64_t aliases = 0;          // NAT aliases held (announced while fresh)
  uint64_t tracked = 0;          // open connections now
  uint64_t listeners = 0;        // listening endpoints now
  uint64_t pending_records = 0;  // waiting for the next TakeBatch
  uint64_t pending_flows = 0;
};

class Aggregator {
 public:
  // `cache` resolves process details; may be null (details = the ref only).
  explicit Aggregator(ProcessCache* cache, AggregatorOptions options = {});

  // Any thread; events of one connection must arrive in order.
  void Add(const ConnEvent& ev);
  // A run of events in order, under one lock (the probe's batches).
  void Add(std::span<const ConnEvent* const> events);
  // Room for `more` tracked connections beyond those tracked now, up to
  // max_tracked.
  void Reserve(size_t more);
  // Carries every tracked connection into the checkpoint bucket of `now_ns`
  // (Unix ns) once that bucket has begun, and marks the checkpoint in the
  // batch. Cheap until then; call it often (the probe thread does, between
  // drains), so a checkpoint is at most a drain late. The first call only
  // notes the time: nothing says every connection open then is tracked.
  void Tick(int64_t now_ns);
  // Every connection open now is tracked (the start-up seed is in): carries
  // them into the bucket of `now_ns` and marks it a checkpoint, so windows
  // after it need nothing from before meshd started.
  void Checkpoint(int64_t now_ns);
  // Everything since the last call; the flusher writes it as one batch.
  Batch TakeBatch();
  // A batch the flusher has written, handed back so its records' memory
  // fills again: a fresh buffer per batch was a page fault every 25
  // records on the probe's thread, 12% of meshd's CPU at churn. Kept only
  // up to a few batches' worth (one that grew while the store failed goes).
  void Recycle(Batch&& written);
  // Streaming mode, once the start-up snapshot is in: only the kernel reports
  // opens and closes from then on, exactly once each, so its closes need not
  // be remembered for duplicate detection (an insert, a find and an erase in
  // a large table per close, a fifth of meshd's CPU under heavy churn).
  // Closes from other sources are still remembered. Call before events flow.
  void set_remember_kernel_closes(bool remember) { remember_kernel_closes_ = remember; }
  // Calls `full` (outside the aggregator's locks, once per batch) when
  // `records` records are pending: the flusher's Kick, so the batch in
  // memory stays that size however heavy the churn. Set before events flow.
  void set_on_pending_full(size_t records, std::function<void()> full) {
    pending_full_at_ = records;
    on_pending_full_ = std::move(full);
  }
  AggregatorStats Stats() const;

  // Connection tracking's translations (aggregator_nat.cc); null (the
  // default) = none. Set before events flow, after nat->Seed at
  // `seeded_ns`: forwarded connections seen by then were open before meshd
  // looked, and are carried, not opened.
  // `is_local` says whether an address is this node's (any recorded
  // namespace's): an entry from or to one was a local connection (one that
  // closed before meshd started, one in a namespace not recorded), never a
  // forwarded one. Empty = none is.
  void set_nat(NatFeed* nat, int64_t seeded_ns, std::function<bool(const IpAddr&)> is_local = {}) {
    nat_ = nat;
    nat_seeded_ns_ = seeded_ns;
    nat_is_local_ = std::move(is_local);
  }
  // The fronts this node's NAT translated within alias_ttl_ns of `now_ns`.
  std::vector<NatAlias> Aliases(int64_t now_ns) const;

 private:
  // 48 bytes a connection (96 with its key in tracked_): thousands
  // of connections share one flow, so each holds its id (flows_) rather
  // than an 88-byte FlowKey, and only the counters Account adds up.
  struct Tracked {
    // Payload counters already added to the flow.
    uint64_t bytes_tx = 0;
    uint64_t bytes_rx = 0;
    uint32_t segs_out = 0;
    uint32_t segs_in = 0;
    uint32_t retrans = 0;
    uint32_t flow = 0;  // flows_ id
    int64_t touched_ns = 0;
    int64_t counted_bucket_ns = 0;  // the latest bucket it is counted in (opened or carried)
  };
  // 100,000 of them on a busy host: a field more is 100,000 fields more.
  static_assert(sizeof(Tracked) == 48);
  struct ProcKey {
    uint32_t pid = 0;
    uint64_t start_ticks = 0;
    bool operator==(const ProcKey&) const = default;
  };
  struct ProcKeyHash {
    size_t operator()(const ProcKey& k) const noexcept;
  };
  // What was last written of a process (Batch.processes).
  struct ProcSeen {
    int64_t written_ns = 0;   // event time of its last write
    int64_t checked_ns = 0;   // event time it was last looked up for
    uint64_t cgroup_id = 0;   // the probe's cgroup id last looked up for
    size_t fingerprint = 0;   // its cgroup id and workload as written
    bool looked_up = false;   // fingerprint holds
    bool may_change = false;  // not named yet: look again (process_recheck_ns)
  };
  // A process to look up outside the lock; `write` = write it whatever
  // the lookup says (new, or due for a refresh), else only if it changed.
  struct ProcLookup {
    ProcessRef ref;
    bool write = false;
  };
  struct BucketKey {
    int64_t bucket_ns = 0;
    FlowKey flow;
    bool operator==(const BucketKey&) const = default;
  };
  struct BucketKeyHash {
    size_t operator()(const BucketKey& k) const noexcept;
  };
  struct Closed {
    int64_t ts_ns = 0;
    EventSource source = EventSource::kKernel;
  };
  // What one event contributes. Computed under state_mu_ and merged into the
  // pending batch before state_mu_ is released (so batches see events in
  // order); only the process lookups (which may read /proc) run unlocked.
  // One instance (scratch_) is reused for every event, under state_mu_: its
  // vectors keep their capacity, so an event allocates nothing.
  // Records go straight into pending_ (pending_mu_ is held while events are
  // handled), saving a copy of each.
  struct Work {
    std::vector<FlowDelta> flows;
    std::vector<EndpointRecord> added, removed;
    // Per Add, not per event: processes to look up, listeners whose owner's
    // workload is to be filled in.
    std::vector<ProcLookup> processes;
    std::vector<ConnKey> listened;
    void clear() {
      flows.clear();
      added.clear();
      removed.clear();
    }
  };

  void OnOpen(const ConnEvent& ev, Work& w);
  void OnUpdate(const ConnEvent& ev, Work& w);
  void OnClose(const ConnEvent& ev, Work& w);
  void OnListen(const ConnEvent& ev, Work& w);
  void OnUnlisten(const ConnEvent& ev, Work& w);

  // The process a connection belongs to: the event's, or for a passive one
  // its listener's owner.
  ProcessRef Attribute(const ConnEvent& ev, Direction direction) const;
  FlowKey FlowKeyOf(const ConnEvent& ev);
  // The key again, now that the process is known; a translation found
  // before is kept (conntrack may have forgotten it since).
  FlowKey Rekey(const FlowKey& before, const ConnEvent& ev);
  const FlowKey& FlowOf(const Tracked& t) const { return flows_.Get(t.flow); }
  // A tracked connection with no process yet whose event brings one: its
  // flow again, with the process.
  void RekeyIfAttributed(Tracked& t, const ConnEvent& ev);
  // NAT (aggregator_nat.cc): the translation a local connection went
  // through, into its key; a published port's alias.
  void Translate(FlowKey& k, const ConnEvent& ev, const ProcessRef& proc);
  // conntrack's news, then the forwarded connections (a balancer's) it
  // gives: flows of their own, tracked like connections.
  void TakeNat(int64_t now_ns, Work& w);
  void OnForwarded(const ForwardedEvent& fe, Work& w);
  void NoteAlias(const NatAlias& alias);
  // The alias a translated flow of this node's NAT stands for (none for a
  // client's VIP).
  void NoteAliasOf(const FlowKey& k, int64_t ts_ns);
  const EndpointRecord* ListenerFor(const ConnKey& key) const;
  // The counters a seed reports are a baseline, not news.
  static void SetAccounted(Tracked& t, const TcpCounters& c);
  // Adds counters beyond t's accounted ones, the connection itself if `opened`, and
  // its close (with its RTT) if `closed`.
  void Account(Tracked& t, const ConnEvent& ev, bool opened, bool closed, Work& w);
  // Counts t as open when bucket_ns began.
  void Carry(Tracked& t, int64_t bucket_ns, int64_t seen_ns, Work& w);
  // Carries t into the checkpoint of ts_ns, unless it is counted there
  // already (opened or carried).
  void CarryInto(Tracked& t, int64_t ts_ns, Work& w);
  // Carries every tracked connection into bucket_ns and marks it.
  void CheckpointLocked(int64_t bucket_ns);
  // aggregator_process.cc: which processes to look up and write.
  // `owner` = it owns a listener just added: look it up in any case, for
  // the listener's workload.
  void NoteProcess(const ProcessRef& proc, int64_t ts_ns, Work& w, bool owner = false);
  // Looks up (outside the locks) and writes what is new or changed, and
  // gives listeners their owner's workload.
  void LookUpProcesses(const std::vector<ProcLookup>& lookups,
                       const std::vector<ConnKey>& listened);
  // The workload the cache holds for a listener's owner (none yet when it
  // is not cached: LookUpProcesses fills it in).
  Workload OwnerWorkload(const ProcessRef& owner) const;
  // Sets a listener's owner's workload; the listener is written again when
  // it changed.
  void SetListenerWorkload(EndpointRecord& l, const Workload& workload);
  void RememberClose(const ConnKey& key, const ConnEvent& ev);
  void ExpireClosed(int64_t now_ns);
  void BoundTracked();
  void BoundProcesses(int64_t now_ns);
  void MergeLocked(Work& w);

  ProcessCache* const cache_;
  const AggregatorOptions options_;

  // Between-event state. Add may run on the probe thread and on the control
  // thread (counter refreshes) at once.
  mutable std::mutex state_mu_;
  FlatMap<ConnKey, Tracked, ConnKeyHash> tracked_;
  Interner<FlowKey, FlowKeyHash> flows_;  // of tracked_ (an id per Tracked)
  std::unordered_map<ConnKey, Closed, ConnKeyHash> closed_;
  bool remember_kernel_closes_ = true;
  Work scratch_;  // guarded by state_mu_
  std::deque<std::pair<int64_t, ConnKey>> closed_order_;
  std::unordered_map<ConnKey, EndpointRecord, ConnKeyHash> listeners_;
  std::unordered_map<ProcKey, ProcSeen, ProcKeyHash> processes_;
  int64_t ticked_checkpoint_ns_ = 0;  // the checkpoint Tick last carried everything into
  NatFeed* nat_ = nullptr;
  std::function<bool(const IpAddr&)> nat_is_local_;
  size_t pending_full_at_ = 0;  // 0 = never
  std::function<void()> on_pending_full_;
  bool pending_full_told_ = false;  // guarded by pending_mu_
  int64_t nat_seeded_ns_ = 0;
  std::map<std::pair<Endpoint, Endpoint>, NatAlias> aliases_;  // (front, target)
  AggregatorStats stats_;

  // The batch being filled; the flusher swaps it out.
  mutable std::mutex pending_mu_;
  Batch pending_;
  std::vector<ConnRecord> spare_records_;  // Recycle's, empty, for the next batch
  std::unordered_map<BucketKey, size_t, BucketKeyHash> pending_index_;  // -> pending_.flows
  uint64_t records_ = 0;
  uint64_t flows_touched_ = 0;
};

}  // namespace flowmesh
