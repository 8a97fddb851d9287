// Scuttlebutt endpoint tables: versioning of local changes, digest/delta
// reconciliation between replicas (tombstones, byte budgets, gaps,
// generation replacement, collected tombstones), stalest-first push-pull.
#include <gtest/gtest.h>

#include "node/mesh/endpoint_table.h"
#include "node/mesh/sim/sim_network.h"
#include "node/mesh/table_sync.h"

namespace flowmesh::mesh {
namespace {

IpAddr Ip(const char* s) { return *IpAddr::Parse(s); }
EndpointSummary Ep(uint16_t port, const char* comm = "srv") {
  return {Ip("10.0.0.1"), port, 100u + port, 100, comm, std::string("/usr/bin/") + comm};
}

class MeshEndpointTable : public ::testing::Test {
 protected:
  Interner interner_;
  uint32_t owner_ = interner_.Intern("owner");
  uint32_t peer_ = interner_.Intern("peer");
  EndpointTables mine_{interner_, owner_};   // the owner's own copy
  EndpointTables theirs_{interner_, peer_};  // a replica

  // Pulls everything the replica misses, in rounds of at most `budget` bytes.
  int Sync(size_t budget = 1 << 20) {
    int rounds = 0;
    while (auto d = mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), budget)) {
      EXPECT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
      if (++rounds > 100) break;
    }
    return rounds;
  }
  std::vector<uint16_t> Ports(const EndpointTables& t) {
    std::vector<uint16_t> out;
    for (const auto& e : t.Endpoints(owner_)) out.push_back(e.port);
    return out;
  }
};

TEST_F(MeshEndpointTable, EveryChangeGetsTheNextVersion) {
  auto d = mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(80), Ep(443)}, 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->from_version, 0u);
  EXPECT_EQ(d->to_version, 3u);
  EXPECT_EQ(d->entries.size(), 3u);
  EXPECT_FALSE(mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(443), Ep(80)}, 0)) << "same set, no change";
  // One endpoint's process changed, one went away: two new versions.
  d = mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(80, "nginx")}, 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->from_version, 3u);
  EXPECT_EQ(d->to_version, 5u);
  ASSERT_EQ(d->entries.size(), 2u);
  int tombstones = 0;
  for (const auto& e : d->entries) tombstones += e.deleted;
  EXPECT_EQ(tombstones, 1);
  EXPECT_EQ(mine_.DigestOf(owner_), (TableDigest{1, 5}));
  EXPECT_EQ(mine_.LiveEndpoints(owner_), 1u);
}

TEST_F(MeshEndpointTable, ReplicaCatchesUpFromItsDigestIncludingDeletions) {
  mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(80), Ep(443), Ep(8080)}, 0);
  EXPECT_EQ(Sync(), 1);
  EXPECT_EQ(Ports(theirs_), (std::vector<uint16_t>{80, 443, 8080}));
  EXPECT_EQ(theirs_.Addresses(owner_).size(), 1u);
  mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(80), Ep(9090)}, 0);
  auto d = mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), 1 << 20);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->reset);
  EXPECT_EQ(d->entries.size(), 3u) << "only what changed: two tombstones and 9090";
  ASSERT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(Ports(theirs_), (std::vector<uint16_t>{80, 9090}));
  EXPECT_EQ(theirs_.DigestOf(owner_), mine_.DigestOf(owner_));
  EXPECT_FALSE(mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), 1 << 20)) << "in sync";
  EXPECT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kStale) << "applying twice";
}

TEST_F(MeshEndpointTable, BudgetSplitsADeltaIntoConsistentPrefixes) {
  std::vector<EndpointSummary> many;
  for (uint16_t p = 1; p <= 40; p++) many.push_back(Ep(p));
  mine_.SetLocal(1, {}, many, 0);
  int rounds = Sync(600);
  EXPECT_GT(rounds, 4);
  EXPECT_EQ(theirs_.LiveEndpoints(owner_), 40u);
  EXPECT_EQ(theirs_.DigestOf(owner_), (TableDigest{1, 40}));
  // Nothing fits: no delta at all rather than an empty one.
  EXPECT_FALSE(mine_.DeltaFor(owner_, TableDigest{1, 0}, 40));
}

