// Flapping on the simulated network: a starved member is suspected again and
// again and refutes every time. SWIM never declares it dead, so without
// counters and a warning nobody would know; with them, status, metrics and
// the log (once a minute, not once a flap) say so.
#include <gtest/gtest.h>

#include "node/common/log.h"
#include "node/mesh/sim/sim_cluster.h"

namespace flowmesh::mesh {
namespace {

class MeshSimFlapping : public ::testing::Test {
 protected:
  void SetUp() override {
    log::SetLevel(log::Level::Warn);
    c_.AddNodes(5);
    c_.StartAll(1, 50 * kMs);
    ASSERT_TRUE(c_.net().RunUntil([&] { return c_.AllSeeAlive(5); },
                                  c_.net().NowNs() + 30 * kSecond, 100 * kMs));
  }
  void TearDown() override { log::SetLevel(log::Level::Info); }

  SimCluster c_{11};
};

TEST_F(MeshSimFlapping, AHealthyMeshCountsNothing) {
  log::Capture capture;
  c_.net().RunFor(60 * kSecond);
  for (size_t i = 0; i < 5; i++) {
    MeshStats st = c_.node(i).Stats();
    EXPECT_EQ(st.membership.flaps.refutations, 0u) << i;
    EXPECT_EQ(st.membership.flaps.flaps, 0u) << i;
    EXPECT_EQ(st.membership.flaps.suspicions_raised, 0u) << i;
    EXPECT_TRUE(st.flapping.empty()) << i;
  }
  EXPECT_TRUE(capture.Lines().empty()) << ::testing::PrintToString(capture.Lines());
}

TEST_F(MeshSimFlapping, AStarvedMemberKeepsRefutingAndEveryoneSaysSoOnceAMinute) {
  log::Capture capture;
  // What reaches node 2 is handled 1.5 s late: later than a probe round, so
  // its acks miss every probe (the reliable fallback too), while the news of
  // the suspicion still reaches it long before the suspicion times out.
  c_.net().Stall(SimCluster::AddressOf(2), 1500 * kMs, 0);
  const int64_t run_ns = 150 * kSecond;
  c_.net().RunFor(run_ns);

  MeshStats starved = c_.node(2).Stats();
  EXPECT_GE(starved.membership.flaps.refutations, 3u);
  EXPECT_GE(starved.membership.flaps.incarnation_bumps, starved.membership.flaps.refutations);
  uint64_t raised = 0, received = 0;
  for (size_t i : {0, 1, 3, 4}) {
    MeshStats st = c_.node(i).Stats();
    raised += st.membership.flaps.suspicions_raised;
    received += st.membership.flaps.suspicions_received;
    EXPECT_GE(st.membership.flaps.flaps, 3u) << i;
    ASSERT_FALSE(st.flapping.empty()) << i;
    EXPECT_EQ(st.flapping[0].name, SimCluster::NameOf(2)) << i;
    EXPECT_GE(st.flapping[0].flaps, 3u) << i;
  }
  EXPECT_GT(raised, 0u);
  EXPECT_GT(received, 0u);

  // Once per minute at most, per node and kind: 150 s allow three.
  size_t refuting = capture.Count(SimCluster::NameOf(2) + " had to refute being suspected");
  EXPECT_GE(refuting, 2u) << ::testing::PrintToString(capture.Lines());
  EXPECT_LE(refuting, 3u) << ::testing::PrintToString(capture.Lines());
  size_t flapping = capture.Count("member " + SimCluster::NameOf(2) +
                                  " went suspect and back to alive 3 times within 60 s");
  EXPECT_GE(flapping, 4u) << ::testing::PrintToString(capture.Lines());
  EXPECT_LE(flapping, 4u * 3u) << ::testing::PrintToString(capture.Lines());
  EXPECT_LE(capture.Count("as seen from " + SimCluster::NameOf(0)), 3u);
  // The warning names what to check, and what not.
  EXPECT_GE(capture.Count("ip -s neigh"), refuting + flapping);
  EXPECT_GE(capture.Count("gc_thresh3"), refuting + flapping);
  EXPECT_GE(capture.Count("Clock jumps do not cause this"), refuting + flapping);
}

// Packet loss, without the reliable fallback ping that would otherwise rescue most probes:
// members are suspected and refute, and the counters move on both sides.
TEST(MeshSimFlappingLoss, PacketLossMovesTheCounters) {
  log::SetLevel(log::Level::Error);
  MeshConfig base;
  base.tcp_fallback_ping = false;
  SimCluster c(13, base);
  c.AddNodes(5);
  c.StartAll(1, 50 * kMs);
  ASSERT_TRUE(c.net().RunUntil([&] { return c.AllSeeAlive(5); }, c.net().NowNs() + 30 * kSecond,
                               100 * kMs));
  c.net().SetLoss(0.3);
  c.net().RunFor(120 * kSecond);
  log::SetLevel(log::Level::Info);
  uint64_t suspected = 0, refuted = 0, flaps = 0;
  for (size_t i = 0; i < 5; i++) {
    MeshStats st = c.node(i).Stats();
    suspected += st.membership.flaps.suspicions_raised + st.membership.flaps.suspicions_received;
    refuted += st.membership.flaps.refutations;
    flaps += st.membership.flaps.flaps;
  }
  EXPECT_GT(suspected, 0u);
  EXPECT_GT(refuted, 0u);
  EXPECT_GT(flaps, 0u);
}

// A member held dead that refutes in the same life was a false death.
TEST_F(MeshSimFlapping, AMemberDeclaredDeadThatRefutesIsAFalseDeath) {
  log::Capture capture;
  // Cut node 3 off long enough to be declared dead, then let it back: it
  // hears of its death and refutes with a higher incarnation, no restart.
  c_.net().Partition({{SimCluster::AddressOf(3)}});
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.AllSee(3, MemberState::kDead); },
                                c_.net().NowNs() + 60 * kSecond, 100 * kMs));
  c_.net().Heal();
  ASSERT_TRUE(c_.net().RunUntil([&] { return c_.AllSeeAlive(5); }, c_.net().NowNs() + 60 * kSecond,
                                100 * kMs));
  uint64_t false_deaths = 0;
  for (size_t i : {0, 1, 2, 4}) false_deaths += c_.node(i).Stats().membership.flaps.false_deaths;
  EXPECT_GE(false_deaths, 1u);
  EXPECT_GE(c_.node(3).Stats().membership.flaps.refutations, 1u);
  EXPECT_GE(capture.Count("member " + SimCluster::NameOf(3) + " was held dead by"), 1u)
      << ::testing::PrintToString(capture.Lines());
}

}  // namespace
}  // namespace flowmesh::mesh
