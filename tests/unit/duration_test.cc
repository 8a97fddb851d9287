// Durations as flags spell them.
#include "node/common/duration.h"

#include <gtest/gtest.h>

namespace flowmesh {
namespace {

using std::chrono::milliseconds;

TEST(Duration, ParsesEachUnit) {
  EXPECT_EQ(*ParseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(*ParseDuration("2s"), milliseconds(2000));
  EXPECT_EQ(*ParseDuration("15m"), milliseconds(15 * 60'000));
  EXPECT_EQ(*ParseDuration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(*ParseDuration("7d"), milliseconds(7 * 86'400'000LL));
  EXPECT_EQ(*ParseDuration("0s"), milliseconds(0));
}

TEST(Duration, ParsesCompoundDurations) {
  EXPECT_EQ(*ParseDuration("1h30m"), milliseconds(90 * 60'000));
  EXPECT_EQ(*ParseDuration("1m500ms"), milliseconds(60'500));
}

TEST(Duration, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", "5", "abc", "5x", "1.5s", "-1s", "s", "10 s", "2S", "1h30"}) {
    Result<milliseconds> r = ParseDuration(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("is not a duration"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("500ms"), std::string::npos) << "names examples";
  }
  EXPECT_NE(ParseDuration("5").status().message().find("missing unit"), std::string::npos);
  EXPECT_NE(ParseDuration("5x").status().message().find("unknown unit 'x'"), std::string::npos);
}

TEST(Duration, RejectsOverflow) {
  EXPECT_FALSE(ParseDuration("99999999999999999999s").ok());
  EXPECT_FALSE(ParseDuration("9999999999d").ok());
  EXPECT_FALSE(ParseDuration("3000d3000d").ok());
  EXPECT_TRUE(ParseDuration("3650d").ok());
}

TEST(Duration, FormatsTheTwoLargestUnits) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0ms");
  EXPECT_EQ(FormatDuration(milliseconds(450)), "450ms");
  EXPECT_EQ(FormatDuration(milliseconds(12'000)), "12s");
  EXPECT_EQ(FormatDuration(milliseconds(184'000)), "3m4s");
  EXPECT_EQ(FormatDuration(milliseconds(2 * 3'600'000 + 5'000)), "2h0m");
  EXPECT_EQ(FormatDuration(milliseconds(9 * 86'400'000LL + 3 * 3'600'000)), "9d3h");
  EXPECT_EQ(FormatDuration(milliseconds(-5)), "0ms");
}

}  // namespace
}  // namespace flowmesh

namespace flowmesh {
namespace {

constexpr int64_t kNow = 1'700'000'000'000'000'000;  // 2023-11-14T22:13:20Z

TEST(TimeSpec, DurationsCountBackFromNow) {
  EXPECT_EQ(*ParseTimeSpec("now", kNow), kNow);
  EXPECT_EQ(*ParseTimeSpec("15m", kNow), kNow - 15LL * 60 * 1'000'000'000);
  EXPECT_EQ(*ParseTimeSpec("1h30m", kNow), kNow - 90LL * 60 * 1'000'000'000);
}

TEST(TimeSpec, Rfc3339TimesWithZonesAndFractions) {
  EXPECT_EQ(*ParseTimeSpec("2023-11-14T22:13:20Z", 0), kNow);
  EXPECT_EQ(*ParseTimeSpec("2023-11-14T23:13:20+01:00", 0), kNow);
  EXPECT_EQ(*ParseTimeSpec("2023-11-14T21:13:20-01:00", 0), kNow);
  EXPECT_EQ(*ParseTimeSpec("2023-11-14T22:13:20.25Z", 0), kNow + 250'000'000);
}

TEST(TimeSpec, BadInputSaysWhatIsExpected) {
  for (const char* bad : {"", "yesterday", "5", "2023-11-14T22:13Z", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20", "2023-11-14T22:13:20+1:00"}) {
    Result<int64_t> r = ParseTimeSpec(bad, kNow);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_NE(ParseTimeSpec("2023-11-14T22:13:20", 0).status().message().find("Z or a UTC offset"),
            std::string::npos);
}

}  // namespace
}  // namespace flowmesh
