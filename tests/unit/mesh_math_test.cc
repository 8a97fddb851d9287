// The membership maths: suspicion timeouts and their shrinking with
// confirmations, local health (awareness), retransmit limits and push-pull
// scaling, against memberlist's own expectations.
#include <gtest/gtest.h>

#include "node/mesh/awareness.h"
#include "node/mesh/broadcast_queue.h"
#include "node/mesh/config.h"
#include "node/mesh/sim/sim_network.h"
#include "node/mesh/suspicion.h"

namespace flowmesh::mesh {
namespace {

TEST(MeshMath, SuspicionMinTimeoutScalesWithLog10OfN) {
  // mult 4, 1 s probes: max(1, log10 N) * 4 s.
  EXPECT_EQ(SuspicionMinTimeout(4, 1, kSecond), 4 * kSecond);
  EXPECT_EQ(SuspicionMinTimeout(4, 10, kSecond), 4 * kSecond);
  EXPECT_EQ(SuspicionMinTimeout(4, 100, kSecond), 8 * kSecond);
  EXPECT_EQ(SuspicionMinTimeout(4, 1000, kSecond), 12 * kSecond);
  EXPECT_EQ(SuspicionMinTimeout(4, 10000, kSecond), 16 * kSecond);
  // memberlist's table (mult 3, divided back by 3): three decimals kept.
  EXPECT_EQ(SuspicionMinTimeout(3, 5, kSecond) / 3, 1000 * kMs);
  EXPECT_EQ(SuspicionMinTimeout(3, 50, kSecond) / 3, 1698 * kMs);
  EXPECT_EQ(SuspicionMinTimeout(3, 500, kSecond) / 3, 2698 * kMs);
  // Zero members is treated as one, never below the floor.
  EXPECT_EQ(SuspicionMinTimeout(4, 0, kSecond), 4 * kSecond);
}

TEST(MeshMath, RemainingSuspicionTimeFallsWithConfirmations) {
  // memberlist TestSuspicion_remainingSuspicionTime.
  const int64_t min = 2 * kSecond, max = 30 * kSecond;
  EXPECT_EQ(RemainingSuspicionTime(0, 3, 0, min, max), 30 * kSecond);
  EXPECT_EQ(RemainingSuspicionTime(1, 3, 2 * kSecond, min, max), 14 * kSecond);
  EXPECT_EQ(RemainingSuspicionTime(2, 3, 3 * kSecond, min, max), 4810 * kMs);
  EXPECT_EQ(RemainingSuspicionTime(3, 3, 4 * kSecond, min, max), -2 * kSecond);
  EXPECT_EQ(RemainingSuspicionTime(4, 3, 5 * kSecond, min, max), -3 * kSecond);
  EXPECT_EQ(RemainingSuspicionTime(5, 3, 10 * kSecond, min, max), -8 * kSecond);
  // At 1,000 nodes with k = 2: 72 s alone, 34.1 s after one confirmation,
  // the 12 s floor after two.
  const int64_t min1k = 12 * kSecond, max1k = 72 * kSecond;
  EXPECT_EQ(RemainingSuspicionTime(0, 2, 0, min1k, max1k), 72 * kSecond);
  EXPECT_EQ(RemainingSuspicionTime(1, 2, 0, min1k, max1k), 34144 * kMs);
  EXPECT_EQ(RemainingSuspicionTime(2, 2, 0, min1k, max1k), 12 * kSecond);
}

class SuspicionTimer : public ::testing::Test {
 protected:
  SuspicionTimer() : net_(1) { net_.AddHost("h:1"); }
  Runtime& rt() { return net_.runtime("h:1"); }
  SimNetwork net_;
  int fired_ = 0;
  int64_t fired_at_ = -1;
  std::function<void()> Fire() {
    return [this] {
      fired_++;
      fired_at_ = net_.NowNs();
    };
  }
};

TEST_F(SuspicionTimer, WithoutConfirmationsWaitsTheMaximum) {
  Suspicion s(rt(), /*from=*/1, /*k=*/3, 2 * kSecond, 30 * kSecond, Fire());
  net_.RunFor(29 * kSecond);
  EXPECT_EQ(fired_, 0);
  net_.RunFor(2 * kSecond);
  EXPECT_EQ(fired_, 1);
  EXPECT_EQ(fired_at_, 30 * kSecond);
}

TEST_F(SuspicionTimer, ConfirmationsShortenAndOnlyCountOncePerMember) {
  Suspicion s(rt(), 1, 3, 2 * kSecond, 30 * kSecond, Fire());
  EXPECT_FALSE(s.Confirm(1)) << "the accuser cannot confirm itself";
  net_.RunFor(2 * kSecond);
  EXPECT_TRUE(s.Confirm(2));
  EXPECT_FALSE(s.Confirm(2));
  EXPECT_EQ(s.confirmations(), 1);
  EXPECT_EQ(s.deadline_ns(), 16 * kSecond);  // 14 s left after 2 s
  net_.RunFor(1 * kSecond);
  EXPECT_TRUE(s.Confirm(3));
  EXPECT_EQ(s.deadline_ns(), 7810 * kMs);
  EXPECT_TRUE(s.Confirm(4));  // third of three: down to the minimum, already past
  EXPECT_FALSE(s.Confirm(5)) << "k confirmations is all that counts";
  net_.RunFor(1);
  EXPECT_EQ(fired_, 1);
  EXPECT_EQ(fired_at_, 3 * kSecond);
}

TEST_F(SuspicionTimer, NoExpectedConfirmationsMeansTheMinimum) {
  Suspicion s(rt(), 1, 0, 2 * kSecond, 30 * kSecond, Fire());
  net_.RunFor(3 * kSecond);
  EXPECT_EQ(fired_, 1);
  EXPECT_EQ(fired_at_, 2 * kSecond);
}

TEST_F(SuspicionTimer, DestroyedSuspicionNeverFires) {
  { Suspicion s(rt(), 1, 0, 2 * kSecond, 30 * kSecond, Fire()); }
  net_.RunFor(60 * kSecond);
  EXPECT_EQ(fired_, 0);
}

TEST(MeshMath, AwarenessStaysWithinBoundsAndScalesTimeouts) {
  Awareness a(8);
  EXPECT_EQ(a.Score(), 0);
  EXPECT_EQ(a.ScaleTimeout(500 * kMs), 500 * kMs);
  a.ApplyDelta(-1);
  EXPECT_EQ(a.Score(), 0);
  a.ApplyDelta(3);
  EXPECT_EQ(a.Score(), 3);
  EXPECT_EQ(a.ScaleTimeout(kSecond), 4 * kSecond);
  a.ApplyDelta(100);
  EXPECT_EQ(a.Score(), 7);
  EXPECT_EQ(a.ScaleTimeout(kSecond), 8 * kSecond);
  a.ApplyDelta(-2);
  EXPECT_EQ(a.Score(), 5);
  a.ApplyDelta(-100);
  EXPECT_EQ(a.Score(), 0);
}

TEST(MeshMath, RetransmitLimit) {
  // memberlist TestRetransmitLimit, then the 4 * ceil(log10(N + 1)).
  EXPECT_EQ(RetransmitLimit(3, 0), 0);
  EXPECT_EQ(RetransmitLimit(3, 1), 3);
  EXPECT_EQ(RetransmitLimit(3, 99), 6);
  EXPECT_EQ(RetransmitLimit(4, 9), 4);
  EXPECT_EQ(RetransmitLimit(4, 10), 8);
  EXPECT_EQ(RetransmitLimit(4, 1000), 16);
  EXPECT_EQ(RetransmitLimit(4, 10000), 20);
}

TEST(MeshMath, PushPullIntervalGrowsPerDoublingAbove32) {
  for (size_t n = 0; n <= 32; n++) EXPECT_EQ(PushPullInterval(kSecond, n), kSecond);
  for (size_t n = 33; n <= 64; n++) EXPECT_EQ(PushPullInterval(kSecond, n), 2 * kSecond);
  for (size_t n = 65; n <= 128; n++) EXPECT_EQ(PushPullInterval(kSecond, n), 3 * kSecond);
  EXPECT_EQ(PushPullInterval(30 * kSecond, 1000), 180 * kSecond);
  EXPECT_EQ(PushPullInterval(30 * kSecond, 10000), 300 * kSecond);
}

}  // namespace
}  // namespace flowmesh::mesh
