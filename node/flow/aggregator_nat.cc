// The aggregator's side of connection tracking: a local connection's
// translation into its flow key (the VIP it dialled keeps its backend; a
// published port's listener keeps the port the client dialled), a
// balancer's forwarded connections as flows of their own, and the aliases
// this node announces.
#include <algorithm>

#include "node/flow/aggregator.h"

namespace flowmesh {
namespace {

// A forwarded connection is keyed by its original tuple, as a socket of
// this node would be: front as the local side, the client as the remote.
ConnKey ForwardedConnKey(const CtEntry& e) {
  return ConnKey{e.netns, e.original.dst.addr, e.original.src.addr, e.original.dst.port,
                 e.original.src.port};
}

// Its flow: client (raddr) -> front (laddr:lport) -> backend (xaddr:xport).
FlowKey ForwardedFlowKey(const CtEntry& e) {
  FlowKey k;
  k.direction = Direction::kForwarded;
  k.netns = e.netns;
  k.laddr = e.original.dst.addr;
  k.lport = e.original.dst.port;
  k.raddr = e.original.src.addr;
  k.xaddr = e.reply.src.addr;
  k.xport = e.reply.src.port;
  return k;
}

}  // namespace

void Aggregator::Translate(FlowKey& k, const ConnEvent& ev, const ProcessRef& proc) {
  const Endpoint local{ev.key.laddr, ev.key.lport}, remote{ev.key.raddr, ev.key.rport};
  if (k.direction == Direction::kActive) {
    // Our socket's tuple is the original one; the reply comes from where
    // the connection really went.
    std::optional<CtEntry> e = nat_->ClaimOriginal(local, remote);
    if (!e || !e->dnat()) return;
    k.xaddr = e->reply.src.addr;
    k.xport = e->reply.src.port;
    stats_.translated++;
    return;
  }
  if (k.direction != Direction::kPassive) return;
  // Our socket's tuple is the reply's: the original says what was dialled.
  std::optional<CtEntry> e = nat_->ClaimReply(local, remote);
  if (!e || !e->dnat()) return;
  k.xaddr = e->original.dst.addr;
  k.xport = e->original.dst.port;
  stats_.translated++;
  NoteAlias(NatAlias{e->netns, e->original.dst, local, false, proc, ev.ts_ns});
}

void Aggregator::TakeNat(int64_t now_ns, Work& w) {
  nat_->Refresh(now_ns);
  for (const ForwardedEvent& fe : nat_->TakeForwarded(now_ns)) {
    w.clear();
    OnForwarded(fe, w);
    MergeLocked(w);
  }
}

void Aggregator::OnForwarded(const ForwardedEvent& fe, Work& w) {
  const CtEntry& e = fe.entry;
  const ConnKey key = ForwardedConnKey(e);
  if (nat_is_local_ && (nat_is_local_(e.original.src.addr) || nat_is_local_(e.reply.src.addr))) {
    if (!fe.closed) stats_.forwarded_local_ignored++;
    return;
  }
  ConnEvent ev;
  ev.ts_ns = fe.ts_ns;
  ev.key = key;
  // From the balancer's side: what the client sent came in, the reply went out.
  ev.counters.bytes_rx = e.bytes_orig;
  ev.counters.bytes_tx = e.bytes_reply;
  auto it = tracked_.find(key);
  if (!fe.closed) {
    if (it != tracked_.end()) return;  // a dump after lost events saw it again
    Tracked& t = tracked_[key];
    t.flow = flows_.Intern(ForwardedFlowKey(e));
    if (fe.ts_ns <= nat_seeded_ns_) {
      // Open before meshd looked, as a seed socket is.
      SetAccounted(t, ev.counters);
      Carry(t, FlowBucketOf(fe.ts_ns), fe.ts_ns, w);
    } else {
      t.counted_bucket_ns = FlowBucketOf(fe.ts_ns);
      Account(t, ev, /*opened=*/true, /*closed=*/false, w);
    }
    stats_.forwarded_opened++;
    NoteAlias(NatAlias{e.netns, e.original.dst, e.reply.src, true, {}, fe.ts_ns});
    return;
  }
  Tracked t;
  const bool known = it != tracked_.end();
  if (known) {
    t = it->second;
    tracked_.erase(it);  // its flow id is t's now, released below
    CarryInto(t, fe.ts_ns, w);
  } else {
    // Forgotten to stay within max_tracked: counted at its close, as a
    // socket's missed open is.
    t.flow = flows_.Intern(ForwardedFlowKey(e));
  }
  Account(t, ev, /*opened=*/!known, /*closed=*/true, w);
  flows_.Release(t.flow);
  stats_.forwarded_closed++;
}

void Aggregator::NoteAlias(const NatAlias& alias) {
  auto [it, inserted] = aliases_.try_emplace({alias.front, alias.target}, alias);
  if (!inserted) {
    it->second.last_seen_ns = std::max(it->second.last_seen_ns, alias.last_seen_ns);
    // A listener of ours behind it makes it a published port, whatever a
    // connection before its socket was seen made of it.
    if (!alias.balancer) it->second.balancer = false;
    if (alias.owner.known()) it->second.owner = alias.owner;
    return;
  }
  if (aliases_.size() <= options_.max_aliases) return;
  auto oldest = std::min_element(aliases_.begin(), aliases_.end(), [](const auto& a, const auto& b) {
    return a.second.last_seen_ns < b.second.last_seen_ns;
  });
  aliases_.erase(oldest);
}

void Aggregator::NoteAliasOf(const FlowKey& k, int64_t ts_ns) {
  NatAlias a;
  a.netns = k.netns;
  a.last_seen_ns = ts_ns;
  if (k.direction == Direction::kPassive) {
    a.front = Endpoint{k.xaddr, k.xport};
    a.target = Endpoint{k.laddr, k.lport};
  } else if (k.direction == Direction::kForwarded) {
    a.front = Endpoint{k.laddr, k.lport};
    a.target = Endpoint{k.xaddr, k.xport};
    a.balancer = true;
  } else {
    return;
  }
  NoteAlias(a);
}

std::vector<NatAlias> Aggregator::Aliases(int64_t now_ns) const {
  std::lock_guard lock(state_mu_);
  std::vector<NatAlias> out;
  for (const auto& [k, a] : aliases_)
    if (now_ns - a.last_seen_ns <= options_.alias_ttl_ns) out.push_back(a);
  return out;
}

}  // namespace flowmesh
