// The store's value encodings: round trips, size, and malformed input
// rejected with an error (truncation, trailing bytes, unknown formats, bad
// workloads). Old formats read back: store_migration_test.cc.
#include <gtest/gtest.h>

#include <random>

#include "node/store/codec.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using testing::MakeRecord;

TEST(StoreCodec, RecordRoundTripsWithoutComm) {
  for (bool v6 : {false, true}) {
    ConnRecord r = MakeRecord(testing::kT0 + 17, 4242, 40000, 6379, v6);
    r.proc.set_comm("redis-cli");
    r.counters.bytes_tx = 1ULL << 40;  // wide values survive the varints
    r.duration_ns = UINT64_MAX;
    std::string v = EncodeRecordValue(r);
    EXPECT_EQ(v.find("redis-cli"), std::string::npos) << "comm must live in the processes CF";
    auto back = DecodeRecordValue(r.ts_ns, v);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->proc.comm_view(), "");
    r.proc.set_comm("");
    EXPECT_EQ(*back, r);
  }
}

TEST(StoreCodec, ReconstructedFlagAndCgroupIdRoundTrip) {
  ConnRecord r = MakeRecord(testing::kT0, 4242, 40000, 6379);
  r.reconstructed = true;
  r.proc.cgroup_id = UINT64_MAX;  // the widest varint
  std::string v = EncodeRecordValue(r);
  EXPECT_EQ(v[0], 3) << "records are written in format 3 (flags, then the cgroup id)";
  auto back = DecodeRecordValue(r.ts_ns, v);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->reconstructed);
  EXPECT_EQ(back->proc.cgroup_id, UINT64_MAX);
  EXPECT_EQ(*back, r);
  // Truncated before or inside the flags or the cgroup id: refused.
  for (size_t n = 0; n < v.size(); ++n)
    EXPECT_FALSE(DecodeRecordValue(0, v.substr(0, n)).ok()) << "truncated to " << n;

  r.reconstructed = false;
  r.proc.cgroup_id = 0;
  std::string plain = EncodeRecordValue(r);
  EXPECT_EQ(plain[0], 1) << "neither flags nor a cgroup id: the format a meshd of before reads";
  EXPECT_EQ(plain.size() + 11, v.size()) << "no flags varint (1 byte) and no cgroup id (10)";
  r.reconstructed = true;
  EXPECT_EQ(EncodeRecordValue(r)[0], 2) << "flags only: format 2";
  r.reconstructed = false;
  ASSERT_TRUE(DecodeRecordValue(r.ts_ns, plain).ok());
  EXPECT_FALSE(DecodeRecordValue(r.ts_ns, plain)->reconstructed);
  EXPECT_EQ(DecodeRecordValue(r.ts_ns, plain)->proc.cgroup_id, 0u);
}

