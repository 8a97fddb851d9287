// Reconciler: two dumps that agree before a connection is declared closed.
#include "node/flow/reconciler.h"

#include <algorithm>

#include "node/probe/snapshot.h"

namespace flowmesh {

KernelView KernelViewOf(const Snapshot& snap, int64_t taken_ns, uint64_t table_seq) {
  KernelView v;
  v.taken_ns = taken_ns;
  v.table_seq = table_seq;
  v.netns.insert(snap.netns_dumped.begin(), snap.netns_dumped.end());
  v.connections.reserve(snap.connections.size());
  for (const ConnEvent& c : snap.connections) v.connections.insert(c.key);
  for (const ConnEvent& l : snap.listeners) v.listeners.insert(ListenKey(l.key));
  return v;
}

Reconciler::Reconciler(ConnTable& table, ReconcilerOptions options)
    : table_(table), options_(options) {}

void Reconciler::Schedule(int64_t now_ns) {
  const bool confirming = !connections_.empty() || !listeners_.empty();
  next_ns_ = now_ns + (confirming ? std::min(options_.confirm_after_ns, options_.interval_ns)
                                  : options_.interval_ns);
}

void Reconciler::Failed(int64_t now_ns) {
  dump_failures_.fetch_add(1, std::memory_order_relaxed);
  next_ns_ = now_ns + options_.interval_ns;
}

std::vector<ConnEvent> Reconciler::Apply(const KernelView& view, int64_t now_ns) {
  dumps_.fetch_add(1, std::memory_order_relaxed);
  std::vector<ConnEvent> out;
  auto missing = [&](const ConnKey& key, const std::unordered_set<ConnKey, ConnKeyHash>& present) {
    return view.netns.count(key.netns) && !present.count(key);
  };

  // Confirm what the previous dump missed. The table refuses anything that
  // closed or was reported meanwhile (seen_seq moved on).
  for (const auto& [key, c] : connections_)
    if (missing(key, view.connections))
      if (auto ev = table_.CloseMissed(key, c.seen_seq, c.missing_since_ns)) out.push_back(*ev);
  for (const auto& [key, c] : listeners_)
    if (missing(key, view.listeners))
      if (auto ev = table_.UnlistenMissed(key, c.seen_seq, c.missing_since_ns)) out.push_back(*ev);
  connections_.clear();
  listeners_.clear();

  // New candidates: in the table before the dump began, missing from it.
  for (const OpenConnection& c : table_.Connections())
    if (c.seen_seq <= view.table_seq && missing(c.key, view.connections))
      connections_[c.key] = Candidate{c.seen_seq, view.taken_ns};
  for (const Listener& l : table_.Listeners())
    if (l.seen_seq <= view.table_seq && missing(l.key, view.listeners))
      listeners_[l.key] = Candidate{l.seen_seq, view.taken_ns};

  candidates_.store(connections_.size() + listeners_.size(), std::memory_order_relaxed);
  Schedule(now_ns);
  return out;
}

ReconcilerStats Reconciler::Stats() const {
  ReconcilerStats s;
  s.dumps = dumps_.load(std::memory_order_relaxed);
  s.dump_failures = dump_failures_.load(std::memory_order_relaxed);
  s.candidates = candidates_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace flowmesh
