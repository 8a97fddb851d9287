// Endpoint table dissemination: notices, pulls, push-pull deltas.
#include "node/mesh/table_sync.h"

#include <algorithm>

#include "node/mesh/wire.h"

namespace flowmesh::mesh {
namespace {

// Room left in a pull reply for the packet's own fields.
constexpr size_t kReplyBudgetBytes = kPacketBudgetBytes - 150;

}  // namespace

TableSync::TableSync(Runtime& runtime, Interner& interner, const MeshConfig& config,
                     TableSyncIo& io, uint32_t self,
                     std::function<uint64_t(uint32_t)> member_generation)
    : runtime_(runtime),
      interner_(interner),
      config_(config),
      io_(io),
      self_(self),
      member_generation_(std::move(member_generation)),
      tables_(interner, self) {}

EndpointTables::ApplyResult TableSync::Apply(const TableDeltaMsg& delta) {
  // A peer that has not heard of a restart yet still passes the previous
  // life's table around.
  std::optional<uint32_t> owner = interner_.Find(delta.owner);
  if (owner && delta.generation < member_generation_(*owner))
    return EndpointTables::ApplyResult::kStale;
  return tables_.Apply(delta, runtime_.NowNs());
}

void TableSync::SetLocal(uint64_t generation, const std::vector<IpAddr>& addresses,
                         const std::vector<EndpointSummary>& endpoints,
                         const std::vector<AliasSummary>& aliases) {
  auto delta = tables_.SetLocal(generation, addresses, endpoints, runtime_.NowNs(), aliases);
  if (delta) Announce(*delta);
}

void TableSync::Announce(const TableDeltaMsg& delta) {
  std::optional<uint32_t> owner = interner_.Find(delta.owner);
  if (!owner) return;
  if (EstimateDeltaBytes(delta) <= config_.table_notice_max_bytes) {
    io_.BroadcastTable(*owner, delta);
    return;
  }
  // Too big to ride along: say only that the version exists; who misses it
  // pulls it from whoever told them.
  TableDeltaMsg digest;
  digest.owner = delta.owner;
  digest.generation = delta.generation;
  digest.from_version = digest.to_version = delta.to_version;
  io_.BroadcastTable(*owner, std::move(digest));
}

void TableSync::HandleNotice(const Address& from, const TableDeltaMsg& notice) {
  switch (Apply(notice)) {
    case EndpointTables::ApplyResult::kStale: return;
    case EndpointTables::ApplyResult::kApplied: {
      stats_.notices_applied++;
      std::optional<uint32_t> owner = interner_.Find(notice.owner);
      if (owner) {
        auto it = wants_.find(*owner);
        if (it != wants_.end() && it->second.digest <= tables_.DigestOf(*owner)) wants_.erase(it);
        io_.BroadcastTable(*owner, notice);
      }
      return;
    }
    case EndpointTables::ApplyResult::kGap: {
      uint32_t owner = interner_.Intern(notice.owner);
      Want& w = wants_[owner];
      w.digest = std::max(w.digest, TableDigest{notice.generation, notice.to_version});
      Pull(from, owner, false);
      return;
    }
  }
}

void TableSync::Pull(const Address& from, uint32_t owner, bool force) {
  Want& w = wants_[owner];
  int64_t now = runtime_.NowNs();
  // Everyone who passes the notice on would otherwise trigger a pull of it.
  if (!force && w.asked_ns != 0 && now - w.asked_ns < config_.table_pull_retry_ns) return;
  w.asked_ns = now;
  TableDigest have = tables_.DigestOf(owner);
  stats_.pulls_sent++;
  io_.SendTables(from, TableRequestMsg{{{interner_.Get(owner), have.generation, have.version}}});
}

void TableSync::HandleRequest(const Address& from, const TableRequestMsg& request) {
  struct Ask {
    uint32_t owner;
    TableDigest have;
    uint64_t staleness;
  };
  std::vector<Ask> asks;
  for (const TableDigestMsg& d : request.digests) {
    std::optional<uint32_t> owner = interner_.Find(d.owner);
    const OwnerTable* t = owner ? tables_.Find(*owner) : nullptr;
    if (t == nullptr) continue;
    TableDigest have{d.generation, d.version};
    bool reset = have.generation < t->generation || have.version < t->gc_floor;
    uint64_t behind = reset ? 0 : std::min(have.version, t->version);
    uint64_t staleness = t->version - behind;
    asks.push_back({*owner, have, staleness});
  }
  std::stable_sort(asks.begin(), asks.end(),
                   [](const Ask& a, const Ask& b) { return a.staleness > b.staleness; });
  TableReplyMsg reply;
  size_t budget = kReplyBudgetBytes;
  for (const Ask& a : asks) {
    auto delta = tables_.DeltaFor(a.owner, a.have, budget);
    if (!delta) continue;
    budget -= std::min(budget, EstimateDeltaBytes(*delta));
    reply.deltas.push_back(std::move(*delta));
  }
  if (reply.deltas.empty()) return;
  stats_.pulls_answered++;
  io_.SendTables(from, std::move(reply));
}

void TableSync::HandleReply(const Address& from, const TableReplyMsg& reply) {
  for (const TableDeltaMsg& d : reply.deltas) {
    if (Apply(d) != EndpointTables::ApplyResult::kApplied) continue;
    stats_.deltas_applied++;
    std::optional<uint32_t> owner = interner_.Find(d.owner);
    if (!owner) continue;
    auto it = wants_.find(*owner);
    if (it == wants_.end()) continue;
    if (it->second.digest <= tables_.DigestOf(*owner)) {
      wants_.erase(it);
      // We now hold what the notice announced: pass the news on.
      Announce(d);
    } else {
      Pull(from, *owner, true);  // a partial answer: ask for the rest
    }
  }
}

void TableSync::FillDigests(std::vector<MemberEntryMsg>& members) const {
  for (MemberEntryMsg& m : members) {
    std::optional<uint32_t> owner = interner_.Find(m.name);
    if (!owner) continue;
    TableDigest d = tables_.DigestOf(*owner);
    m.table_generation = d.generation;
    m.table_version = d.version;
  }
}

std::vector<TableDeltaMsg> TableSync::DeltasFor(const std::vector<MemberEntryMsg>& peer,
                                                const std::function<bool(uint32_t)>& shareable,
                                                size_t budget_bytes) const {
  std::unordered_map<uint32_t, TableDigest> theirs;
  theirs.reserve(peer.size());
  for (const MemberEntryMsg& m : peer) {
    std::optional<uint32_t> owner = interner_.Find(m.name);
    if (owner) theirs[*owner] = TableDigest{m.table_generation, m.table_version};
  }
  struct Candidate {
    uint32_t owner;
    TableDigest have;
    uint64_t staleness;
  };
  std::vector<Candidate> stale;
  for (const auto& [owner, t] : tables_.all()) {
    if (t.generation == 0 || t.generation < member_generation_(owner) || !shareable(owner))
      continue;
    auto it = theirs.find(owner);
    TableDigest have = it == theirs.end() ? TableDigest{} : it->second;
    if (have.generation > t.generation) continue;
    bool reset = have.generation < t.generation || have.version < t.gc_floor;
    if (!reset && have.version >= t.version) continue;
    // How many versions behind: all of them when it needs the whole table.
    stale.push_back({owner, have, t.version - (reset ? 0 : have.version)});
  }
  // Stalest first: with a budget, the peers that lag most catch up first.
  std::sort(stale.begin(), stale.end(), [](const Candidate& a, const Candidate& b) {
    return a.staleness != b.staleness ? a.staleness > b.staleness : a.owner < b.owner;
  });
  std::vector<TableDeltaMsg> out;
  for (const Candidate& c : stale) {
    if (budget_bytes < 128) break;
    auto delta = tables_.DeltaFor(c.owner, c.have, budget_bytes);
    if (!delta) continue;
    budget_bytes -= std::min(budget_bytes, EstimateDeltaBytes(*delta));
    out.push_back(std::move(*delta));
  }
  return out;
}

void TableSync::ApplyBulk(const std::vector<TableDeltaMsg>& deltas) {
  for (const TableDeltaMsg& d : deltas) {
    if (Apply(d) != EndpointTables::ApplyResult::kApplied) continue;
    stats_.deltas_applied++;
    std::optional<uint32_t> owner = interner_.Find(d.owner);
    if (!owner) continue;
    auto it = wants_.find(*owner);
    if (it != wants_.end() && it->second.digest <= tables_.DigestOf(*owner)) wants_.erase(it);
  }
}

void TableSync::MemberGeneration(uint32_t name, uint64_t generation) {
  if (name == self_) return;
  tables_.DropBelow(name, generation);
  auto it = wants_.find(name);
  if (it != wants_.end() && (generation == 0 || it->second.digest.generation < generation))
    wants_.erase(it);
}

void TableSync::CollectGarbage() {
  tables_.CollectTombstones(runtime_.NowNs(), config_.tombstone_ttl_ns);
}

}  // namespace flowmesh::mesh