// A block's records, read back in order and whole; any truncation is
// malformed, never a crash or a made-up record.
TEST(StoreCodec, RecordBlocksRoundTripAndRefuseDamage) {
  const int64_t t0 = testing::kT0;
  std::vector<ConnRecord> in;
  for (int i = 0; i < 40; ++i) {
    ConnRecord r = MakeRecord(t0 + i * 1'000'000, 100 + i % 5, 40000 + i, 80, i % 2 == 1);
    r.reconstructed = i % 7 == 0;
    r.proc.cgroup_id = i % 3 == 0 ? 0 : 9000 + i;
    in.push_back(r);
  }
  in.back().ts_ns = t0 + kRecordBlockSpanNs;  // the span is inclusive
  std::string block;
  for (const ConnRecord& r : in) AppendToRecordBlock(t0, r, &block);
  std::vector<ConnRecord> out;
  RecordBlockReader reader(t0, block);
  ConnRecord r;
  while (reader.Next(&r)) out.push_back(r);
  EXPECT_FALSE(reader.malformed());
  EXPECT_EQ(out, in);
  EXPECT_EQ(CountRecordBlock(t0, block), in.size());

  for (size_t n = 0; n < block.size(); ++n) {
    std::string cut = block.substr(0, n);
    RecordBlockReader damaged(t0, cut);
    size_t read = 0;
    while (damaged.Next(&r)) ++read;
    // A cut between two records is a shorter block; anywhere else it is refused.
    if (!damaged.malformed()) {
      EXPECT_GT(n, 0u);
      EXPECT_EQ(CountRecordBlock(t0, cut), read);
    } else {
      EXPECT_EQ(CountRecordBlock(t0, cut), 0u) << "cut to " << n;
    }
    EXPECT_LE(read, in.size());
  }
  // One record's value (format 1..3) is not a block.
  RecordBlockReader single(t0, EncodeRecordValue(in[0]));
  EXPECT_FALSE(single.Next(&r));
  EXPECT_TRUE(single.malformed());
  // A length past the end, an offset past the span.
  std::string too_long = block.substr(0, 1) + "\x00\x7f" + block.substr(3, 10);
  RecordBlockReader long_reader(t0, too_long);
  EXPECT_FALSE(long_reader.Next(&r));
  EXPECT_TRUE(long_reader.malformed());
  std::string late;
  ConnRecord past = in[0];
  past.ts_ns = t0 + kRecordBlockSpanNs + 1;
  AppendToRecordBlock(t0, past, &late);
  RecordBlockReader late_reader(t0, late);
  EXPECT_FALSE(late_reader.Next(&r));
  EXPECT_TRUE(late_reader.malformed());
  // A key's time so late that key + offset would overflow (a damaged key).
  RecordBlockReader overflow(INT64_MAX, block);
  EXPECT_TRUE(overflow.Next(&r)) << "offset 0 fits";
  EXPECT_FALSE(overflow.Next(&r));
  EXPECT_TRUE(overflow.malformed());
}

// Random bytes after the block's format byte: the reader stops, never reads
// past the value (ASan watches) and never returns more records than bytes.
TEST(StoreCodec, RecordBlockReaderSurvivesRandomBytes) {
  std::mt19937 rng(17);
  ConnRecord r;
  for (int round = 0; round < 20000; ++round) {
    std::string v(1 + rng() % 200, '\0');
    for (char& c : v) c = static_cast<char>(rng());
    v[0] = 16;
    RecordBlockReader reader(testing::kT0, v);
    size_t n = 0;
    while (reader.Next(&r)) ++n;
    EXPECT_LE(n * 20, v.size());
  }
}

TEST(StoreCodec, RecordsWrittenBeforeFlagsStillDecode) {
  // A format 1 record as meshd wrote it before records had flags, laid out
  // by hand: active, netns 7, 127.0.0.1:40000 -> 127.0.0.1:80, pid 300,
  // start 5, tx 1000, rx 2000, segs 3/4, retrans 0, rtt 50/10, duration 9.
  const std::string old = std::string("\x01\x01\x07", 3) + std::string("\x02\x7f\x00\x00\x01", 5) +
                          std::string("\x9c\x40", 2) + std::string("\x02\x7f\x00\x00\x01", 5) +
                          std::string("\x00\x50", 2) + std::string("\xac\x02\x05", 3) +
                          std::string("\xe8\x07\xd0\x0f\x03\x04\x00\x32\x0a\x09", 10);
  auto r = DecodeRecordValue(testing::kT0, old);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->reconstructed);
  EXPECT_EQ(r->direction, Direction::kActive);
  EXPECT_EQ(r->key.netns, 7u);
  EXPECT_EQ(r->key.lport, 40000);
  EXPECT_EQ(r->key.rport, 80);
  EXPECT_EQ(r->proc.pid, 300u);
  EXPECT_EQ(r->counters.bytes_tx, 1000u);
  EXPECT_EQ(r->counters.bytes_rx, 2000u);
  EXPECT_EQ(r->counters.rtt_us, 50u);
  EXPECT_EQ(r->duration_ns, 9u);
  EXPECT_EQ(r->proc.cgroup_id, 0u);
  // Format 2: the same and a flags varint.
  auto flagged = DecodeRecordValue(testing::kT0, "\x02" + old.substr(1) + "\x01");
  ASSERT_TRUE(flagged.ok()) << flagged.status().message();
  EXPECT_TRUE(flagged->reconstructed);
  EXPECT_EQ(flagged->proc.cgroup_id, 0u);
  EXPECT_FALSE(DecodeRecordValue(testing::kT0, "\x02" + old.substr(1)).ok()) << "flags missing";
  // Rewritten, it is byte for byte the same (no flags, no cgroup id); with
  // a cgroup id it is format 3 with both appended.
  EXPECT_EQ(EncodeRecordValue(*r), old);
  ConnRecord with_cgroup = *r;
  with_cgroup.proc.cgroup_id = 5;
  EXPECT_EQ(EncodeRecordValue(with_cgroup), "\x03" + old.substr(1) + std::string("\x00\x05", 2));
}

