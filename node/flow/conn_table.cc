// Open-connection and listener bookkeeping.
#include "node/flow/conn_table.h"

#include <cstring>
#include <functional>

namespace flowmesh {
namespace {

// Reconstructed closes remembered for a late real CLOSE: past this age the
// CLOSE was lost, not late (reconciliation waits seconds before closing).
constexpr int64_t kReconstructedKeptNs = 600'000'000'000;
constexpr size_t kReconstructedKept = 1 << 16;

void FillFrom(const ProcessRef& proc, Direction direction, EventSource source, int64_t opened_ns,
              ConnEvent& ev) {
  if (!ev.proc.known()) ev.proc = proc;
  if (ev.direction == Direction::kUnknown) ev.direction = direction;
  // BPF reports duration only for connections it saw open; a connection the
  // poller saw open has a first-seen time, which is as good as we know.
  if (ev.duration_ns == 0 && source == EventSource::kPoll && ev.ts_ns > opened_ns)
    ev.duration_ns = static_cast<uint64_t>(ev.ts_ns - opened_ns);
}

template <typename T>
void HashIn(size_t& h, const T& v) {
  h ^= std::hash<T>{}(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
}

}  // namespace

size_t ConnTable::ProcessRefHash::operator()(const ProcessRef& p) const noexcept {
  size_t h = 0;
  HashIn(h, p.pid);
  HashIn(h, p.start_ticks);
  HashIn(h, p.pgid);
  HashIn(h, p.cgroup_id);
  HashIn(h, p.comm_view());
  return h;
}

bool ConnTable::ProcessRefEq::operator()(const ProcessRef& a, const ProcessRef& b) const noexcept {
  return a.pid == b.pid && a.start_ticks == b.start_ticks && a.pgid == b.pgid &&
         a.cgroup_id == b.cgroup_id && std::memcmp(a.comm, b.comm, sizeof a.comm) == 0;
}

OpenConnection ConnTable::ToOpenConnection(const ConnKey& key, const Entry& e) const {
  OpenConnection c;
  c.key = key;
  c.direction = e.direction;
  c.source = e.source;
  c.proc = procs_.Get(e.proc);
  c.counters = e.counters;
  c.opened_ns = e.opened_ns;
  c.updated_ns = e.updated_ns;
  c.seen_seq = e.seen_seq;
  return c;
}

auto ConnTable::Erase(OpenMap::iterator it) -> OpenMap::iterator {
  procs_.Release(it->second.proc);
  return open_.erase(it);
}

bool ConnTable::Apply(ConnEvent& ev) {
  std::lock_guard lock(mu_);
  bool changed = ApplyLocked(ev);
  // Counters leave here as payload bytes, computed once the direction is as
  // well known as it will be.
  ev.counters = PayloadCounters(ev.counters, ev.direction, ev.tcp_flags);
  return changed;
}

void ConnTable::Reserve(size_t more) {
  std::lock_guard lock(mu_);
  open_.reserve(open_.size() + more);
}

void ConnTable::ApplyAll(std::span<ConnEvent> events, bool* changed) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < events.size(); ++i) {
    if (i + kPrefetchAhead < events.size()) open_.prefetch(events[i + kPrefetchAhead].key);
    ConnEvent& ev = events[i];
    changed[i] = ApplyLocked(ev);
    ev.counters = PayloadCounters(ev.counters, ev.direction, ev.tcp_flags);
  }
}

