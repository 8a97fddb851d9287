// Reconciler: two dumps that agree before a connection is declared closed.
#include "node/flow/reconciler.h"

#include <algorithm>
#include <tuple>

#include "node/probe/snapshot.h"

namespace flowmesh {
namespace {

bool KeyLess(const ConnKey& a, const ConnKey& b) {
  return std::tie(a.netns, a.laddr, a.raddr, a.lport, a.rport) <
         std::tie(b.netns, b.laddr, b.raddr, b.lport, b.rport);
}

}  // namespace

void ConnKeySet::Seal() {
  std::sort(keys_.begin(), keys_.end(), KeyLess);
  keys_.erase(std::unique(keys_.begin(), keys_.end()), keys_.end());
}

bool ConnKeySet::contains(const ConnKey& key) const {
  return std::binary_search(keys_.begin(), keys_.end(), key, KeyLess);
}

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

void Reconciler::DropReported(int64_t now_ns) {
  if (connections_.empty() && listeners_.empty()) return;
  std::erase_if(connections_, [&](const auto& kv) {
    return !table_.StillUnreported(kv.first, kv.second.seen_seq);
  });
  std::erase_if(listeners_, [&](const auto& kv) {
    return !table_.ListenerStillUnreported(kv.first, kv.second.seen_seq);
  });
  candidates_.store(connections_.size() + listeners_.size(), std::memory_order_relaxed);
  if (connections_.empty() && listeners_.empty())
    next_ns_ = std::max(now_ns, last_dump_ns_ + options_.interval_ns);
}

void Reconciler::Failed(int64_t now_ns) {
  dump_failures_.fetch_add(1, std::memory_order_relaxed);
  next_ns_ = now_ns + options_.interval_ns;
}

std::vector<ConnEvent> Reconciler::Apply(KernelView view, int64_t now_ns) {
  dumps_.fetch_add(1, std::memory_order_relaxed);
  last_dump_ns_ = now_ns;
  view.connections.Seal();
  view.listeners.Seal();
  std::vector<ConnEvent> out;
  auto missing = [&](const ConnKey& key, const ConnKeySet& present) {
    return view.netns.count(key.netns) && !present.contains(key);
  };
  // Found or not, the table's seen_seq tells (see found_in_table): the
  // checks below on it are then the whole test.
  auto connection_missing = [&](const ConnKey& key) {
    return view.found_in_table ? view.netns.count(key.netns) > 0 : missing(key, view.connections);
  };

  // Confirm what the previous dump missed. The table refuses anything that
  // closed or was reported meanwhile (seen_seq moved on).
  for (const auto& [key, c] : connections_)
    if (connection_missing(key))
      if (auto ev = table_.CloseMissed(key, c.seen_seq, c.missing_since_ns)) out.push_back(*ev);
  for (const auto& [key, c] : listeners_)
    if (missing(key, view.listeners))
      if (auto ev = table_.UnlistenMissed(key, c.seen_seq, c.missing_since_ns)) out.push_back(*ev);
  connections_.clear();
  listeners_.clear();

  // New candidates: in the table before the dump began, missing from it.
  table_.ForEachConnection([&](const ConnKey& key, uint64_t seen_seq) {
    if (seen_seq <= view.table_seq && connection_missing(key))
      connections_[key] = Candidate{seen_seq, view.taken_ns};
  });
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
