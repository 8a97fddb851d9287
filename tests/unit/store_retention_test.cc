// Store retention: whole minute buckets by age, processes by last use, the
// oldest buckets by size (with the disk space really coming back), and the
// background thread.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <thread>

#include "node/common/clock.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

// `per_minute` records in each of `minutes` buckets from kT0, plus one flow
// delta per bucket.
Batch Minutes(int minutes, int per_minute, std::mt19937* rng = nullptr) {
  Batch b;
  for (int m = 0; m < minutes; ++m) {
    for (int i = 0; i < per_minute; ++i) {
      ConnRecord r = MakeRecord(kT0 + m * kMin + i * (kMin / per_minute), 100 + i % 5,
                                static_cast<uint16_t>(20000 + i), 80);
      if (rng) {  // incompressible counters, so sizes behave like real data
        r.counters.bytes_tx = (*rng)();
        r.counters.bytes_rx = (*rng)();
        r.duration_ns = (*rng)();
      }
      b.records.push_back(r);
    }
    b.flows.push_back(
        {kT0 + m * kMin, MakeFlowKey(100, 80), MakeStats(per_minute, 1, kT0 + m * kMin)});
  }
  return b;
}

TEST(StoreRetention, ByAgeRemovesWholeOldBuckets) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 5 * kMin;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Write(Minutes(10, 20)).ok());
  ASSERT_EQ(store->Stats().records, 200u);

  // now - retention = 05:30, so buckets 00..04 go and 05 (partly younger) stays.
  auto removed = store->EnforceRetention(kT0 + 10 * kMin + 30 * kSec);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 100u);
  StoreStats st = store->Stats();
  EXPECT_EQ(st.records, 100u);
  EXPECT_EQ(st.expired_records, 100u);
  EXPECT_EQ(st.oldest_ns, kT0 + 5 * kMin);
  auto left = ScanAll(*store);
  ASSERT_EQ(left.size(), 100u);
  EXPECT_EQ(left.front().ts_ns, kT0 + 5 * kMin);
  auto flows = store->ReadFlows({});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 100u) << "flows of the expired buckets are gone";

  // Running again at the same time changes nothing; the counts survive reopen.
  removed = store->EnforceRetention(kT0 + 10 * kMin + 30 * kSec);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0u);
  store.reset();
  store = MustOpen(o);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Stats().records, 100u);
  // The 10-minute and hour buckets still hold the expired minutes (they go
  // when all their minutes have); reads must not count them, after a
  // reopen too.
  flows = store->ReadFlows({});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 100u);
}

TEST(StoreRetention, ProcessesGoWhenNothingHasMentionedThemForTheRetention) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 10 * kMin;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  Batch old;
  old.processes = {MakeProcess(1, "old"), MakeProcess(2, "busy")};
  old.records = {MakeRecord(kT0, 1, 40000, 80), MakeRecord(kT0, 2, 40001, 80)};
  ASSERT_TRUE(store->Write(old).ok());
  // Process 2 keeps connecting for hours; it is never re-sent as a "new"
  // process, its records keep it alive.
  for (int h = 1; h <= 3; ++h) {
    Batch b;
    b.records = {MakeRecord(kT0 + h * 60 * kMin, 2, static_cast<uint16_t>(40001 + h), 80)};
    ASSERT_TRUE(store->Write(b).ok());
  }
  ASSERT_TRUE(store->EnforceRetention(kT0 + 3 * 60 * kMin + kMin).ok());
  auto procs = store->Processes();
  ASSERT_TRUE(procs.ok());
  ASSERT_EQ(procs->size(), 1u);
  EXPECT_EQ((*procs)[0].comm, "busy");
  auto recs = ScanAll(*store);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].proc.comm_view(), "busy");
}

