// Endpoint tables, Scuttlebutt style. Each node is the only writer of its own
// table (its addresses, listening endpoints and NAT aliases); every change gets the next
// version under the owner's generation, deletions become tombstones. A peer
// describes what it holds of an owner by a digest (generation, version) and
// gets back the rows it misses, oldest version first so that any prefix is a
// consistent state. Tombstones are collected after a while; a peer behind
// that point (or on an older generation) gets the whole table instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/common/net.h"
#include "node/mesh/interner.h"
#include "node/mesh/messages.h"

namespace flowmesh::mesh {

struct EndpointSummary {
  IpAddr addr;
  uint16_t port = 0;
  uint32_t pid = 0;
  uint32_t pgid = 0;
  std::string comm;
  std::string exe;
  Workload workload;  // the owner's unit or container; none when not known
};

// A front this node's NAT translates (flow.h NatAlias as gossiped): a
// published port reaching its own listener (owned by pid/comm/exe) or a
// balancer front forwarding to a backend elsewhere, one row per target.
struct AliasSummary {
  Endpoint front;
  Endpoint target;
  bool balancer = false;
  uint32_t pid = 0;
  uint32_t pgid = 0;
  std::string comm;
  std::string exe;
  bool operator==(const AliasSummary&) const = default;
};

// One row of a table, compact (interned texts): an address, an endpoint
// (addr:port) or an alias (front addr:port -> target).
struct TableRow {
  IpAddr addr;
  uint16_t port = 0;
  bool is_address = false;
  bool is_alias = false;
  bool deleted = false;
  Endpoint target;       // an alias's
  bool balancer = false;  // an alias's
  uint32_t pid = 0;
  uint32_t pgid = 0;
  uint32_t comm = 0;
  uint32_t exe = 0;
  // Not interned: container ids churn, and the interner never shrinks.
  // Null = none.
  std::shared_ptr<const Workload> workload;
  uint64_t version = 0;
  int64_t deleted_ns = 0;  // when this node learned of the deletion

  bool SameKey(const TableRow& o) const {
    return is_address == o.is_address && is_alias == o.is_alias && addr == o.addr &&
           port == o.port && target == o.target;
  }
  bool SameValue(const TableRow& o) const {
    return pid == o.pid && pgid == o.pgid && comm == o.comm && exe == o.exe &&
           balancer == o.balancer &&
           (workload && o.workload ? *workload == *o.workload : workload == o.workload);
  }
};

struct OwnerTable {
  uint64_t generation = 0;
  uint64_t version = 0;        // everything up to here is held
  uint64_t gc_floor = 0;       // tombstones up to here were collected
  std::vector<TableRow> rows;  // live rows and tombstones
};

struct TableDigest {
  uint64_t generation = 0;
  uint64_t version = 0;
  auto operator<=>(const TableDigest&) const = default;
};

class EndpointTables {
 public:
  enum class ApplyResult { kApplied, kStale, kGap };

  EndpointTables(Interner& interner, uint32_t self) : interner_(interner), self_(self) {}

  // Replaces this node's own table; returns the change as a delta (from the
  // previous version), or nothing if nothing changed.
  std::optional<TableDeltaMsg> SetLocal(uint64_t generation, const std::vector<IpAddr>& addresses,
                                        const std::vector<EndpointSummary>& endpoints,
                                        int64_t now_ns,
                                        const std::vector<AliasSummary>& aliases = {});

  TableDigest DigestOf(uint32_t owner) const;
  // What a peer holding `have` misses of `owner`, within about budget_bytes;
  // nothing if it misses nothing (or not even one row fits).
  std::optional<TableDeltaMsg> DeltaFor(uint32_t owner, TableDigest have,
                                        size_t budget_bytes) const;
  // Applies a delta from a peer (never about ourselves).
  ApplyResult Apply(const TableDeltaMsg& delta, int64_t now_ns);

  // The owner restarted (a higher generation) or was forgotten: drop what is
  // older than `generation` (0: everything).
  void DropBelow(uint32_t owner, uint64_t generation);
  void CollectTombstones(int64_t now_ns, int64_t ttl_ns);

  const OwnerTable* Find(uint32_t owner) const;
  const std::unordered_map<uint32_t, OwnerTable>& all() const { return tables_; }
  std::vector<IpAddr> Addresses(uint32_t owner) const;
  std::vector<EndpointSummary> Endpoints(uint32_t owner) const;
  std::vector<AliasSummary> Aliases(uint32_t owner) const;
  size_t LiveEndpoints(uint32_t owner) const;

 private:
  TableRow ToRow(const TableEntryMsg& e, int64_t now_ns);
  TableEntryMsg ToEntry(const TableRow& r) const;
  void Upsert(OwnerTable& t, const TableRow& row);

  Interner& interner_;
  uint32_t self_;
  std::unordered_map<uint32_t, OwnerTable> tables_;
};

}  // namespace flowmesh::mesh