bool ConnTable::ApplyLocked(ConnEvent& ev) {
  switch (ev.kind) {
    case EventKind::kOpen: {
      auto [it, inserted] = open_.try_emplace(ev.key);
      Entry& c = it->second;
      if (inserted) {
        c.source = ev.source;
        c.opened_ns = ev.ts_ns;
        stats_.opens++;
        // A new connection on a 4-tuple reconciliation closed: its CLOSE is its own.
        if (!reconstructed_.empty()) reconstructed_.erase(ev.key);
      }
      c.seen_seq = ++seq_;
      // A second report of the same open (snapshot and ring buffer racing)
      // merges: keep what is known, prefer the kernel's attribution.
      if (ev.proc.known() && (!procs_.Get(c.proc).known() || ev.source == EventSource::kKernel))
        procs_.Replace(&c.proc, ev.proc);
      if (ev.direction != Direction::kUnknown) c.direction = ev.direction;
      if (ev.counters.segs_in || ev.counters.segs_out)
        c.counters = PayloadCounters(ev.counters, c.direction, ev.tcp_flags);
      c.updated_ns = ev.ts_ns;
      return inserted;
    }
    case EventKind::kUpdate: {
      auto it = open_.find(ev.key);
      if (it == open_.end()) return false;
      if (ev.direction == Direction::kUnknown) ev.direction = it->second.direction;
      it->second.counters = PayloadCounters(ev.counters, ev.direction, ev.tcp_flags);
      it->second.updated_ns = ev.ts_ns;
      it->second.seen_seq = ++seq_;
      if (ev.proc.known() && !procs_.Get(it->second.proc).known())
        procs_.Replace(&it->second.proc, ev.proc);
      return true;
    }
    case EventKind::kClose: {
      auto it = open_.find(ev.key);
      if (it == open_.end() && !reconstructed_.empty() && reconstructed_.erase(ev.key)) {
        stats_.late_closes_dropped++;
        return false;
      }
      stats_.closes++;
      if (it == open_.end()) {
        stats_.close_without_open++;
        if (!ev.proc.known()) stats_.close_unattributed++;
        return true;
      }
      const Entry& c = it->second;
      FillFrom(procs_.Get(c.proc), c.direction, c.source, c.opened_ns, ev);
      if (!ev.proc.known()) stats_.close_unattributed++;
      Erase(it);
      return true;
    }
    case EventKind::kListen: {
      Listener& l = listeners_[ListenKey(ev.key)];
      l.key = ListenKey(ev.key);
      if (ev.proc.known() || !l.proc.known()) l.proc = ev.proc;
      if (l.since_ns == 0) l.since_ns = ev.ts_ns;
      l.seen_seq = ++seq_;
      return true;
    }
    case EventKind::kUnlisten: {
      auto it = listeners_.find(ListenKey(ev.key));
      if (it == listeners_.end()) return true;
      if (!ev.proc.known()) ev.proc = it->second.proc;
      listeners_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<OpenConnection> ConnTable::Connections() const {
  std::lock_guard lock(mu_);
  std::vector<OpenConnection> out;
  out.reserve(open_.size());
  for (const auto& [k, c] : open_) out.push_back(ToOpenConnection(k, c));
  return out;
}

void ConnTable::ForEachConnection(
    const std::function<void(const ConnKey&, uint64_t seen_seq)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& [k, c] : open_) fn(k, c.seen_seq);
}

std::vector<Listener> ConnTable::Listeners() const {
  std::lock_guard lock(mu_);
  std::vector<Listener> out;
  out.reserve(listeners_.size());
  for (const auto& [k, l] : listeners_) out.push_back(l);
  return out;
}

uint64_t ConnTable::Sequence() const {
  std::lock_guard lock(mu_);
  return seq_;
}

std::optional<ConnEvent> ConnTable::CloseMissed(const ConnKey& key, uint64_t seen_seq,
                                                int64_t ts_ns) {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  if (it == open_.end() || it->second.seen_seq != seen_seq) return std::nullopt;
  const Entry& c = it->second;
  ConnEvent ev;
  ev.kind = EventKind::kClose;
  ev.source = EventSource::kPoll;  // sock_diag found it gone
  ev.reconstructed = true;
  ev.ts_ns = ts_ns;
  ev.key = key;
  ev.direction = c.direction;
  ev.proc = procs_.Get(c.proc);
  ev.counters = c.counters;  // payload bytes already
  // When it was found gone; it closed at most this long after it opened.
  if (ts_ns > c.opened_ns) ev.duration_ns = static_cast<uint64_t>(ts_ns - c.opened_ns);
  Erase(it);
  stats_.closes++;
  stats_.reconstructed_closes++;
  if (!ev.proc.known()) stats_.close_unattributed++;
  if (reconstructed_.size() >= kReconstructedKept)
    std::erase_if(reconstructed_,
                  [&](const auto& r) { return ts_ns - r.second > kReconstructedKeptNs; });
  if (reconstructed_.size() >= kReconstructedKept) reconstructed_.clear();
  reconstructed_[key] = ts_ns;
  return ev;
}

bool ConnTable::StillUnreported(const ConnKey& key, uint64_t seen_seq) const {
  std::lock_guard lock(mu_);
  auto it = open_.find(key);
  return it != open_.end() && it->second.seen_seq == seen_seq;
}

bool ConnTable::ListenerStillUnreported(const ConnKey& key, uint64_t seen_seq) const {
  std::lock_guard lock(mu_);
  auto it = listeners_.find(key);
  return it != listeners_.end() && it->second.seen_seq == seen_seq;
}

std::optional<ConnEvent> ConnTable::UnlistenMissed(const ConnKey& key, uint64_t seen_seq,
                                                   int64_t ts_ns) {
  std::lock_guard lock(mu_);
  auto it = listeners_.find(key);
  if (it == listeners_.end() || it->second.seen_seq != seen_seq) return std::nullopt;
  ConnEvent ev;
  ev.kind = EventKind::kUnlisten;
  ev.source = EventSource::kPoll;
  ev.reconstructed = true;
  ev.ts_ns = ts_ns;
  ev.key = key;
  ev.proc = it->second.proc;
  listeners_.erase(it);
  stats_.reconstructed_unlistens++;
  // A late real UNLISTEN finds nothing and changes nothing (see Apply).
  return ev;
}

ConnTableStats ConnTable::Stats() const {
  std::lock_guard lock(mu_);
  ConnTableStats s = stats_;
  s.open = open_.size();
  s.listeners = listeners_.size();
  return s;
}

}  // namespace flowmesh
