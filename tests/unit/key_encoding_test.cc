// The store's key encodings: byte order is time order, every key decodes to
// what was encoded (IPv4 and IPv6), and wrong lengths are rejected.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <vector>

#include "node/store/keys.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using testing::MakeFlowKey;
using testing::MakeRecord;

IpAddr V6(uint8_t last) {
  uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last};
  return IpAddr::V6(b);
}

TEST(KeyEncoding, RecordKeysSortInTimeOrder) {
  // Includes values whose little-endian bytes would sort the other way.
  std::vector<int64_t> times = {
      0,        1, 255, 256, 65535, 65536, 1'700'000'000'000'000'000, 1'700'000'000'000'000'001,
      INT64_MAX};
  std::vector<std::string> keys;
  for (int64_t t : times) keys.push_back(RecordKey(t, MakeRecord(t, 7, 40000, 80).key));
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  for (size_t i = 0; i < times.size(); ++i) {
    auto parts = DecodeRecordKey(keys[i]);
    ASSERT_TRUE(parts.ok()) << parts.status().message();
    EXPECT_EQ(parts->ts_ns, times[i]);
    // RecordKeyAt(t) bounds every record of t from below and of t-1 from above.
    EXPECT_LT(RecordKeyAt(times[i]), keys[i]);
    if (i + 1 < times.size()) {
      EXPECT_LT(keys[i], RecordKeyAt(times[i + 1]));
    }
  }
}

TEST(KeyEncoding, RecordKeyIsDeterministicAndSeparatesConnections) {
  ConnRecord a = MakeRecord(5, 7, 40000, 80), b = MakeRecord(5, 7, 40001, 80);
  EXPECT_EQ(RecordKey(5, a.key), RecordKey(5, a.key));
  EXPECT_NE(RecordKey(5, a.key), RecordKey(5, b.key));
  EXPECT_EQ(RecordKey(5, a.key).size(), kRecordKeySize);
  // Pinned: the hash is part of the on-disk format and must not change
  // between builds (std::hash would be free to).
  ConnKey k;
  k.netns = 1;
  k.laddr = IpAddr::V4(127, 0, 0, 1);
  k.raddr = IpAddr::V4(127, 0, 0, 1);
  k.lport = 1;
  k.rport = 2;
  EXPECT_EQ(ConnKeyHash32(k), 0xac92d079u);  // FNV-1a, computed independently
}

TEST(KeyEncoding, BlockKeysAreTheFirstRecordsKeyMarked) {
  ConnRecord a = MakeRecord(1'700'000'000'000'000'000, 7, 40000, 80);
  const std::string block = RecordBlockKey(a.ts_ns, a.key);
  EXPECT_EQ(block.size(), kRecordBlockKeySize);
  EXPECT_EQ(block.substr(0, kRecordKeySize), RecordKey(a.ts_ns, a.key));
  auto parts = DecodeRecordKey(block);
  ASSERT_TRUE(parts.ok()) << parts.status().message();
  EXPECT_TRUE(parts->block);
  EXPECT_EQ(parts->ts_ns, a.ts_ns);
  EXPECT_FALSE(DecodeRecordKey(RecordKey(a.ts_ns, a.key))->block);
  // Between the bounds of its time, as a record's key is.
  EXPECT_LT(RecordKeyAt(a.ts_ns), block);
  EXPECT_LT(block, RecordKeyAt(a.ts_ns + 1));
}

TEST(KeyEncoding, NegativeTimesClampToZero) { EXPECT_EQ(RecordKeyAt(-5), RecordKeyAt(0)); }