TEST_F(MeshEndpointTable, GapsAreRefusedAndOldNewsIsStale) {
  mine_.SetLocal(1, {}, {Ep(80)}, 0);
  Sync();
  auto second = mine_.SetLocal(1, {}, {Ep(80), Ep(81)}, 0);
  auto third = mine_.SetLocal(1, {}, {Ep(80), Ep(81), Ep(82)}, 0);
  ASSERT_TRUE(second && third);
  EXPECT_EQ(theirs_.Apply(*third, 0), EndpointTables::ApplyResult::kGap);
  EXPECT_EQ(theirs_.Apply(*second, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(theirs_.Apply(*third, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(theirs_.Apply(*second, 0), EndpointTables::ApplyResult::kStale);
  // A digest-only notice of a version we do not have is a gap to pull.
  TableDeltaMsg notice{"owner", 1, 9, 9, false, {}};
  EXPECT_EQ(theirs_.Apply(notice, 0), EndpointTables::ApplyResult::kGap);
  // Nobody else writes our own table.
  EXPECT_EQ(mine_.Apply(*third, 0), EndpointTables::ApplyResult::kStale);
}

TEST_F(MeshEndpointTable, HigherGenerationReplacesTheWholeTable) {
  mine_.SetLocal(1, {Ip("10.0.0.1")}, {Ep(80), Ep(443)}, 0);
  Sync();
  // The owner restarts: a fresh table under generation 2.
  EndpointTables restarted(interner_, owner_);
  auto d = restarted.SetLocal(2, {Ip("10.0.0.2")}, {Ep(22)}, 0);
  ASSERT_TRUE(d);
  EXPECT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(Ports(theirs_), (std::vector<uint16_t>{22}));
  EXPECT_EQ(theirs_.Addresses(owner_), (std::vector<IpAddr>{Ip("10.0.0.2")}));
  EXPECT_EQ(theirs_.DigestOf(owner_), (TableDigest{2, 2}));
  // The old generation's news is stale from now on.
  auto old = mine_.SetLocal(1, {}, {Ep(80)}, 0);
  EXPECT_EQ(theirs_.Apply(*old, 0), EndpointTables::ApplyResult::kStale);
  // And a replica still on generation 1 gets a reset from the new owner.
  EndpointTables lagging(interner_, peer_);
  auto full = restarted.DeltaFor(owner_, TableDigest{1, 7}, 1 << 20);
  ASSERT_TRUE(full);
  EXPECT_TRUE(full->reset);
  EXPECT_EQ(lagging.Apply(*full, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(lagging.LiveEndpoints(owner_), 1u);
  theirs_.DropBelow(owner_, 3);
  EXPECT_EQ(theirs_.Find(owner_), nullptr);
}

TEST_F(MeshEndpointTable, CollectedTombstonesForceAResetForPeersBehindThem) {
  mine_.SetLocal(1, {}, {Ep(80), Ep(81)}, 0);
  Sync();                                                 // replica at version 2
  mine_.SetLocal(1, {}, {Ep(81)}, 10 * kSecond);          // version 3: tombstone for 80
  mine_.SetLocal(1, {}, {Ep(81), Ep(90)}, 10 * kSecond);  // version 4
  mine_.CollectTombstones(100 * kSecond, 60 * kSecond);
  // The tombstone is gone: a replica at version 2 cannot be told about it
  // row by row, so it gets the live table instead.
  auto d = mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), 1 << 20);
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->reset);
  ASSERT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(Ports(theirs_), (std::vector<uint16_t>{81, 90}));
  // A replica already past the collected tombstone still gets a plain delta.
  mine_.SetLocal(1, {}, {Ep(81), Ep(90), Ep(91)}, 0);
  d = mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), 1 << 20);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->reset);
  // A reset below the collection floor comes whole or not at all: cut short,
  // the peer would still be behind the floor and get a reset again forever.
  EndpointTables fresh(interner_, peer_);
  std::vector<EndpointSummary> many;
  for (uint16_t p = 1; p <= 30; p++) many.push_back(Ep(p));
  mine_.SetLocal(1, {}, many, 0);
  mine_.SetLocal(1, {}, std::vector<EndpointSummary>(many.begin(), many.begin() + 20), 0);
  mine_.CollectTombstones(1000 * kSecond, 60 * kSecond);
  TableDigest behind{1, 3};
  EXPECT_FALSE(mine_.DeltaFor(owner_, behind, 700));
  auto whole = mine_.DeltaFor(owner_, behind, 1 << 20);
  ASSERT_TRUE(whole);
  EXPECT_TRUE(whole->reset);
  ASSERT_EQ(fresh.Apply(*whole, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(fresh.LiveEndpoints(owner_), 20u);
  EXPECT_EQ(fresh.DigestOf(owner_), mine_.DigestOf(owner_));
}

// TableSync's push-pull side: deltas for a peer's digests, stalest first.
class NullIo : public TableSyncIo {
 public:
  void SendTables(const Address&, PrimaryMsg) override {}
  void BroadcastTable(uint32_t, GossipMsg) override { broadcasts++; }
  int broadcasts = 0;
};

TEST(MeshTableSync, DeltasForAPeerGoStalestFirstWithinTheBudget) {
  SimNetwork net(1);
  net.AddHost("h:1");
  Interner interner;
  MeshConfig config;
  NullIo io;
  uint32_t self = interner.Intern("self");
  TableSync sync(net.runtime("h:1"), interner, config, io, self, [](uint32_t) { return 1; });
  // Three owners with 2, 10 and 5 rows, learned from their own deltas.
  for (auto [name, rows] : {std::pair{"a", 2}, {"b", 10}, {"c", 5}}) {
    EndpointTables owner(interner, interner.Intern(name));
    std::vector<EndpointSummary> eps;
    for (int p = 0; p < rows; p++) eps.push_back(Ep(static_cast<uint16_t>(p + 1)));
    sync.ApplyBulk({*owner.SetLocal(1, {}, eps, 0)});
  }
  EXPECT_EQ(sync.stats().deltas_applied, 3u);
  std::vector<MemberEntryMsg> peer(3);
  peer[0].name = "a";
  peer[1].name = "b";
  peer[2].name = "c";
  peer[2].table_generation = 1;
  peer[2].table_version = 5;  // already has c
  auto all = [](uint32_t) { return true; };
  auto deltas = sync.DeltasFor(peer, all, 1 << 20);
  ASSERT_EQ(deltas.size(), 2u);
  EXPECT_EQ(deltas[0].owner, "b");
  EXPECT_EQ(deltas[1].owner, "a");
  // A small budget serves the stalest owner first.
  deltas = sync.DeltasFor(peer, all, 400);
  ASSERT_GE(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].owner, "b");
  // Owners that are not current (dead members) are not passed on.
  deltas = sync.DeltasFor(
      peer, [&](uint32_t o) { return o != interner.Intern("b"); }, 1 << 20);
  ASSERT_EQ(deltas.size(), 1u);
  EXPECT_EQ(deltas[0].owner, "a");
  // Our digests go into the member list we send.
  sync.FillDigests(peer);
  EXPECT_EQ(peer[1].table_version, 10u);
  EXPECT_EQ(peer[1].table_generation, 1u);
}

}  // namespace
}  // namespace flowmesh::mesh
