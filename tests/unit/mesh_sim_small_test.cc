// A five-node mesh on the simulated network: join, endpoint tables, kill,
// graceful leave, restart with a new generation.
#include <gtest/gtest.h>

#include "node/common/log.h"
#include "node/mesh/sim/sim_cluster.h"

namespace flowmesh::mesh {
namespace {

class MeshSimSmall : public ::testing::Test {
 protected:
  void SetUp() override {
    log::SetLevel(log::Level::Error);
    c_.AddNodes(5);
    c_.StartAll(1, 50 * kMs);
    ASSERT_TRUE(c_.net().RunUntil([&] { return c_.AllSeeAlive(5); },
                                  c_.net().NowNs() + 30 * kSecond, 100 * kMs));
  }
  void TearDown() override { log::SetLevel(log::Level::Info); }

  SimCluster c_{7};
};

TEST_F(MeshSimSmall, JoinsAndSharesTables) {
  EndpointSummary e{*IpAddr::Parse("10.0.0.1"), 8080, 42, 40, "nginx", "/usr/sbin/nginx"};
  c_.node(1).SetLocalTable({*IpAddr::Parse("10.0.0.1")}, {e});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(1, 2) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  for (size_t i = 0; i < 5; i++) {
    auto tables = c_.node(i).Tables();
    ASSERT_EQ(tables.size(), 5u);
    bool found = false;
    for (const NodeTable& t : tables) {
      if (t.name != SimCluster::NameOf(1)) continue;
      found = true;
      ASSERT_EQ(t.endpoints.size(), 1u);
      EXPECT_EQ(t.endpoints[0].comm, "nginx");
      EXPECT_EQ(t.endpoints[0].port, 8080);
      EXPECT_EQ(t.endpoints[0].pid, 42u);
      ASSERT_EQ(t.addresses.size(), 1u);
      EXPECT_EQ(t.address, SimCluster::AddressOf(1));
    }
    EXPECT_TRUE(found);
  }
  // Removing the endpoint spreads as a tombstone.
  c_.node(1).SetLocalTable({*IpAddr::Parse("10.0.0.1")}, {});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(1, 3) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  for (const MemberView& m : c_.node(4).Members())
    if (m.name == SimCluster::NameOf(1)) EXPECT_EQ(m.endpoints, 0u);
}

// Issue 14: a node's NAT aliases spread to every member through the real
// encoding (gossip and pulls), and their deletion too.
TEST_F(MeshSimSmall, AliasesSpreadLikeEndpoints) {
  AliasSummary published{*Endpoint::Parse("10.0.0.3:9090"), *Endpoint::Parse("172.18.0.2:80"),
                         false, 42, 40, "nginx", "/usr/sbin/nginx"};
  AliasSummary backend{*Endpoint::Parse("10.0.0.9:8000"), *Endpoint::Parse("10.0.0.4:8000"),
                       true, 0, 0, "", ""};
  c_.node(3).SetLocalTable({*IpAddr::Parse("10.0.0.3")}, {}, {published, backend});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(3, 3) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  for (size_t i = 0; i < 5; i++) {
    for (const NodeTable& t : c_.node(i).Tables()) {
      if (t.name != SimCluster::NameOf(3)) continue;
      EXPECT_TRUE(t.endpoints.empty()) << "node " << i;
      EXPECT_EQ(t.aliases, (std::vector<AliasSummary>{published, backend})) << "node " << i;
    }
  }
  c_.node(3).SetLocalTable({*IpAddr::Parse("10.0.0.3")}, {}, {published});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(3, 4) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  for (const NodeTable& t : c_.node(0).Tables())
    if (t.name == SimCluster::NameOf(3)) EXPECT_EQ(t.aliases, std::vector<AliasSummary>{published});
  EXPECT_EQ(c_.node(0).Stats().malformed, 0u);
}

TEST_F(MeshSimSmall, KilledNodeIsDeclaredDead) {
  c_.Kill(2);
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.AllSee(2, MemberState::kDead); },
                                c_.net().NowNs() + 60 * kSecond, 100 * kMs));
  EXPECT_EQ(c_.FalseDeaths(), 0u);
}