TEST(KeyEncoding, FlowKeysRoundTripV4AndV6) {
  FlowKey active = MakeFlowKey(4242, 6379);
  FlowKey passive;
  passive.direction = Direction::kPassive;
  passive.netns = 0xfffffffe;
  passive.pid = 0xffffffff;
  passive.start_ticks = 0x0123456789abcdefULL;
  passive.laddr = V6(1);
  passive.lport = 443;
  passive.raddr = V6(2);
  FlowKey unknown;  // unset addresses are legal (family 0)
  for (const FlowKey& k : {active, passive, unknown}) {
    for (int level = 0; level < kFlowLevels; ++level) {
      const int64_t bucket = FlowLevelBucketOf(level, testing::kT0 + 3 * testing::kMin);
      auto parts = DecodeFlowRowKey(FlowRowKey(level, bucket, k));
      ASSERT_TRUE(parts.ok()) << parts.status().message();
      EXPECT_EQ(parts->level, level);
      EXPECT_EQ(parts->bucket_ns, bucket);
      EXPECT_EQ(parts->key, k);
    }
  }
  EXPECT_EQ(FlowRowKey(0, 0, active).size(), 1u + 8 + 1 + 4 + 4 + 8 + 5 + 2 + 5 + 2);
  EXPECT_EQ(FlowRowKey(0, 0, passive).size(), 1u + 8 + 1 + 4 + 4 + 8 + 17 + 2 + 17 + 2);
}

TEST(KeyEncoding, TranslatedFlowKeysRoundTripAndUntranslatedKeysKeepTheirBytes) {
  FlowKey via_vip = MakeFlowKey(4242, 80);
  const std::string before = FlowRowKey(0, testing::kT0, via_vip);
  via_vip.xaddr = IpAddr::V4(10, 213, 0, 2);
  via_vip.xport = 8080;
  FlowKey forwarded;
  forwarded.direction = Direction::kForwarded;
  forwarded.laddr = V6(1);
  forwarded.lport = 8000;
  forwarded.raddr = V6(2);
  forwarded.xaddr = V6(3);
  forwarded.xport = 8000;
  for (const FlowKey& k : {via_vip, forwarded}) {
    auto parts = DecodeFlowRowKey(FlowRowKey(2, testing::kT0, k));
    ASSERT_TRUE(parts.ok()) << parts.status().message();
    EXPECT_EQ(parts->key, k);
  }
  // A flow without translation is written as before NAT was read: a key of
  // an older meshd is the same flow.
  via_vip.xport = 0;
  via_vip.xaddr = IpAddr{};
  EXPECT_EQ(FlowRowKey(0, testing::kT0, via_vip), before);
  auto old = DecodeFlowRowKey(before);
  ASSERT_TRUE(old.ok());
  EXPECT_FALSE(old->key.translated());

  std::string good = FlowRowKey(0, testing::kT0, forwarded);
  FlowKey untranslated = forwarded;
  untranslated.xport = 0;
  const size_t head = FlowRowKey(0, testing::kT0, untranslated).size();
  ASSERT_EQ(good.size(), head + 17 + 2);
  for (size_t n = head + 1; n < good.size(); ++n)
    EXPECT_FALSE(DecodeFlowRowKey(good.substr(0, n)).ok()) << "length " << n;
  std::string zero_port = good;
  zero_port[zero_port.size() - 1] = 0;
  zero_port[zero_port.size() - 2] = 0;
  EXPECT_FALSE(DecodeFlowRowKey(zero_port).ok());  // a suffix is written only when translated
}

TEST(KeyEncoding, FlowKeysSortByLevelThenBucket) {
  FlowKey small = MakeFlowKey(1, 1), big = MakeFlowKey(0xffffffff, 65535);
  big.laddr = V6(9);
  const int64_t b0 = testing::kT0, b1 = testing::kT0 + testing::kMin;
  EXPECT_LT(FlowRowKey(0, b0, big), FlowRowKey(0, b1, small));
  EXPECT_LT(FlowBucketKey(0, b0), FlowRowKey(0, b0, small));
  EXPECT_LT(FlowRowKey(0, b0, big), FlowBucketKey(0, b1));
  // Each level is one contiguous range.
  EXPECT_LT(FlowRowKey(0, INT64_MAX, big), FlowBucketKey(1, 0));
  EXPECT_LT(FlowRowKey(1, INT64_MAX, big), FlowBucketKey(2, 0));
  EXPECT_EQ(FlowLevelBucketOf(1, testing::kT0 + 17 * testing::kMin + 5),
            testing::kT0 - testing::kT0 % (10 * testing::kMin) + 20 * testing::kMin);
}

