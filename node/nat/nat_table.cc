// NatTable: translated conntrack entries by original and by reply tuple,
// their claims by local sockets, and what no socket claimed (forwarded).
#include "node/nat/nat_table.h"

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_set>

namespace flowmesh {
namespace {

struct TupleHash {
  size_t operator()(const CtTuple& t) const noexcept {
    IpAddrHash h;
    size_t v = h(t.src.addr) * 31 + h(t.dst.addr);
    return v * 1000003u ^ (size_t{t.src.port} << 16 | t.dst.port);
  }
};

struct Held {
  CtEntry entry;
  int64_t first_seen_ns = 0;
  int64_t destroyed_ns = 0;
  bool destroyed = false;
  bool claimed = false;
  bool opened = false;  // handed out as a forwarded open
};

// (serial, time) in the order things happened: the deadlines to look at.
using Deadlines = std::deque<std::pair<uint64_t, int64_t>>;

}  // namespace

struct NatTable::Impl {
  NatTableOptions options;
  NatTableStats stats;
  // By serial: ascending serials are ascending first-seen, so begin() is the
  // oldest (the one to evict).
  std::map<uint64_t, Held> held;
  std::unordered_map<CtTuple, uint64_t, TupleHash> by_original;
  std::unordered_map<CtTuple, uint64_t, TupleHash> by_reply;
  uint64_t next_serial = 1;
  Deadlines claim_due;    // first seen: unclaimed after claim_grace -> forwarded
  Deadlines destroy_due;  // destroyed: forgotten after destroy_grace
  std::deque<uint64_t> unclaimable;  // forwarded without waiting (options.unclaimable)
  std::vector<ForwardedEvent> out;  // closes of opens already handed out

  Held* Find(const std::unordered_map<CtTuple, uint64_t, TupleHash>& index, const CtTuple& t) {
    auto it = index.find(t);
    if (it == index.end()) return nullptr;
    auto h = held.find(it->second);
    return h == held.end() ? nullptr : &h->second;
  }

  void Destroy(uint64_t serial, Held& h, int64_t now_ns) {
    if (h.destroyed) return;
    h.destroyed = true;
    h.destroyed_ns = now_ns;
    destroy_due.emplace_back(serial, now_ns);
    if (h.opened) out.push_back({true, now_ns, h.entry});
  }

  void Unindex(uint64_t serial, const Held& h) {
    auto o = by_original.find(h.entry.original);
    if (o != by_original.end() && o->second == serial) by_original.erase(o);
    auto r = by_reply.find(h.entry.reply);
    if (r != by_reply.end() && r->second == serial) by_reply.erase(r);
  }

  void Evict(int64_t now_ns) {
    auto it = held.begin();
    // An evicted forwarded connection is closed here: the aggregator would
    // otherwise hold its open flow forever (evicted counts how often).
    Destroy(it->first, it->second, now_ns);
    Unindex(it->first, it->second);
    held.erase(it);
    stats.evicted++;
  }

  void Add(const CtEntry& e, int64_t now_ns) {
    if (auto o = by_original.find(e.original); o != by_original.end()) {
      Held& old = held.at(o->second);
      // The same connection again (a dump overlapping events): refresh it.
      if (!old.destroyed && old.entry.id == e.id) {
        old.entry = e;
        return;
      }
      // A reused tuple: the old connection is over even if its DESTROY was lost.
      Destroy(o->second, old, now_ns);
    }
    while (!held.empty() && held.size() >= options.max_entries) Evict(now_ns);
    const uint64_t serial = next_serial++;
    held[serial] = Held{e, now_ns};
    by_original[e.original] = serial;
    by_reply[e.reply] = serial;
    if (options.unclaimable && options.unclaimable(e)) {
      unclaimable.push_back(serial);
    } else {
      claim_due.emplace_back(serial, now_ns);
    }
  }