TEST_F(MeshSimSmall, LeaveIsSeenAsLeft) {
  bool done = false;
  c_.node(3).Leave([&] { done = true; });
  ASSERT_TRUE(c_.net().RunUntil([&] { return done; }, c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  EXPECT_EQ(c_.CountSeeing(3, MemberState::kLeft), 4u);
  // Left is not dead: nobody counts a death.
  c_.net().RunFor(30 * kSecond);
  EXPECT_EQ(c_.CountSeeing(3, MemberState::kLeft), 4u);
  EXPECT_TRUE(c_.deaths().empty());
}

TEST_F(MeshSimSmall, RestartReplacesOldGenerationAndTable) {
  c_.node(4).SetLocalTable({}, {{*IpAddr::Parse("10.0.0.4"), 22, 1, 1, "sshd", "/usr/sbin/sshd"}});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(4, 1) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  c_.Restart(4, {SimCluster::AddressOf(0)});
  ASSERT_TRUE(c_.net().RunUntil(
      [&] {
        for (size_t i = 0; i < 4; i++)
          for (const MemberView& m : c_.node(i).Members())
            if (m.name == SimCluster::NameOf(4) &&
                (m.generation != 2 || m.state != MemberState::kAlive))
              return false;
        return true;
      },
      c_.net().NowNs() + 30 * kSecond, 100 * kMs));
  // The old table went with the old generation.
  for (size_t i = 0; i < 4; i++)
    for (const NodeTable& t : c_.node(i).Tables())
      if (t.name == SimCluster::NameOf(4)) EXPECT_TRUE(t.endpoints.empty());
  c_.node(4).SetLocalTable({},
                           {{*IpAddr::Parse("10.0.0.4"), 2222, 9, 9, "sshd", "/usr/sbin/sshd"}});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.CountHoldingTable(4, 1) == 5; },
                                c_.net().NowNs() + 10 * kSecond, 10 * kMs));
  for (const NodeTable& t : c_.node(0).Tables())
    if (t.name == SimCluster::NameOf(4)) {
      ASSERT_EQ(t.endpoints.size(), 1u);
      EXPECT_EQ(t.endpoints[0].port, 2222);
      EXPECT_EQ(t.generation, 2u);
    }
  EXPECT_EQ(c_.FalseDeaths(), 0u);
}

// Look queries ride the members' exchanges: answered later (as meshd does,
// after reading its store off the mesh thread), refused without a handler,
// timed out when the member is dead.
TEST_F(MeshSimSmall, QueriesAreAnsweredLaterRefusedOrTimedOut) {
  Runtime& rt3 = c_.net().runtime(SimCluster::AddressOf(3));
  c_.node(3).SetQueryHandler([&rt3](const Address&, Bytes q, Transport::ExchangeReply reply) {
    rt3.After(300 * kMs, [q = std::move(q), reply = std::move(reply)] {
      Bytes answer(q.rbegin(), q.rend());
      reply(std::move(answer));
    });
  });
  std::vector<Result<Bytes>> got;
  auto keep = [&got](Result<Bytes> r) { got.push_back(std::move(r)); };
  c_.node(0).Query(SimCluster::AddressOf(3), Bytes{1, 2, 3}, 2 * kSecond, keep);
  c_.node(0).Query(SimCluster::AddressOf(4), Bytes{1}, 2 * kSecond, keep);
  c_.net().RunFor(1 * kSecond);
  ASSERT_EQ(got.size(), 2u);
  // No handler on node 4 answers first; node 3 after its 300 ms of work.
  EXPECT_FALSE(got[0].ok());
  ASSERT_TRUE(got[1].ok()) << got[1].status().ToString();
  EXPECT_EQ(*got[1], (Bytes{3, 2, 1}));
  EXPECT_EQ(c_.node(0).Stats().queries_out, 2u);
  EXPECT_EQ(c_.node(3).Stats().queries_in, 1u);

  got.clear();
  c_.Kill(3);
  c_.node(0).Query(SimCluster::AddressOf(3), Bytes{9}, 2 * kSecond, keep);
  c_.net().RunFor(3 * kSecond);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].ok());
}

}  // namespace
}  // namespace flowmesh::mesh