TEST(StoreCodec, TypicalRecordIsSmall) {
  ConnRecord r = MakeRecord(testing::kT0, 4242, 40000, 6379);
  r.proc.cgroup_id = 12345;  // cgroupfs inodes are small numbers
  std::string v = EncodeRecordValue(r);
  EXPECT_LE(v.size(), 50u);  // before compression; key adds 12
}

TEST(StoreCodec, RecordDecoderRejectsMalformedValues) {
  std::string good = EncodeRecordValue(MakeRecord(testing::kT0, 4242, 40000, 6379, true));
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_FALSE(DecodeRecordValue(0, good.substr(0, n)).ok()) << "truncated to " << n;
  EXPECT_FALSE(DecodeRecordValue(0, good + '\0').ok()) << "trailing byte";
  std::string wrong_format = good;
  for (char f : {'\x00', '\x04'}) {
    wrong_format[0] = f;
    EXPECT_FALSE(DecodeRecordValue(0, wrong_format).ok()) << int{f};
  }
  std::string wrong_direction = good;
  wrong_direction[1] = 7;
  EXPECT_FALSE(DecodeRecordValue(0, wrong_direction).ok());
  // Laid out by hand: the same record with a pid that does not fit 32 bits.
  auto with_pid = [](uint64_t pid) {
    std::string v(1, '\x01');
    v.push_back(static_cast<char>(Direction::kActive));
    PutVarint(&v, 1);  // netns
    PutAddr(&v, IpAddr::V4(1, 2, 3, 4));
    PutBigEndian16(&v, 1);
    PutAddr(&v, IpAddr::V4(5, 6, 7, 8));
    PutBigEndian16(&v, 2);
    PutVarint(&v, pid);
    for (int i = 0; i < 9; ++i) PutVarint(&v, 0);  // start_ticks, counters, duration
    return v;
  };
  auto ok = DecodeRecordValue(0, with_pid(UINT32_MAX));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->proc.pid, UINT32_MAX);
  EXPECT_FALSE(DecodeRecordValue(0, with_pid(uint64_t{UINT32_MAX} + 1)).ok());
}

TEST(StoreCodec, RandomBytesNeverCrashTheDecoders) {
  std::mt19937 rng(42);
  std::string good = EncodeRecordValue(MakeRecord(testing::kT0, 4242, 40000, 6379));
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string v = good;
    v[rng() % v.size()] = static_cast<char>(rng());
    if (rng() % 4 == 0) v.resize(rng() % (v.size() + 1));
    accepted += DecodeRecordValue(0, v).ok();
    (void)DecodeFlowStats(v);
    (void)DecodeProcessValue({1, 2}, v);
    (void)DecodeEndpointValue({}, v);
    (void)DecodeCount(v);
  }
  EXPECT_LT(accepted, 20000);  // the mutations are noticed at least sometimes

  // The same for values holding a workload, whose strings and bytes give a
  // mutation more to break.
  ProcessDetails p = testing::MakeProcess(77, "nginx");
  p.workload = testing::SamplePodContainer();
  const std::string process = EncodeProcessValue(p, testing::kT0);
  EndpointRecord e = testing::MakeListener(80, 77, testing::kT0);
  e.workload = p.workload;
  const std::string endpoint = EncodeEndpointValue(e);
  const std::string period = EncodeListenPeriodValue({e, 0});
  for (int i = 0; i < 20000; ++i) {
    for (const std::string* good_value : {&process, &endpoint, &period}) {
      std::string v = *good_value;
      v[rng() % v.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) v.resize(rng() % (v.size() + 1));
      (void)DecodeProcessValue({1, 2}, v);
      (void)DecodeEndpointValue({}, v);
      (void)DecodeListenPeriodValue({}, v);
    }
  }
}