TEST(StoreRetention, AProcessStaysWhileAListenPeriodOfItIsKept) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 10 * kMin;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  Batch b;
  b.processes = {MakeProcess(1, "quiet"), MakeProcess(2, "gone"), MakeProcess(3, "old")};
  b.endpoints_added = {MakeListener(80, 1, kT0), MakeListener(81, 2, kT0),
                       MakeListener(82, 3, kT0)};
  ASSERT_TRUE(store->Write(b).ok());
  Batch stop;  // 2 stops late, 3 early; nothing ever connects to any of them
  stop.endpoints_removed = {MakeListener(81, 2, kT0), MakeListener(82, 3, kT0)};
  stop.endpoints_removed[0].until_ns = kT0 + 170 * kMin;
  stop.endpoints_removed[1].until_ns = kT0 + kMin;
  ASSERT_TRUE(store->Write(stop).ok());
  ASSERT_TRUE(store->EnforceRetention(kT0 + 3 * 60 * kMin).ok());
  auto procs = store->Processes();
  ASSERT_TRUE(procs.ok());
  std::vector<std::string> comms;
  for (const ProcessDetails& p : *procs) comms.push_back(p.comm);
  EXPECT_EQ(comms, (std::vector<std::string>{"quiet", "gone"}))
      << "still listening, or listened in the kept time; the early one went";
}

TEST(StoreRetention, BySizeDropsTheOldestBucketsAndFreesTheDisk) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 365LL * 24 * 60 * kMin;
  std::mt19937 rng(7);
  uint64_t full = 0;
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(Minutes(40, 2000, &rng)).ok());
    // Listen periods: one over in the first minute, one still open.
    Batch listen;
    listen.endpoints_added = {MakeListener(80, 1, kT0), MakeListener(81, 2, kT0)};
    ASSERT_TRUE(store->Write(listen).ok());
    Batch stop;
    stop.endpoints_removed = {MakeListener(80, 1, kT0)};
    stop.endpoints_removed[0].until_ns = kT0 + 30 * kSec;
    ASSERT_TRUE(store->Write(stop).ok());
    ASSERT_TRUE(store->CompactAll().ok());
    full = store->Stats().disk_bytes;
    ASSERT_GT(full, 400'000u);
  }
  o.retention_bytes = full / 2;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  auto removed = store->EnforceRetention(kT0 + 40 * kMin);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  StoreStats st = store->Stats();
  EXPECT_LE(st.disk_bytes, o.retention_bytes) << "from " << full;
  EXPECT_GT(st.disk_bytes, o.retention_bytes / 4) << "removed far more than needed";
  EXPECT_GT(*removed, 0u);
  EXPECT_EQ(*removed % 2000, 0u) << "whole buckets";
  EXPECT_EQ(st.records, 80'000u - *removed);
  EXPECT_EQ(ScanAll(*store).size(), st.records);
  EXPECT_EQ(st.oldest_ns, kT0 + static_cast<int64_t>(*removed / 2000) * kMin);
  EXPECT_EQ(ScanAll(*store, {kT0 + 39 * kMin, kT0 + 40 * kMin}).size(), 2000u)
      << "the newest bucket stays";
  // The period that ended in a dropped minute went with it; the open one stays.
  auto periods = store->ListenHistory({});
  ASSERT_TRUE(periods.ok());
  ASSERT_EQ(periods->size(), 1u);
  EXPECT_EQ((*periods)[0].endpoint.port, 81);
}

TEST(StoreRetention, BackgroundThreadExpiresAndStopsPromptly) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 60 * kMin;
  o.retention_interval_ns = 20'000'000;  // 20 ms
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  Batch b;
  const int64_t two_hours_ago = RealtimeNs() - 120 * kMin;
  b.records = {MakeRecord(two_hours_ago, 1, 40000, 80), MakeRecord(RealtimeNs(), 1, 40001, 80)};
  ASSERT_TRUE(store->Write(b).ok());
  for (int i = 0; i < 250 && store->Stats().records != 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(store->Stats().records, 1u);
  EXPECT_EQ(store->Stats().expired_records, 1u);

  // A long interval must not delay shutdown.
  o.dir = dir.sub("other");
  o.retention_interval_ns = 3600 * kSec;
  auto idle = MustOpen(o);
  ASSERT_TRUE(idle);
  auto start = std::chrono::steady_clock::now();
  idle.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace flowmesh