TEST(KeyEncoding, FlowKeyDecoderRejectsMalformedKeys) {
  std::string good = FlowRowKey(1, testing::kT0, MakeFlowKey(1, 80));
  ASSERT_TRUE(DecodeFlowRowKey(good).ok());
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(DecodeFlowRowKey(good.substr(0, n)).ok()) << "length " << n;
  EXPECT_FALSE(DecodeFlowRowKey(good + "x").ok());
  std::string bad_family = good;
  bad_family[26] = 3;  // laddr's family byte
  EXPECT_FALSE(DecodeFlowRowKey(bad_family).ok());
  std::string bad_direction = good;
  bad_direction[9] = 9;
  EXPECT_FALSE(DecodeFlowRowKey(bad_direction).ok());
  std::string bad_level = good;
  bad_level[0] = kFlowLevels;
  EXPECT_FALSE(DecodeFlowRowKey(bad_level).ok());
}

TEST(KeyEncoding, ProcessAndEndpointKeysRoundTrip) {
  auto p = DecodeProcessKey(ProcessKey(31337, 0xdeadbeefcafeULL));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->pid, 31337u);
  EXPECT_EQ(p->start_ticks, 0xdeadbeefcafeULL);
  EXPECT_LT(ProcessKey(1, 0xffffffffffffULL), ProcessKey(2, 0));

  for (const IpAddr& addr : {IpAddr::V4(0, 0, 0, 0), IpAddr::V4(10, 213, 0, 3), V6(7)}) {
    auto e = DecodeEndpointKey(EndpointKey(4026531840u, addr, 6379));
    ASSERT_TRUE(e.ok()) << e.status().message();
    EXPECT_EQ(e->netns, 4026531840u);
    EXPECT_EQ(e->addr, addr);
    EXPECT_EQ(e->port, 6379);
  }
}

TEST(KeyEncoding, DecodersRejectWrongLengths) {
  std::string rec = RecordKey(1, {});
  EXPECT_FALSE(DecodeRecordKey(rec.substr(0, 11)).ok());
  EXPECT_FALSE(DecodeRecordKey(rec + "x").ok());
  std::string proc = ProcessKey(1, 2);
  EXPECT_FALSE(DecodeProcessKey(proc.substr(0, 11)).ok());
  EXPECT_FALSE(DecodeProcessKey(proc + "x").ok());
  std::string ep = EndpointKey(1, IpAddr::V4(1, 2, 3, 4), 80);
  for (size_t n = 0; n < ep.size(); ++n) EXPECT_FALSE(DecodeEndpointKey(ep.substr(0, n)).ok());
  EXPECT_FALSE(DecodeEndpointKey(ep + "x").ok());
  EXPECT_FALSE(DecodeCountKey(CountKey(5).substr(0, 8)).ok());
  EXPECT_FALSE(DecodeCountKey("u" + CountKey(5).substr(1)).ok());
  auto count = DecodeCountKey(CountKey(testing::kT0));
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, testing::kT0);
  EXPECT_FALSE(DecodeCheckpointKey(CountKey(5)).ok()) << "a record count is no checkpoint";
  EXPECT_FALSE(DecodeCheckpointKey(CheckpointKey(5) + "x").ok());
  auto checkpoint = DecodeCheckpointKey(CheckpointKey(testing::kT0));
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ(*checkpoint, testing::kT0);
}

TEST(KeyEncoding, MetaNamespacesDoNotOverlap) {
  // User keys can never be mistaken for record counts, whatever their text.
  EXPECT_NE(UserMetaKey("c")[0], kMetaCountPrefix);
  EXPECT_LT(CountKey(INT64_MAX), std::string(1, kMetaCountPrefix + 1));
  // Checkpoints sort apart from counts, the store's own keys and user keys:
  // the last one at or before a time is found by seeking back among them.
  EXPECT_LT(CheckpointKey(INT64_MAX), std::string(1, kMetaCheckpointPrefix + 1));
  EXPECT_GT(CheckpointKey(0), std::string(1, kMetaCheckpointPrefix));
  EXPECT_NE(UserMetaKey("k")[0], kMetaCheckpointPrefix);
  EXPECT_NE(std::string(kMetaWatchedUntilKey)[0], kMetaCheckpointPrefix);
}

}  // namespace
}  // namespace flowmesh
