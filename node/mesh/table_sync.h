// How endpoint tables travel. Fast path: the owner gossips each change as a
// small delta piggybacked like membership news; a node that can apply it does
// and passes it on, one that has a gap asks the sender for exactly what it
// misses (a digest in a pull packet, deltas back, stalest first). Slow path:
// push-pull carries everyone's digests and returns the missing deltas, which
// repairs whatever gossip lost.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "node/mesh/config.h"
#include "node/mesh/endpoint_table.h"
#include "node/mesh/interner.h"
#include "node/mesh/messages.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

class TableSyncIo {
 public:
  virtual ~TableSyncIo() = default;
  virtual void SendTables(const Address& to, PrimaryMsg primary) = 0;
  virtual void BroadcastTable(uint32_t owner, GossipMsg notice) = 0;
};

struct TableSyncStats {
  uint64_t notices_applied = 0;
  uint64_t pulls_sent = 0;
  uint64_t pulls_answered = 0;
  uint64_t deltas_applied = 0;  // from pulls and push-pull
};

class TableSync {
 public:
  // member_generation: the generation membership knows for a name (0: none);
  // rows of an older generation are not taken from anyone.
  TableSync(Runtime& runtime, Interner& interner, const MeshConfig& config, TableSyncIo& io,
            uint32_t self, std::function<uint64_t(uint32_t)> member_generation);

  // This node's table changed: version it and announce it.
  void SetLocal(uint64_t generation, const std::vector<IpAddr>& addresses,
                const std::vector<EndpointSummary>& endpoints,
                const std::vector<AliasSummary>& aliases = {});

  void HandleNotice(const Address& from, const TableDeltaMsg& notice);
  void HandleRequest(const Address& from, const TableRequestMsg& request);
  void HandleReply(const Address& from, const TableReplyMsg& reply);

  // Push-pull: our digests into a member list, the deltas a peer misses
  // according to its list (only owners `shareable` says are current), and
  // applying deltas received in bulk.
  void FillDigests(std::vector<MemberEntryMsg>& members) const;
  std::vector<TableDeltaMsg> DeltasFor(const std::vector<MemberEntryMsg>& peer,
                                       const std::function<bool(uint32_t)>& shareable,
                                       size_t budget_bytes) const;
  void ApplyBulk(const std::vector<TableDeltaMsg>& deltas);

  // A member changed generation or was forgotten (0).
  void MemberGeneration(uint32_t name, uint64_t generation);
  void CollectGarbage();

  const EndpointTables& tables() const { return tables_; }
  const TableSyncStats& stats() const { return stats_; }

 private:
  // A version we heard of and do not hold yet.
  struct Want {
    TableDigest digest;
    int64_t asked_ns = 0;
  };
  void Announce(const TableDeltaMsg& delta);
  void Pull(const Address& from, uint32_t owner, bool force);
  EndpointTables::ApplyResult Apply(const TableDeltaMsg& delta);

  Runtime& runtime_;
  Interner& interner_;
  const MeshConfig& config_;
  TableSyncIo& io_;
  uint32_t self_;
  std::function<uint64_t(uint32_t)> member_generation_;
  EndpointTables tables_;
  std::unordered_map<uint32_t, Want> wants_;
  TableSyncStats stats_;
};

}  // namespace flowmesh::mesh
