// Larger simulated meshes: 1,000 nodes join and converge; a killed node is
// declared dead by all within a bound; no live node is declared dead under
// 10% packet loss or because of one stalled node; a partition heals; a new
// endpoint reaches everyone.
#include <gtest/gtest.h>

#include "node/common/log.h"
#include "node/mesh/sim/sim_cluster.h"

namespace flowmesh::mesh {
namespace {

class MeshSimLarge : public ::testing::Test {
 protected:
  void SetUp() override { log::SetLevel(log::Level::Error); }
  void TearDown() override { log::SetLevel(log::Level::Info); }

  // Runs until pred holds or `limit` of virtual time passed.
  static bool RunFor(SimCluster& c, int64_t limit, const std::function<bool()>& pred,
                     int64_t check = 100 * kMs) {
    return c.net().RunUntil(pred, c.net().NowNs() + limit, check);
  }
};

TEST_F(MeshSimLarge, ThousandNodesJoinAndConverge) {
  SimCluster c(1);
  c.AddNodes(1000);
  // Each node joins through three earlier ones, 10 ms apart.
  c.StartAll(3, 10 * kMs);
  EXPECT_TRUE(RunFor(
      c, 120 * kSecond, [&] { return c.AllSeeAlive(1000); }, kSecond));
  EXPECT_EQ(c.FalseDeaths(), 0u);
  for (size_t i = 0; i < 1000; i += 97) EXPECT_TRUE(c.node(i).joined());
}

TEST_F(MeshSimLarge, KilledNodeIsDeclaredDeadByAllWithinBound) {
  SimCluster c(2);
  c.AddNodes(1000);
  c.StartConverged();
  c.net().RunFor(5 * kSecond);
  int64_t killed_at = c.net().NowNs();
  c.Kill(500);
  ASSERT_TRUE(RunFor(c, 40 * kSecond, [&] { return c.AllSee(500, MemberState::kDead); }));
  double detect_s = (c.net().NowNs() - killed_at) / 1e9;
  // Lifeguard's floor at 1,000 nodes is a 12 s suspicion (4 * log10(N) probe
  // intervals) after the first failed probe; the target is 15 s.
  EXPECT_GE(detect_s, 12.0);
  EXPECT_LE(detect_s, 17.0) << "detection took " << detect_s << " s";
  EXPECT_EQ(c.FalseDeaths(), 0u);
}

TEST_F(MeshSimLarge, NoFalsePositivesUnderTenPercentLoss) {
  SimCluster c(3);
  c.AddNodes(300);
  c.StartConverged();
  c.net().SetLoss(0.10);
  c.net().RunFor(60 * kSecond);
  EXPECT_EQ(c.FalseDeaths(), 0u);
  // The loss was real: probes failed over UDP and had to be rescued.
  uint64_t rescued = 0, indirect = 0;
  for (size_t i = 0; i < c.size(); i++) {
    rescued += c.node(i).Stats().membership.fallback_rescues;
    indirect += c.node(i).Stats().membership.indirect_probes;
  }
  EXPECT_GT(indirect, 0u);
  EXPECT_GT(rescued, 0u);
  // A killed node is still found under the same loss.
  c.Kill(7);
  EXPECT_TRUE(RunFor(c, 60 * kSecond, [&] { return c.AllSee(7, MemberState::kDead); }));
  EXPECT_EQ(c.FalseDeaths(), 0u);
}

TEST_F(MeshSimLarge, NoFalsePositivesUnderLossWithoutTheReliableFallback) {
  // Only UDP: indirect probes, nacks and refutation have to carry it.
  MeshConfig base;
  base.tcp_fallback_ping = false;
  SimCluster c(4, base);
  c.AddNodes(200);
  c.StartConverged();
  c.net().SetLoss(0.10);
  c.net().RunFor(60 * kSecond);
  EXPECT_EQ(c.FalseDeaths(), 0u);
  uint64_t suspicions = 0, refutations = 0;
  for (size_t i = 0; i < c.size(); i++) {
    suspicions += c.node(i).Stats().membership.suspicions;
    refutations += c.node(i).Stats().membership.refutations;
  }
  EXPECT_GT(suspicions, 0u) << "10% loss should make some probes fail";
  EXPECT_GT(refutations, 0u);
}

TEST_F(MeshSimLarge, StalledNodeMakesNoOneElseDead) {
  // Lifeguard's case: a node that handles what it receives 1.5 s late sees
  // its probes time out and suspects healthy peers; its own health score and
  // the others' refutations must keep everyone alive.
  SimCluster c(5);
  c.AddNodes(100);
  c.StartConverged();
  c.net().RunFor(2 * kSecond);
  c.net().Stall(SimCluster::AddressOf(13), 1500 * kMs, 0);
  c.net().RunFor(90 * kSecond);
  size_t about_others = 0;
  for (const auto& d : c.deaths()) about_others += d.member != 13;
  EXPECT_EQ(about_others, 0u);
  EXPECT_GT(c.node(13).Stats().awareness + c.node(13).Stats().membership.refutations, 0)
      << "the stalled node should have noticed it is slow";
  // After the stall ends everything is alive again.
  c.net().Stall(SimCluster::AddressOf(13), 0, 0);
  EXPECT_TRUE(RunFor(c, 60 * kSecond, [&] { return c.AllSeeAlive(100); }));
}

TEST_F(MeshSimLarge, PartitionHeals) {
  SimCluster c(6);
  c.AddNodes(60);
  c.StartConverged();
  std::vector<Address> a, b;
  for (size_t i = 0; i < 60; i++) (i < 30 ? a : b).push_back(SimCluster::AddressOf(i));
  c.net().Partition({a, b});
  // Each side declares the other dead.
  ASSERT_TRUE(RunFor(c, 120 * kSecond, [&] { return c.CountSeeing(0, MemberState::kDead) == 30; }));
  c.net().Heal();
  // Push-pull and gossip to the recently dead bring them back together.
  EXPECT_TRUE(RunFor(
      c, 180 * kSecond, [&] { return c.AllSeeAlive(60); }, kSecond));
}

TEST_F(MeshSimLarge, NewEndpointReachesEveryone) {
  SimCluster c(7);
  c.AddNodes(1000);
  c.StartConverged();
  c.net().RunFor(3 * kSecond);
  int64_t t0 = c.net().NowNs();
  c.node(42).SetLocalTable(
      {*IpAddr::Parse("10.0.0.42")},
      {{*IpAddr::Parse("10.0.0.42"), 6379, 77, 77, "redis-server", "/usr/bin/redis-server"}});
  ASSERT_TRUE(RunFor(
      c, 30 * kSecond, [&] { return c.CountHoldingTable(42, 2) == 1000; }, 10 * kMs));
  double took = (c.net().NowNs() - t0) / 1e9;
  // memberlist's estimate for 1,000 nodes to 99.99% is 2.2 s.
  EXPECT_LE(took, 5.0);
  for (size_t i = 0; i < 1000; i += 111) {
    bool seen = false;
    for (const NodeTable& t : c.node(i).Tables())
      if (t.name == SimCluster::NameOf(42) && t.endpoints.size() == 1 &&
          t.endpoints[0].comm == "redis-server")
        seen = true;
    EXPECT_TRUE(seen) << "node " << i;
  }
}

}  // namespace
}  // namespace flowmesh::mesh
