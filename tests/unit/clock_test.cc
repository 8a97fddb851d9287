// Clock conversions between the kernel's clocks and wall time.
#include <gtest/gtest.h>

#include "node/common/clock.h"

namespace flowmesh {
namespace {

TEST(Clock, MonotonicStampsBecomeWallTimeFromTheFirstCall) {
  int64_t wall = RealtimeNs();
  int64_t converted = MonotonicToRealtimeNs(static_cast<uint64_t>(MonotonicNs()));
  EXPECT_LT(std::llabs(converted - wall), 50'000'000) << "converted " << converted;
}

TEST(Clock, BoottimeToTicksMatchesProcStatUnits) {
  EXPECT_EQ(BoottimeNsToTicks(0), 0u);
  EXPECT_EQ(BoottimeNsToTicks(1'000'000'000), 100u);  // USER_HZ = 100 on Linux
  EXPECT_EQ(BoottimeNsToTicks(1'019'999'999), 101u);  // truncates like the kernel
}

TEST(Clock, FormatsRfc3339InUtc) {
  EXPECT_EQ(FormatRfc3339(1'795'306'142'927'000'000), "2026-11-22T00:09:02.927Z");
}

}  // namespace
}  // namespace flowmesh