TEST(StoreCodec, VarintOverflowIsRejected) {
  std::string eleven(10, '\xff');
  eleven.push_back('\x01');
  size_t pos = 0;
  uint64_t v = 0;
  EXPECT_FALSE(GetVarint(eleven, &pos, &v));
  std::string max;
  PutVarint(&max, UINT64_MAX);
  pos = 0;
  ASSERT_TRUE(GetVarint(max, &pos, &v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_EQ(pos, max.size());
  std::string too_big = max;
  too_big.back() = '\x02';  // bit 64
  pos = 0;
  EXPECT_FALSE(GetVarint(too_big, &pos, &v));
}

TEST(StoreCodec, FlowStatsRoundTrip) {
  FlowStats s{.connections = 3,
              .bytes_tx = 1 << 20,
              .bytes_rx = 5,
              .segs_out = 6,
              .segs_in = 7,
              .retrans = 1,
              .rtt_sum_us = 900,
              .rtt_samples = 3,
              .rtt_max_us = 400,
              .first_seen_ns = testing::kT0,
              .last_seen_ns = testing::kT0 + 5};
  auto back = DecodeFlowStats(EncodeFlowStats(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
  EXPECT_FALSE(DecodeFlowStats(EncodeFlowStats(s) + "x").ok());
  EXPECT_FALSE(DecodeFlowStats("").ok());
}

TEST(StoreCodec, FlowStatsMergeAddsAndKeepsTheWindow) {
  FlowStats a{.connections = 1,
              .bytes_tx = 10,
              .rtt_sum_us = 100,
              .rtt_samples = 1,
              .rtt_max_us = 100,
              .first_seen_ns = 0,
              .last_seen_ns = 50};
  FlowStats b{.connections = 2,
              .bytes_tx = 5,
              .rtt_sum_us = 500,
              .rtt_samples = 2,
              .rtt_max_us = 300,
              .first_seen_ns = 20,
              .last_seen_ns = 40};
  a.Merge(b);
  EXPECT_EQ(a.connections, 3u);
  EXPECT_EQ(a.bytes_tx, 15u);
  EXPECT_EQ(a.rtt_mean_us(), 200u);
  EXPECT_EQ(a.rtt_max_us, 300u);
  EXPECT_EQ(a.first_seen_ns, 20) << "an unset first_seen (0) must not win";
  EXPECT_EQ(a.last_seen_ns, 50);
  FlowStats c{.first_seen_ns = 10};
  a.Merge(c);
  EXPECT_EQ(a.first_seen_ns, 10);
}

// Values written before windows counted open connections end at
// last_seen; they decode with nothing carried, and new values keep theirs.
TEST(StoreCodec, FlowStatsCarriedRoundTripsAndOlderValuesDecode) {
  FlowStats old{.connections = 2, .bytes_tx = 7, .first_seen_ns = 5, .last_seen_ns = 9};
  const std::string old_bytes = EncodeFlowStats(old);
  FlowStats s = old;
  s.carried = 4;
  s.carried_from_ns = testing::kT0;
  const std::string bytes = EncodeFlowStats(s);
  EXPECT_EQ(bytes.size(), old_bytes.size() + 1 + 4) << "carried, then the bucket in minutes";
  auto back = DecodeFlowStats(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
  auto back_old = DecodeFlowStats(old_bytes);
  ASSERT_TRUE(back_old.ok());
  EXPECT_EQ(back_old->carried, 0u);
  EXPECT_EQ(back_old->carried_from_ns, 0);
  EXPECT_FALSE(DecodeFlowStats(old_bytes + "\x04").ok()) << "carried without its bucket";
  // Closes counted: after the bucket, which a value then holds even with
  // nothing carried.
  FlowStats closed = old;
  closed.closed = 3;
  const std::string closed_bytes = EncodeFlowStats(closed);
  EXPECT_EQ(closed_bytes.size(), old_bytes.size() + 1 + 1 + 1);
  auto closed_back = DecodeFlowStats(closed_bytes);
  ASSERT_TRUE(closed_back.ok());
  EXPECT_EQ(*closed_back, closed);
  EXPECT_EQ(DecodeFlowStats(bytes)->closed, 0u) << "a value of before closes were counted";
  EXPECT_FALSE(DecodeFlowStats(closed_bytes + "x").ok());
  EXPECT_FALSE(DecodeFlowStats(closed_bytes.substr(0, closed_bytes.size() - 1) + "\x80").ok())
      << "a truncated varint";
}

// Summed over time a flow keeps the earliest bucket's carried count (the
// connections open when the span began); within one bucket counts add; a
// window's totals (bucket 0) add across flows.
TEST(StoreCodec, FlowStatsMergeKeepsTheEarliestBucketsCarried) {
  const int64_t m = kFlowBucketNs;
  FlowStats later{.carried = 3, .carried_from_ns = testing::kT0 + 2 * m};
  FlowStats earlier{.carried = 1, .carried_from_ns = testing::kT0 + m};
  FlowStats same{.carried = 1, .carried_from_ns = testing::kT0 + m};
  FlowStats sum = later;
  sum.Merge(earlier);
  EXPECT_EQ(sum.carried, 1u);
  EXPECT_EQ(sum.carried_from_ns, testing::kT0 + m);
  sum.Merge(later);
  EXPECT_EQ(sum.carried, 1u) << "order does not matter";
  sum.Merge(same);
  EXPECT_EQ(sum.carried, 2u);
  FlowStats none{.connections = 1};  // a value from before: no bucket
  sum.Merge(none);
  EXPECT_EQ(sum.carried, 2u);
  FlowStats total_a{.connections = 1, .carried = 2}, total_b{.carried = 3};
  total_a.Merge(total_b);
  EXPECT_EQ(total_a.active(), 6u);
}

TEST(StoreCodec, ProcessAndEndpointRoundTrip) {
  ProcessDetails p = testing::MakeProcess(77, "nginx");
  auto sp = DecodeProcessValue({77, 1077}, EncodeProcessValue(p, testing::kT0));
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sp->details, p);
  EXPECT_EQ(sp->last_seen_ns, testing::kT0);
  for (const Workload& w : {testing::SampleUnit(), testing::SamplePodContainer(), Workload{}}) {
    p.cgroup_id = 0x1'0000'0042;
    p.workload = w;
    const std::string v = EncodeProcessValue(p, testing::kT0);
    EXPECT_EQ(v[0], 2) << "processes are written in format 2";
    auto back = DecodeProcessValue({77, 1077}, v);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(back->details, p);
    for (size_t n = 0; n < v.size(); ++n)
      EXPECT_FALSE(DecodeProcessValue({77, 1077}, v.substr(0, n)).ok()) << "truncated to " << n;
    EXPECT_FALSE(DecodeProcessValue({77, 1077}, v + "x").ok());
  }

  EndpointRecord e;
  e.netns = 9;
  e.addr = IpAddr::V4(0, 0, 0, 0);
  e.port = 80;
  e.proc.pid = 77;
  e.proc.start_ticks = 1077;
  e.proc.set_comm("nginx");
  e.since_ns = testing::kT0;
  auto back = DecodeEndpointValue({9, e.addr, 80}, EncodeEndpointValue(e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
  EXPECT_EQ(back->proc.comm_view(), "nginx");
  std::string v = EncodeEndpointValue(e);
  EXPECT_FALSE(DecodeEndpointValue({}, v.substr(0, v.size() - 1)).ok());

  // The owner's cgroup id and workload travel with it (it may be gone from
  // the processes CF when look groups listeners by workload).
  e.proc.cgroup_id = 4242;
  e.workload = testing::SampleUnit();
  v = EncodeEndpointValue(e);
  EXPECT_EQ(v[0], 2) << "endpoints are written in format 2";
  back = DecodeEndpointValue({9, e.addr, 80}, v);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->proc.cgroup_id, 4242u);
  EXPECT_EQ(back->workload, e.workload);
  EXPECT_EQ(back->proc.comm_view(), "nginx");
  for (size_t n = 0; n < v.size(); ++n)
    EXPECT_FALSE(DecodeEndpointValue({}, v.substr(0, n)).ok()) << "truncated to " << n;
}

// Where a process value's workload starts: it is last, and an empty one is
// 8 bytes (kind, four empty strings, user_unit, pod presence, empty cgroup).
size_t WorkloadOffset(const ProcessDetails& p) {
  ProcessDetails bare = p;
  bare.workload = {};
  return EncodeProcessValue(bare, testing::kT0).size() - 8;
}

TEST(StoreCodec, MalformedWorkloadsAreRefused) {
  ProcessDetails p = testing::MakeProcess(77, "nginx");
  p.workload = testing::SamplePodContainer();
  const std::string good = EncodeProcessValue(p, testing::kT0);
  ASSERT_TRUE(DecodeProcessValue({77, 1077}, good).ok());
  const size_t at = WorkloadOffset(p);
  ASSERT_EQ(static_cast<uint8_t>(good[at]), static_cast<uint8_t>(WorkloadKind::kContainer));

  std::string bad_kind = good;
  bad_kind[at] = 3;
  EXPECT_FALSE(DecodeProcessValue({77, 1077}, bad_kind).ok()) << "unknown kind";
  // runtime "containerd": its length, then the bytes; claim more than is there.
  std::string long_string = good;
  long_string[at + 1] = 0x7f;
  EXPECT_FALSE(DecodeProcessValue({77, 1077}, long_string).ok()) << "string past the end";
  // user_unit and pod presence are 0 or 1.
  const Workload& w = p.workload;
  const size_t user_unit =
      at + 1 + 1 + w.runtime.size() + 1 + w.id.size() + 1 + w.name.size() + 1 + w.unit.size();
  ASSERT_EQ(good[user_unit], 0);
  ASSERT_EQ(good[user_unit + 1], 1);
  std::string bad_bool = good;
  bad_bool[user_unit] = 2;
  EXPECT_FALSE(DecodeProcessValue({77, 1077}, bad_bool).ok()) << "user_unit 2";
  bad_bool = good;
  bad_bool[user_unit + 1] = 5;
  EXPECT_FALSE(DecodeProcessValue({77, 1077}, bad_bool).ok()) << "pod presence 5";
  // No pod where the value has one: the pod's strings are left over.
  std::string no_pod = good;
  no_pod[user_unit + 1] = 0;
  EXPECT_FALSE(DecodeProcessValue({77, 1077}, no_pod).ok());

  EndpointRecord e = testing::MakeListener(80, 77, testing::kT0);
  e.workload = w;
  const std::string period = EncodeListenPeriodValue({e, 0});
  for (size_t n = 0; n < period.size(); ++n)
    EXPECT_FALSE(DecodeListenPeriodValue({}, period.substr(0, n)).ok()) << "truncated to " << n;
}

TEST(StoreCodec, CountRoundTrip) {
  auto n = DecodeCount(EncodeCount(123456789));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 123456789u);
  EXPECT_FALSE(DecodeCount("\x80").ok());
}

}  // namespace
}  // namespace flowmesh
