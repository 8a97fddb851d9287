// Aggregator: per-connection accounting (count once, add only new counters),
// duplicate suppression across probes, and the pending batch.
#include "node/flow/aggregator.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "node/flow/conn_table.h"

namespace flowmesh {
namespace {

uint64_t Delta(uint64_t now, uint64_t& accounted) {
  if (now <= accounted) return 0;  // counters never go back; a lower report adds nothing
  uint64_t d = now - accounted;
  accounted = now;
  return d;
}

uint32_t Delta32(uint32_t now, uint32_t& accounted) {
  uint64_t a = accounted;
  uint64_t d = Delta(now, a);
  accounted = static_cast<uint32_t>(a);
  return static_cast<uint32_t>(d);
}

}  // namespace

size_t Aggregator::ProcKeyHash::operator()(const ProcKey& k) const noexcept {
  return std::hash<uint64_t>{}(k.start_ticks * 0x9e3779b97f4a7c15ULL ^ k.pid);
}

size_t Aggregator::BucketKeyHash::operator()(const BucketKey& k) const noexcept {
  return FlowKeyHash{}(k.flow) ^ std::hash<int64_t>{}(k.bucket_ns);
}

Aggregator::Aggregator(ProcessCache* cache, AggregatorOptions options)
    : cache_(cache), options_(options) {}

void Aggregator::Add(const ConnEvent& ev) {
  const ConnEvent* one = &ev;
  Add(std::span<const ConnEvent* const>(&one, 1));
}

void Aggregator::Reserve(size_t more) {
  std::lock_guard lock(state_mu_);
  // No more than it may keep (BoundTracked forgets the rest).
  tracked_.reserve(std::min(tracked_.size() + more, options_.max_tracked));
}

void Aggregator::Add(std::span<const ConnEvent* const> events) {
  if (events.empty()) return;
  std::vector<ProcLookup> lookups;
  std::vector<ConnKey> listened;
  bool full = false;
  {
    std::lock_guard lock(state_mu_);
    std::lock_guard pending(pending_mu_);
    Work& w = scratch_;
    w.processes.clear();
    w.listened.clear();
    // The kernel confirmed a translated connection before it was
    // established: its conntrack event is queued by the time the
    // connection's own event was read, so taking them in now finds it.
    if (nat_ != nullptr) nat_->Refresh(events.front()->ts_ns);
    for (size_t i = 0; i < events.size(); ++i) {
      if (i + kPrefetchAhead < events.size()) tracked_.prefetch(events[i + kPrefetchAhead]->key);
      const ConnEvent& ev = *events[i];
      w.clear();
      stats_.events++;
      ExpireClosed(ev.ts_ns);
      switch (ev.kind) {
        case EventKind::kOpen: OnOpen(ev, w); break;
        case EventKind::kUpdate: OnUpdate(ev, w); break;
        case EventKind::kClose: OnClose(ev, w); break;
        case EventKind::kListen: OnListen(ev, w); break;
        case EventKind::kUnlisten: OnUnlisten(ev, w); break;
      }
      BoundTracked();
      MergeLocked(w);
    }
    // Rare: a process seen first, one not named yet, a listener's owner.
    if (!w.processes.empty()) lookups = w.processes;
    if (!w.listened.empty()) listened = w.listened;
    if (pending_full_at_ && !pending_full_told_ && pending_.records.size() >= pending_full_at_)
      full = pending_full_told_ = true;
  }
  if (full) on_pending_full_();
  if (!lookups.empty()) LookUpProcesses(lookups, listened);
}

void Aggregator::OnOpen(const ConnEvent& ev, Work& w) {
  auto closed = closed_.find(ev.key);
  if (closed != closed_.end() && ev.source != EventSource::kKernel &&
      closed->second.source == EventSource::kKernel) {
    // A sock_diag dump taken before the close, delivered after it. Its own
    // CLOSE will follow and is then a duplicate too, as the key stays closed.
    stats_.stale_opens_ignored++;
    return;
  }
  auto it = tracked_.find(ev.key);
  if (it != tracked_.end()) {
    stats_.duplicate_opens++;
    RekeyIfAttributed(it->second, ev);
    CarryInto(it->second, ev.ts_ns, w);
    Account(it->second, ev, /*opened=*/false, /*closed=*/false, w);
    NoteProcess(Attribute(ev, FlowOf(it->second).direction), ev.ts_ns, w);
    return;
  }
  if (closed != closed_.end()) closed_.erase(closed);  // a new connection on the same 4-tuple
  Tracked& t = tracked_[ev.key];
  t.flow = flows_.Intern(FlowKeyOf(ev));
  if (ev.source == EventSource::kSeed) {
    // Open before meshd looked: its bytes so far moved before any window
    // meshd can speak for, and it is carried, not opened, here.
    SetAccounted(t, ev.counters);
    Carry(t, FlowBucketOf(ev.ts_ns), ev.ts_ns, w);
  } else {
    t.counted_bucket_ns = FlowBucketOf(ev.ts_ns);
    Account(t, ev, /*opened=*/true, /*closed=*/false, w);
  }
  NoteProcess(Attribute(ev, FlowOf(t).direction), ev.ts_ns, w);
}

void Aggregator::RekeyIfAttributed(Tracked& t, const ConnEvent& ev) {
  if (FlowOf(t).pid == 0 && ev.proc.known()) flows_.Replace(&t.flow, Rekey(FlowOf(t), ev));
}

void Aggregator::OnUpdate(const ConnEvent& ev, Work& w) {
  auto it = tracked_.find(ev.key);
  if (it == tracked_.end()) {
    // Never creates a connection: an UPDATE can be a snapshot racing a CLOSE.
    stats_.untracked_updates++;
    return;
  }
  RekeyIfAttributed(it->second, ev);
  CarryInto(it->second, ev.ts_ns, w);
  Account(it->second, ev, /*opened=*/false, /*closed=*/false, w);
}

void Aggregator::OnClose(const ConnEvent& ev, Work& w) {
  auto it = tracked_.find(ev.key);
  Tracked t;
  if (it != tracked_.end()) {
    t = it->second;
    tracked_.erase(it);  // its flow id is t's now, released below
    RekeyIfAttributed(t, ev);
    CarryInto(t, ev.ts_ns, w);
    Account(t, ev, /*opened=*/false, /*closed=*/true, w);
    if (FlowOf(t).translated()) NoteAliasOf(FlowOf(t), ev.ts_ns);  // its last connection
  } else {
    if (closed_.count(ev.key)) {
      stats_.duplicates_ignored++;
      return;
    }
    t.flow = flows_.Intern(FlowKeyOf(ev));
    Account(t, ev, /*opened=*/true, /*closed=*/true, w);
  }
  RememberClose(ev.key, ev);
  const Direction direction = FlowOf(t).direction;
  flows_.Release(t.flow);

  records_++;
  if (!options_.keep_records) {
    NoteProcess(Attribute(ev, direction), ev.ts_ns, w);
    return;
  }
  ConnRecord& r = pending_.records.emplace_back();
  r.ts_ns = ev.ts_ns;
  r.key = ev.key;
  r.direction = ev.direction;
  r.proc = Attribute(ev, direction);
  r.counters = ev.counters;
  r.duration_ns = ev.duration_ns;
  r.reconstructed = ev.reconstructed;
  NoteProcess(r.proc, ev.ts_ns, w);
}

void Aggregator::OnListen(const ConnEvent& ev, Work& w) {
  ConnKey lk = ListenKey(ev.key);
  auto it = listeners_.find(lk);
  if (it != listeners_.end()) {
    ProcessRef& have = it->second.proc;
    bool same = have.pid == ev.proc.pid && have.start_ticks == ev.proc.start_ticks;
    // Another probe's report of the same listener, or one that knows less.
    if (same || !ev.proc.known()) return;
    have = ev.proc;  // the owner became known, or the port changed hands
    it->second.workload = OwnerWorkload(ev.proc);
    w.added.push_back(it->second);
    NoteProcess(ev.proc, ev.ts_ns, w, /*owner=*/true);
    w.listened.push_back(lk);
    return;
  }
  EndpointRecord r;
  r.netns = lk.netns;
  r.addr = lk.laddr;
  r.port = lk.lport;
  r.proc = ev.proc;
  r.since_ns = ev.ts_ns;
  r.workload = OwnerWorkload(ev.proc);
  listeners_.emplace(lk, r);
  w.added.push_back(r);
  NoteProcess(ev.proc, ev.ts_ns, w, /*owner=*/true);
  if (ev.proc.known()) w.listened.push_back(lk);
}

void Aggregator::OnUnlisten(const ConnEvent& ev, Work& w) {
  ConnKey lk = ListenKey(ev.key);
  auto it = listeners_.find(lk);
  if (it != listeners_.end()) {
    w.removed.push_back(it->second);
    w.removed.back().until_ns = ev.ts_ns;
    listeners_.erase(it);
    return;
  }
  // Not known here, but the store may hold it from before a restart.
  EndpointRecord r;
  r.netns = lk.netns;
  r.addr = lk.laddr;
  r.port = lk.lport;
  r.proc = ev.proc;
  r.until_ns = ev.ts_ns;
  w.removed.push_back(r);
}

const EndpointRecord* Aggregator::ListenerFor(const ConnKey& key) const {
  auto it = listeners_.find(ListenKey(key));
  if (it != listeners_.end()) return &it->second;
  ConnKey any{key.netns, {}, {}, key.lport, 0};
  any.laddr.family = key.laddr.family;  // 0.0.0.0 or ::
  it = listeners_.find(any);
  if (it != listeners_.end()) return &it->second;
  if (key.laddr.is_v4()) {  // a dual-stack :: listener accepts IPv4 too
    any.laddr.family = AF_INET6;
    it = listeners_.find(any);
    if (it != listeners_.end()) return &it->second;
  }
  return nullptr;
}

ProcessRef Aggregator::Attribute(const ConnEvent& ev, Direction direction) const {
  if (ev.proc.known() || direction != Direction::kPassive) return ev.proc;
  const EndpointRecord* l = ListenerFor(ev.key);
  return l ? l->proc : ev.proc;
}

FlowKey Aggregator::FlowKeyOf(const ConnEvent& ev) {
  Direction dir = ev.direction;
  if (dir == Direction::kUnknown) {
    dir = ListenerFor(ev.key) ? Direction::kPassive : Direction::kActive;
    stats_.direction_inferred++;
  }
  ProcessRef proc = Attribute(ev, dir);
  FlowKey k;
  k.direction = dir;
  k.netns = ev.key.netns;
  k.pid = proc.pid;
  k.start_ticks = proc.known() ? proc.start_ticks : 0;
  k.laddr = ev.key.laddr;
  k.raddr = ev.key.raddr;
  if (dir == Direction::kPassive) {
    k.lport = ev.key.lport;  // the client's ephemeral port collapses
  } else {
    k.rport = ev.key.rport;  // our ephemeral port collapses
  }
  if (nat_ != nullptr) Translate(k, ev, proc);
  return k;
}

FlowKey Aggregator::Rekey(const FlowKey& before, const ConnEvent& ev) {
  FlowKey k = FlowKeyOf(ev);
  if (before.translated() && !k.translated()) {
    k.xaddr = before.xaddr;
    k.xport = before.xport;
  }
  return k;
}

void Aggregator::SetAccounted(Tracked& t, const TcpCounters& c) {
  t.bytes_tx = c.bytes_tx;
  t.bytes_rx = c.bytes_rx;
  t.segs_out = c.segs_out;
  t.segs_in = c.segs_in;
  t.retrans = c.retrans;
}

void Aggregator::Account(Tracked& t, const ConnEvent& ev, bool opened, bool closed, Work& w) {
  FlowStats s;
  if (opened) {
    s.connections = 1;
    const FlowKey& flow = FlowOf(t);
    if (flow.pid == 0 && flow.direction != Direction::kForwarded) stats_.unattributed++;
  }
  if (closed) s.closed = 1;
  const TcpCounters& c = ev.counters;
  s.bytes_tx = Delta(c.bytes_tx, t.bytes_tx);
  s.bytes_rx = Delta(c.bytes_rx, t.bytes_rx);
  s.segs_out = Delta32(c.segs_out, t.segs_out);
  s.segs_in = Delta32(c.segs_in, t.segs_in);
  s.retrans = Delta32(c.retrans, t.retrans);
  if (closed && c.rtt_us > 0) {
    s.rtt_sum_us = c.rtt_us;
    s.rtt_samples = 1;
    s.rtt_max_us = c.rtt_us;
  }
  t.touched_ns = ev.ts_ns;
  // A reading that found nothing new is not activity (an idle connection
  // writes nothing between checkpoints); a close always is.
  if (!opened && !closed && s == FlowStats{}) return;
  s.first_seen_ns = ev.ts_ns;
  s.last_seen_ns = ev.ts_ns;
  const int64_t bucket = FlowBucketOf(ev.ts_ns);
  // Even with nothing carried: this bucket's count (0) must win over later
  // buckets' when the flow is summed over a window that starts here.
  s.carried_from_ns = bucket;
  w.flows.push_back(FlowDelta{bucket, FlowOf(t), s});
}

void Aggregator::Carry(Tracked& t, int64_t bucket_ns, int64_t seen_ns, Work& w) {
  FlowStats s;
  s.carried = 1;
  s.carried_from_ns = bucket_ns;
  s.first_seen_ns = s.last_seen_ns = seen_ns;
  w.flows.push_back(FlowDelta{bucket_ns, FlowOf(t), s});
  stats_.carried++;
  t.counted_bucket_ns = std::max(t.counted_bucket_ns, bucket_ns);
}

void Aggregator::CarryInto(Tracked& t, int64_t ts_ns, Work& w) {
  // Only the checkpoint it is in: the ones before, if any were missed, have
  // no mark, and a window counts from the last one that has.
  const int64_t checkpoint = FlowCheckpointOf(ts_ns);
  if (t.counted_bucket_ns >= checkpoint) return;
  Carry(t, checkpoint, checkpoint, w);
}

void Aggregator::CheckpointLocked(int64_t bucket_ns) {
  std::lock_guard pending(pending_mu_);
  Work& w = scratch_;
  for (auto& [key, t] : tracked_) {
    if (t.counted_bucket_ns >= bucket_ns) continue;
    w.clear();
    Carry(t, bucket_ns, bucket_ns, w);
    // A published port or a balancer's front with connections still open
    // through it stays announced.
    if (FlowOf(t).translated()) NoteAliasOf(FlowOf(t), bucket_ns);
    // One connection's deltas at a time: scratch_ keeps its capacity, and
    // 50k open connections must not leave 50k deltas' worth behind.
    MergeLocked(w);
  }
  pending_.checkpoints.push_back(bucket_ns);
  stats_.checkpoints++;
}

void Aggregator::Tick(int64_t now_ns) {
  const int64_t checkpoint = FlowCheckpointOf(now_ns);
  std::lock_guard lock(state_mu_);
  if (nat_ != nullptr) {
    // A balancer's connections have no events of their own: this is where
    // they come in.
    std::lock_guard pending(pending_mu_);
    TakeNat(now_ns, scratch_);
  }
  if (checkpoint <= ticked_checkpoint_ns_) return;
  if (ticked_checkpoint_ns_ == 0) {
    // Nothing says every connection open at this checkpoint is tracked
    // (Checkpoint at start-up does): mark the next one.
    ticked_checkpoint_ns_ = checkpoint;
    return;
  }
  if (checkpoint - ticked_checkpoint_ns_ > kFlowCheckpointNs)
    stats_.checkpoints_missed +=
        static_cast<uint64_t>((checkpoint - ticked_checkpoint_ns_) / kFlowCheckpointNs - 1);
  ticked_checkpoint_ns_ = checkpoint;
  CheckpointLocked(checkpoint);
}

void Aggregator::Checkpoint(int64_t now_ns) {
  const int64_t bucket = FlowBucketOf(now_ns);
  std::lock_guard lock(state_mu_);
  ticked_checkpoint_ns_ = std::max(ticked_checkpoint_ns_, FlowCheckpointOf(now_ns));
  CheckpointLocked(bucket);
}

void Aggregator::RememberClose(const ConnKey& key, const ConnEvent& ev) {
  if (ev.source == EventSource::kKernel && !remember_kernel_closes_) return;
  closed_[key] = Closed{ev.ts_ns, ev.source};
  closed_order_.emplace_back(ev.ts_ns, key);
}

void Aggregator::ExpireClosed(int64_t now_ns) {
  while (!closed_order_.empty() &&
         (now_ns - closed_order_.front().first > options_.duplicate_close_window_ns ||
          closed_order_.size() > options_.max_closed)) {
    auto it = closed_.find(closed_order_.front().second);
    if (it != closed_.end() && it->second.ts_ns == closed_order_.front().first) closed_.erase(it);
    closed_order_.pop_front();
  }
}

void Aggregator::BoundTracked() {
  if (tracked_.size() <= options_.max_tracked) return;
  // Forget the tenth least recently touched (their CLOSE was most likely
  // lost); if one does close later it is counted again, at its close.
  std::vector<int64_t> touched;
  touched.reserve(tracked_.size());
  for (const auto& [k, t] : tracked_) touched.push_back(t.touched_ns);
  auto nth = touched.begin() + static_cast<ptrdiff_t>(touched.size() / 10);
  std::nth_element(touched.begin(), nth, touched.end());
  const int64_t cutoff = *nth;
  for (auto it = tracked_.begin(); it != tracked_.end();) {
    if (it->second.touched_ns > cutoff) {
      ++it;
      continue;
    }
    flows_.Release(it->second.flow);
    it = tracked_.erase(it);
    stats_.tracked_evicted++;
  }
}

void Aggregator::MergeLocked(Work& w) {
  for (FlowDelta& d : w.flows) {
    auto [it, inserted] =
        pending_index_.try_emplace(BucketKey{d.bucket_ns, d.key}, pending_.flows.size());
    if (inserted) {
      pending_.flows.push_back(std::move(d));
      flows_touched_++;
    } else {
      pending_.flows[it->second].stats.Merge(d.stats);
    }
  }
  // Within one batch an endpoint is either added or removed, so the store
  // need not apply the two lists in any particular order.
  auto same = [](const EndpointRecord& a, const EndpointRecord& b) {
    return a.netns == b.netns && a.addr == b.addr && a.port == b.port;
  };
  for (EndpointRecord& r : w.added) {
    std::erase_if(pending_.endpoints_removed, [&](const auto& x) { return same(x, r); });
    std::erase_if(pending_.endpoints_added, [&](const auto& x) { return same(x, r); });
    pending_.endpoints_added.push_back(std::move(r));
  }
  for (EndpointRecord& r : w.removed) {
    std::erase_if(pending_.endpoints_added, [&](const auto& x) { return same(x, r); });
    std::erase_if(pending_.endpoints_removed, [&](const auto& x) { return same(x, r); });
    pending_.endpoints_removed.push_back(std::move(r));
  }
}

Batch Aggregator::TakeBatch() {
  Batch b;
  std::lock_guard lock(pending_mu_);
  std::swap(b, pending_);
  pending_index_.clear();
  pending_full_told_ = false;
  // The next batch is likely as large: growing it from nothing costs a
  // reallocation and fresh pages per doubling, on the probe's thread. A
  // batch runs past the flush threshold while the flusher wakes: room for
  // half as much again.
  const size_t want = std::max(b.records.size(), pending_full_at_ + pending_full_at_ / 2);
  if (spare_records_.capacity() >= want) pending_.records = std::move(spare_records_);
  spare_records_ = {};
  pending_.records.reserve(want);
  pending_.flows.reserve(b.flows.size());
  return b;
}

void Aggregator::Recycle(Batch&& written) {
  std::vector<ConnRecord> records = std::move(written.records);
  const size_t keep_up_to = std::max<size_t>(2 * pending_full_at_, 65536);
  if (records.capacity() > keep_up_to) return;  // freed here, off the probe's thread
  records.clear();
  std::lock_guard lock(pending_mu_);
  if (records.capacity() > spare_records_.capacity()) spare_records_ = std::move(records);
}

AggregatorStats Aggregator::Stats() const {
  std::lock_guard lock(state_mu_);
  AggregatorStats s = stats_;
  s.tracked = tracked_.size();
  s.listeners = listeners_.size();
  s.aliases = aliases_.size();
  std::lock_guard pending(pending_mu_);
  s.records = records_;
  s.flows_touched = flows_touched_;
  s.pending_records = pending_.records.size();
  s.pending_flows = pending_.flows.size();
  return s;
}

}  // namespace flowmesh
