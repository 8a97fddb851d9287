// Scuttlebutt endpoint tables: local writes, digests, deltas, merge, GC.
#include "node/mesh/endpoint_table.h"

#include <algorithm>

#include "node/mesh/wire.h"
#include "node/wire/wire.h"

namespace flowmesh::mesh {
namespace {

// A workload no peer would read (a name past the wire's bound) is kept as
// none: it is never sent, and never counted in a delta's budget.
std::shared_ptr<const Workload> Shared(const Workload& w) {
  if (w.empty() || !::flowmesh::wire::WorkloadFitsWire(w, kMaxWorkloadBytes)) return nullptr;
  return std::make_shared<const Workload>(w);
}

// Addresses, then endpoints, then aliases.
int Rank(const TableRow& r) { return r.is_address ? 0 : r.is_alias ? 2 : 1; }

bool KeyLess(const TableRow& a, const TableRow& b) {
  if (Rank(a) != Rank(b)) return Rank(a) < Rank(b);
  if (a.addr != b.addr) return a.addr < b.addr;
  if (a.port != b.port) return a.port < b.port;
  return a.target < b.target;
}

}  // namespace

TableRow EndpointTables::ToRow(const TableEntryMsg& e, int64_t now_ns) {
  TableRow r;
  r.addr = e.addr;
  r.port = e.port;
  r.is_address = e.is_address;
  r.is_alias = e.is_alias;
  r.target = e.target;
  r.deleted = e.deleted;
  r.version = e.version;
  if (e.deleted) {
    r.deleted_ns = now_ns;
    return r;  // a tombstone keeps only its key
  }
  r.balancer = e.balancer;
  r.pid = e.pid;
  r.pgid = e.pgid;
  r.comm = interner_.Intern(e.comm);
  r.exe = interner_.Intern(e.exe);
  r.workload = Shared(e.workload);
  return r;
}

TableEntryMsg EndpointTables::ToEntry(const TableRow& r) const {
  TableEntryMsg e;
  e.version = r.version;
  e.deleted = r.deleted;
  e.is_address = r.is_address;
  e.is_alias = r.is_alias;
  e.addr = r.addr;
  e.port = r.port;
  e.target = r.target;
  if (!r.deleted) {
    e.balancer = r.balancer;
    e.pid = r.pid;
    e.pgid = r.pgid;
    e.comm = interner_.Get(r.comm);
    e.exe = interner_.Get(r.exe);
    if (r.workload) e.workload = *r.workload;
  }
  return e;
}

void EndpointTables::Upsert(OwnerTable& t, const TableRow& row) {
  auto it = std::lower_bound(t.rows.begin(), t.rows.end(), row, KeyLess);
  if (it != t.rows.end() && it->SameKey(row))
    *it = row;
  else
    t.rows.insert(it, row);
}

std::optional<TableDeltaMsg> EndpointTables::SetLocal(uint64_t generation,
                                                      const std::vector<IpAddr>& addresses,
                                                      const std::vector<EndpointSummary>& endpoints,
                                                      int64_t now_ns,
                                                      const std::vector<AliasSummary>& aliases) {
  OwnerTable& t = tables_[self_];
  if (t.generation != generation) t = OwnerTable{generation, 0, 0, {}};
  std::vector<TableRow> want;
  for (const IpAddr& a : addresses) {
    TableRow r;
    r.addr = a;
    r.is_address = true;
    r.comm = r.exe = interner_.Intern("");
    want.push_back(r);
  }
  // An endpoint, or an alias's front, with its owner.
  auto owned = [&](const IpAddr& addr, uint16_t port, uint32_t pid, uint32_t pgid,
                   const std::string& comm, const std::string& exe) {
    TableRow r;
    r.addr = addr;
    r.port = port;
    r.pid = pid;
    r.pgid = pgid;
    r.comm = interner_.Intern(comm);
    r.exe = interner_.Intern(exe);
    return r;
  };
  for (const EndpointSummary& e : endpoints) {
    want.push_back(owned(e.addr, e.port, e.pid, e.pgid, e.comm, e.exe));
    want.back().workload = Shared(e.workload);
  }
  for (const AliasSummary& a : aliases) {
    TableRow r = owned(a.front.addr, a.front.port, a.pid, a.pgid, a.comm, a.exe);
    r.is_alias = true;
    r.target = a.target;
    r.balancer = a.balancer;
    want.push_back(r);
  }
  std::sort(want.begin(), want.end(), KeyLess);
  want.erase(std::unique(want.begin(), want.end(),
                         [](const TableRow& a, const TableRow& b) { return a.SameKey(b); }),
             want.end());

  TableDeltaMsg delta;
  delta.owner = interner_.Get(self_);
  delta.generation = generation;
  delta.from_version = t.version;
  std::vector<TableRow> changed;
  for (const TableRow& w : want) {
    auto it = std::lower_bound(t.rows.begin(), t.rows.end(), w, KeyLess);
    bool same = it != t.rows.end() && it->SameKey(w) && !it->deleted && it->SameValue(w);
    if (!same) changed.push_back(w);
  }
  for (const TableRow& r : t.rows) {
    if (r.deleted) continue;
    if (!std::binary_search(want.begin(), want.end(), r, KeyLess)) {
      TableRow gone = r;
      gone.deleted = true;
      gone.deleted_ns = now_ns;
      gone.pid = gone.pgid = 0;
      gone.balancer = false;
      gone.workload.reset();
      changed.push_back(gone);
    }
  }
  if (changed.empty()) return std::nullopt;
  for (TableRow& r : changed) {
    r.version = ++t.version;
    Upsert(t, r);
    delta.entries.push_back(ToEntry(r));
  }
  delta.to_version = t.version;
  return delta;
}

TableDigest EndpointTables::DigestOf(uint32_t owner) const {
  const OwnerTable* t = Find(owner);
  return t == nullptr ? TableDigest{} : TableDigest{t->generation, t->version};
}

std::optional<TableDeltaMsg> EndpointTables::DeltaFor(uint32_t owner, TableDigest have,
                                                      size_t budget_bytes) const {
  const OwnerTable* t = Find(owner);
  if (t == nullptr || t->generation == 0 || have.generation > t->generation) return std::nullopt;
  bool reset = have.generation < t->generation || have.version < t->gc_floor;
  if (!reset && have.version >= t->version) return std::nullopt;
  std::vector<const TableRow*> rows;
  for (const TableRow& r : t->rows) {
    // After a reset the peer holds nothing of this generation, so
    // tombstones would tell it nothing.
    if (reset ? !r.deleted : r.version > have.version) rows.push_back(&r);
  }
  std::sort(rows.begin(), rows.end(),
            [](const TableRow* a, const TableRow* b) { return a->version < b->version; });
  TableDeltaMsg d;
  d.owner = interner_.Get(owner);
  d.generation = t->generation;
  d.reset = reset;
  d.from_version = reset ? 0 : have.version;
  d.to_version = t->version;
  size_t used = EstimateDeltaBytes(d);
  for (size_t i = 0; i < rows.size(); i++) {
    TableEntryMsg e = ToEntry(*rows[i]);
    size_t cost = EstimateEntryBytes(e);
    if (used + cost > budget_bytes) {
      if (i == 0) return std::nullopt;
      // Everything below the first row left out is in: that is the state
      // the peer will hold. A reset cut below the collection floor would
      // leave the peer behind it and start over next time: it must come
      // whole (push-pull's budget is made for that).
      d.to_version = rows[i]->version - 1;
      if (reset && d.to_version < t->gc_floor) return std::nullopt;
      break;
    }
    used += cost;
    d.entries.push_back(std::move(e));
  }
  if (used > budget_bytes) return std::nullopt;
  return d;
}

EndpointTables::ApplyResult EndpointTables::Apply(const TableDeltaMsg& d, int64_t now_ns) {
  std::optional<uint32_t> owner_id = interner_.Find(d.owner);
  uint32_t owner = owner_id ? *owner_id : interner_.Intern(d.owner);
  if (owner == self_) return ApplyResult::kStale;
  auto it = tables_.find(owner);
  TableDigest have =
      it == tables_.end() ? TableDigest{} : TableDigest{it->second.generation, it->second.version};
  bool digest_only = !d.reset && d.entries.empty() && d.from_version == d.to_version;
  if (d.generation < have.generation) return ApplyResult::kStale;
  if (d.generation == have.generation && d.to_version <= have.version) return ApplyResult::kStale;
  if (digest_only) return ApplyResult::kGap;
  bool replace = d.reset || (d.generation > have.generation && d.from_version == 0);
  if (!replace && (d.generation > have.generation || have.version < d.from_version))
    return ApplyResult::kGap;
  OwnerTable& t = tables_[owner];
  if (replace) {
    t = OwnerTable{d.generation, 0, 0, {}};
    for (const TableEntryMsg& e : d.entries)
      if (!e.deleted) Upsert(t, ToRow(e, now_ns));
  } else {
    for (const TableEntryMsg& e : d.entries)
      if (e.version > t.version) Upsert(t, ToRow(e, now_ns));
  }
  t.version = d.to_version;
  return ApplyResult::kApplied;
}

void EndpointTables::DropBelow(uint32_t owner, uint64_t generation) {
  auto it = tables_.find(owner);
  if (it == tables_.end()) return;
  if (generation == 0 || it->second.generation < generation) tables_.erase(it);
}

void EndpointTables::CollectTombstones(int64_t now_ns, int64_t ttl_ns) {
  // Not a structured binding: clang before 16 (the fuzz tree's) cannot
  // capture one in a lambda.
  for (auto& entry : tables_) {
    OwnerTable& t = entry.second;
    std::erase_if(t.rows, [&](const TableRow& r) {
      if (!r.deleted || now_ns - r.deleted_ns <= ttl_ns) return false;
      t.gc_floor = std::max(t.gc_floor, r.version);
      return true;
    });
  }
}

const OwnerTable* EndpointTables::Find(uint32_t owner) const {
  auto it = tables_.find(owner);
  return it == tables_.end() ? nullptr : &it->second;
}

std::vector<IpAddr> EndpointTables::Addresses(uint32_t owner) const {
  std::vector<IpAddr> out;
  if (const OwnerTable* t = Find(owner))
    for (const TableRow& r : t->rows)
      if (r.is_address && !r.deleted) out.push_back(r.addr);
  return out;
}

std::vector<EndpointSummary> EndpointTables::Endpoints(uint32_t owner) const {
  std::vector<EndpointSummary> out;
  if (const OwnerTable* t = Find(owner))
    for (const TableRow& r : t->rows)
      if (!r.is_address && !r.is_alias && !r.deleted)
        out.push_back({r.addr, r.port, r.pid, r.pgid, interner_.Get(r.comm), interner_.Get(r.exe),
                       r.workload ? *r.workload : Workload{}});
  return out;
}

std::vector<AliasSummary> EndpointTables::Aliases(uint32_t owner) const {
  std::vector<AliasSummary> out;
  if (const OwnerTable* t = Find(owner))
    for (const TableRow& r : t->rows)
      if (r.is_alias && !r.deleted)
        out.push_back({{r.addr, r.port}, r.target, r.balancer, r.pid, r.pgid,
                       interner_.Get(r.comm), interner_.Get(r.exe)});
  return out;
}

size_t EndpointTables::LiveEndpoints(uint32_t owner) const {
  size_t n = 0;
  if (const OwnerTable* t = Find(owner))
    for (const TableRow& r : t->rows) n += !r.is_address && !r.is_alias && !r.deleted;
  return n;
}

}  // namespace flowmesh::mesh
