// The log line shapes: text for people, JSON for log shippers.
#include "node/common/log.h"

#include <gtest/gtest.h>

namespace flowmesh::log {
namespace {

constexpr int64_t kT = 1'796'000'462'113;  // 2026-11-30T01:01:02.113Z

TEST(LogFormat, TextLineHasTimeLevelComponentAndMessage) {
  EXPECT_EQ(FormatLine(Format::kText, kT, Level::Warn, "store", "disk full\n"),
            "2026-11-30T01:01:02.113Z WARN store: disk full\n");
}

TEST(LogFormat, JsonLineIsOneObjectWithEscapedFields) {
  EXPECT_EQ(FormatLine(Format::kJson, kT, Level::Info, "probe", "attached \"tp_btf\"\n"),
            "{\"ts\":\"2026-11-30T01:01:02.113Z\",\"level\":\"info\",\"component\":\"probe\","
            "\"msg\":\"attached \\\"tp_btf\\\"\"}\n");
  // A message with a newline inside and control bytes stays one line.
  std::string line = FormatLine(Format::kJson, kT, Level::Error, "c", "a\nb\\c\td\x01");
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_NE(line.find("\"msg\":\"a\\nb\\\\c\\td\\u0001\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"level\":\"error\""), std::string::npos);
}

// Log messages carry bytes from outside (comm, paths, peers' texts): a JSON
// line stays valid JSON whatever they are.
TEST(LogFormat, JsonLineReplacesInvalidUtf8AndEscapesControlBytes) {
  std::string line = FormatLine(Format::kJson, kT, Level::Warn, "c\xff",
                                std::string("bad \xc0\xaf\x7f\x00ok\xe2\x82", 12));
  EXPECT_EQ(line,
            "{\"ts\":\"2026-11-30T01:01:02.113Z\",\"level\":\"warn\",\"component\":\"c\\ufffd\","
            "\"msg\":\"bad \\ufffd\\ufffd\\u007f\\u0000ok\\ufffd\\ufffd\"}\n");
  // Well-formed UTF-8 passes through unchanged.
  EXPECT_NE(FormatLine(Format::kJson, kT, Level::Info, "c", "caf\xc3\xa9").find("caf\xc3\xa9"),
            std::string::npos);
}

TEST(LogFormat, ParsesNamesAndRejectsOthers) {
  EXPECT_EQ(ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("text"), Format::kText);
  EXPECT_FALSE(ParseFormat("yaml").has_value());
  EXPECT_EQ(ParseLevel("warning"), Level::Warn);
  EXPECT_FALSE(ParseLevel("loud").has_value());
}

TEST(LogCapture, KeepsEnabledLinesWithoutTheTime) {
  Capture capture;
  FM_LOG(Warn, "mesh") << "dropped " << 3;
  FM_LOG(Debug, "mesh") << "not at the default level";
  EXPECT_EQ(capture.Lines(), (std::vector<std::string>{"WARN mesh: dropped 3"}));
  EXPECT_EQ(capture.Count("dropped"), 1u);
}

TEST(LogRateLimit, OneLinePerIntervalCountingWhatWasHeld) {
  RateLimit limit(10'000);
  uint64_t held = 99;
  EXPECT_TRUE(limit.Allow(5, &held));
  EXPECT_EQ(held, 0u);
  EXPECT_FALSE(limit.Allow(6, &held));
  EXPECT_FALSE(limit.Allow(10'004, &held));
  EXPECT_TRUE(limit.Allow(10'005, &held));
  EXPECT_EQ(held, 2u);
  EXPECT_TRUE(limit.Allow(50'000, &held));
  EXPECT_EQ(held, 0u);
}

}  // namespace
}  // namespace flowmesh::log
