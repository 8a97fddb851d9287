// meshd's history flags: sizes, durations and their limits.
#include "node/daemon/config.h"

#include <gtest/gtest.h>

namespace flowmesh {
namespace {

std::optional<DaemonConfig> Parse(std::vector<std::string> args, int* code) {
  args.insert(args.begin(), "meshd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data(), code);
}

TEST(ByteSize, UnitsArePowersOf1024) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseByteSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("500M"), 500ull << 20);
  EXPECT_EQ(*ParseByteSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("1TB"), 1ull << 40);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  for (const char* bad : {"", "G", "2X", "-1", "99999999999T"})
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
}

TEST(DaemonFlags, HistoryDefaultsAndValues) {
  int code = -1;
  std::optional<DaemonConfig> c = Parse({}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data_dir, "/var/lib/flowmesh");
  EXPECT_EQ(c->flush_interval, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->retention, std::chrono::hours(7 * 24));
  EXPECT_EQ(c->retention_bytes, 2ull << 30);
  c = Parse({"--data-dir", "/tmp/x", "--flush-interval", "250ms", "--retention", "12h",
             "--retention-size", "0"},
            &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data_dir, "/tmp/x");
  EXPECT_EQ(c->flush_interval, std::chrono::milliseconds(250));
  EXPECT_EQ(c->retention, std::chrono::hours(12));
  EXPECT_EQ(c->retention_bytes, 0u);
}

TEST(DaemonFlags, BadHistoryValuesAreUsageErrors) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--flush-interval", "5ms"},
                                       {"--flush-interval", "soon"},
                                       {"--retention", "30s"},
                                       {"--retention-size", "1M"},
                                       {"--retention-size", "lots"},
                                       {"--data-dir", ""}}) {
    int code = -1;
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(bad, &code)) << bad[0] << " " << bad[1];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2);
    EXPECT_NE(err.find(bad[0]), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace flowmesh