  std::optional<CtEntry> Claim(const std::unordered_map<CtTuple, uint64_t, TupleHash>& index,
                               const CtTuple& t) {
    Held* h = Find(index, t);
    if (h == nullptr) return std::nullopt;
    if (!h->claimed) stats.claimed++;
    h->claimed = true;
    return h->entry;
  }
};

NatTable::NatTable(NatTableOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  if (impl_->options.max_entries == 0) impl_->options.max_entries = 1;
}
NatTable::~NatTable() = default;
NatTable::NatTable(NatTable&&) noexcept = default;
NatTable& NatTable::operator=(NatTable&&) noexcept = default;

void NatTable::Apply(const CtEvent& ev, int64_t now_ns) {
  Impl& t = *impl_;
  if (!ev.entry.translated()) {
    if (ev.kind == CtEventKind::kNew) t.stats.untranslated++;
    return;
  }
  if (ev.kind == CtEventKind::kNew) {
    t.Add(ev.entry, now_ns);
    return;
  }
  auto o = t.by_original.find(ev.entry.original);
  if (o == t.by_original.end()) return;
  Held& h = t.held.at(o->second);
  // A DESTROY for another connection on the same tuple (its id differs) is
  // not this one's; 0 is an id the kernel did not send.
  if (ev.entry.id && h.entry.id && h.entry.id != ev.entry.id) return;
  // The DESTROY's status says how far it got (ASSURED: its handshake
  // completed), which a forwarded connection's close is judged by.
  h.entry.status |= ev.entry.status;
  if (ev.entry.bytes_orig || ev.entry.bytes_reply) {
    h.entry.bytes_orig = ev.entry.bytes_orig;
    h.entry.bytes_reply = ev.entry.bytes_reply;
  }
  t.Destroy(o->second, h, now_ns);
}

void NatTable::Replace(const std::vector<CtEntry>& dump, int64_t now_ns, bool add_missing) {
  Impl& t = *impl_;
  std::unordered_set<CtTuple, TupleHash> present;
  for (const CtEntry& e : dump) {
    if (!e.translated()) {
      if (add_missing) t.stats.untranslated++;
      continue;
    }
    present.insert(e.original);
    if (add_missing) {
      t.Add(e, now_ns);
    } else if (Held* h = t.Find(t.by_original, e.original); h != nullptr && h->entry.id == e.id) {
      h->entry.status |= e.status;  // how far it got since (ASSURED)
    }
  }
  for (auto& [serial, h] : t.held) {
    if (h.destroyed) continue;
    auto o = t.by_original.find(h.entry.original);
    // Gone from the dump, or replaced in the index by a newer connection.
    if (present.count(h.entry.original) && o != t.by_original.end() && o->second == serial)
      continue;
    t.Destroy(serial, h, now_ns);
  }
}

std::optional<CtEntry> NatTable::ClaimOriginal(const Endpoint& local, const Endpoint& remote) {
  return impl_->Claim(impl_->by_original, CtTuple{local, remote});
}

std::optional<CtEntry> NatTable::ClaimReply(const Endpoint& local, const Endpoint& remote) {
  return impl_->Claim(impl_->by_reply, CtTuple{local, remote});
}

std::vector<ForwardedEvent> NatTable::TakeForwarded(int64_t now_ns) {
  Impl& t = *impl_;
  auto open = [&](Held& h) {
    h.opened = true;
    t.stats.forwarded++;
    t.out.push_back({false, h.first_seen_ns, h.entry});
    if (h.destroyed) t.out.push_back({true, h.destroyed_ns, h.entry});
  };
  for (uint64_t serial : t.unclaimable) {
    auto it = t.held.find(serial);
    if (it != t.held.end() && !it->second.claimed && !it->second.opened) open(it->second);
  }
  t.unclaimable.clear();
  while (!t.claim_due.empty() &&
         t.claim_due.front().second + t.options.claim_grace_ns <= now_ns) {
    auto it = t.held.find(t.claim_due.front().first);
    t.claim_due.pop_front();
    if (it != t.held.end() && !it->second.claimed && !it->second.opened) open(it->second);
  }
  while (!t.destroy_due.empty() &&
         t.destroy_due.front().second + t.options.destroy_grace_ns <= now_ns) {
    auto it = t.held.find(t.destroy_due.front().first);
    t.destroy_due.pop_front();
    if (it == t.held.end()) continue;
    // Forgotten before its claim grace ran out and never claimed: it was a
    // forwarded connection all the same, and a short one.
    if (!it->second.claimed && !it->second.opened) open(it->second);
    t.Unindex(it->first, it->second);
    t.held.erase(it);
  }
  std::vector<ForwardedEvent> events;
  events.swap(t.out);
  std::stable_sort(events.begin(), events.end(),
                   [](const ForwardedEvent& a, const ForwardedEvent& b) { return a.ts_ns < b.ts_ns; });
  return events;
}

NatTableStats NatTable::Stats() const {
  NatTableStats s = impl_->stats;
  s.entries = impl_->held.size();
  return s;
}

}  // namespace flowmesh
