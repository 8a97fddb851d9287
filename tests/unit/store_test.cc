// Store: writes, windowed scans and filters, processes, endpoints, node
// identity, reopen, idempotent rewrites, exact counts, open errors, read-only
// stores and malformed values on disk. Flows: store_flows_test.cc.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "node/store/keys.h"
#include "node/store/merge_operators.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

// 12 records, one every 10 s from kT0 (two minute buckets), pids 100..102.
Batch TwelveRecords() {
  Batch b;
  for (int i = 0; i < 12; ++i)
    b.records.push_back(MakeRecord(kT0 + i * 10 * kSec, 100 + i % 3, 40000 + i, 80 + i % 2));
  b.processes = {MakeProcess(100, "curl"), MakeProcess(101, "wget")};  // 102 unknown
  return b;
}

// A batch the flusher writes again after a failure may hold records the store
// already has: they are rewritten, not counted again.
TEST(Store, ARetriedBatchCountsOnlyTheRecordsItAdds) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Write(TwelveRecords()).ok());
  Batch again = TwelveRecords();
  again.retried = true;
  again.records.push_back(MakeRecord(kT0 + 200 * kSec, 100, 41000, 80));
  ASSERT_TRUE(store->Write(again).ok());
  EXPECT_EQ(store->Stats().records, 13u);
  EXPECT_EQ(ScanAll(*store).size(), 13u);
}

TEST(Store, ScanReturnsTheWindowOldestFirstWithComm) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Write(TwelveRecords()).ok());

  auto all = ScanAll(*store);
  ASSERT_EQ(all.size(), 12u);
  for (size_t i = 0; i < all.size(); ++i) {
    ConnRecord want = MakeRecord(kT0 + i * 10 * kSec, 100 + i % 3, 40000 + i, 80 + i % 2);
    EXPECT_EQ(all[i].ts_ns, want.ts_ns);
    EXPECT_EQ(all[i].key, want.key);
    EXPECT_EQ(all[i].counters, want.counters);
    const char* comm = i % 3 == 0 ? "curl" : i % 3 == 1 ? "wget" : "";
    EXPECT_EQ(all[i].proc.comm_view(), comm) << "record " << i;
  }

  // Both ends inclusive.
  auto window = ScanAll(*store, {kT0 + 30 * kSec, kT0 + 60 * kSec});
  ASSERT_EQ(window.size(), 4u);
  EXPECT_EQ(window.front().ts_ns, kT0 + 30 * kSec);
  EXPECT_EQ(window.back().ts_ns, kT0 + 60 * kSec);
  EXPECT_EQ(ScanAll(*store, {kT0 + 31 * kSec, kT0 + 39 * kSec}).size(), 0u);
  EXPECT_EQ(ScanAll(*store, {kT0 + 200 * kSec, kT0 + 100 * kSec}).size(), 0u) << "empty window";
  EXPECT_EQ(ScanAll(*store, {0, kT0}).size(), 1u);

  int seen = 0;
  ASSERT_TRUE(store->ScanRecords({}, {}, [&](const ConnRecord&) { return ++seen < 5; }).ok());
  EXPECT_EQ(seen, 5) << "returning false stops the scan";
}

TEST(Store, ScanFilters) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  Batch b = TwelveRecords();
  b.records.push_back(MakeRecord(kT0 + 5 * kSec, 100, 50000, 443, /*v6=*/true));
  ASSERT_TRUE(store->Write(b).ok());

  auto filter = [](uint32_t pid, uint16_t family, std::vector<uint16_t> lports,
                   std::vector<uint16_t> rports) {
    RecordFilter f;
    f.pid = pid;
    f.family = family;
    f.lports = std::move(lports);
    f.rports = std::move(rports);
    return f;
  };
  auto r = ScanAll(*store, {}, filter(101, 0, {}, {}));
  EXPECT_EQ(r.size(), 4u);
  for (const auto& rec : r) EXPECT_EQ(rec.proc.pid, 101u);

  r = ScanAll(*store, {}, filter(0, AF_INET6, {}, {}));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].key.rport, 443);
  EXPECT_EQ(ScanAll(*store, {}, filter(0, AF_INET, {}, {})).size(), 12u);

  EXPECT_EQ(ScanAll(*store, {}, filter(0, 0, {}, {81})).size(), 6u);
  EXPECT_EQ(ScanAll(*store, {}, filter(0, 0, {40000, 40005, 50000}, {})).size(), 3u);
  EXPECT_EQ(ScanAll(*store, {}, filter(100, 0, {}, {81})).size(), 2u);
}

TEST(Store, ProcessesAreStoredAndLookedUp) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  Batch b;
  b.processes = {MakeProcess(100, "curl"), MakeProcess(7, "nginx")};
  ASSERT_TRUE(store->Write(b).ok());
  auto p = store->Process(7, 1007);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(p->has_value());
  EXPECT_EQ(**p, MakeProcess(7, "nginx"));
  auto missing = store->Process(7, 1);  // same pid, other start time: another process
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto all = store->Processes();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].pid, 7u);  // key order: pid

  // A changed process (exec) replaces the stored details, and records read
  // back with the new comm.
  Batch exec;
  exec.processes = {MakeProcess(100, "python3")};
  exec.records = {MakeRecord(kT0, 100, 40000, 80)};
  ASSERT_TRUE(store->Write(exec).ok());
  auto r = ScanAll(*store);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].proc.comm_view(), "python3");
}

TEST(Store, CommOfAProcessLearnedLaterIsFound) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  Batch b;
  b.records = {MakeRecord(kT0, 300, 40000, 80)};
  ASSERT_TRUE(store->Write(b).ok());
  EXPECT_EQ(ScanAll(*store)[0].proc.comm_view(), "");  // unknown, and cached as such
  Batch later;
  later.processes = {MakeProcess(300, "psql")};
  ASSERT_TRUE(store->Write(later).ok());
  EXPECT_EQ(ScanAll(*store)[0].proc.comm_view(), "psql");
}

EndpointRecord Listener(uint16_t port, uint32_t pid, int64_t since) {
  return MakeListener(port, pid, since);
}

TEST(Store, EndpointsFollowListenAndClose) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->ReplaceEndpoints({Listener(80, 1, kT0), Listener(22, 2, kT0)}).ok());
  auto eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 2u);
  EXPECT_EQ((*eps)[0], Listener(22, 2, kT0));
  EXPECT_EQ((*eps)[0].proc.comm_view(), "srv2");

  // Start-up replaces the table entirely.
  ASSERT_TRUE(store->ReplaceEndpoints({Listener(443, 3, kT0)}).ok());
  eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].port, 443);

  Batch b;
  b.endpoints_added = {Listener(6379, 4, kT0 + kSec)};
  b.endpoints_removed = {Listener(443, 3, kT0)};
  ASSERT_TRUE(store->Write(b).ok());
  eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0], Listener(6379, 4, kT0 + kSec));

  // Restarted within one flush: the newer listen survives the old one's removal...
  Batch restart;
  restart.endpoints_removed = {Listener(6379, 4, kT0 + kSec)};
  restart.endpoints_added = {Listener(6379, 5, kT0 + 2 * kSec)};
  ASSERT_TRUE(store->Write(restart).ok());
  eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].proc.pid, 5u);
  // ...while a listener that came and went within one flush is gone.
  Batch blip;
  blip.endpoints_added = {Listener(8080, 6, kT0 + 3 * kSec)};
  blip.endpoints_removed = {Listener(8080, 6, kT0 + 3 * kSec)};
  ASSERT_TRUE(store->Write(blip).ok());
  eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  EXPECT_EQ(eps->size(), 1u);
}

TEST(Store, NodeIdIsStableAndGenerationGrowsOnEveryOpen) {
  TempDir dir;
  std::string id;
  for (uint64_t gen = 1; gen <= 3; ++gen) {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    EXPECT_EQ(store->meta().generation, gen);
    EXPECT_EQ(store->meta().node_id.size(), 32u);
    EXPECT_EQ(store->meta().node_id.find_first_not_of("0123456789abcdef"), std::string::npos);
    if (gen == 1) id = store->meta().node_id;
    EXPECT_EQ(store->meta().node_id, id);
    if (gen == 1) {
      ASSERT_TRUE(store->PutMeta("peers", "10.0.0.1:7946").ok());
    }
    auto v = store->GetMeta("peers");
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE(v->has_value());
    EXPECT_EQ(**v, "10.0.0.1:7946");
    auto none = store->GetMeta("generation");  // user keys cannot reach the store's own
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
  }
  TempDir other;
  auto store = MustOpen(TestOptions(other.path()));
  ASSERT_TRUE(store);
  EXPECT_NE(store->meta().node_id, id);
}

TEST(Store, ReopenKeepsEverything) {
  TempDir dir;
  Batch b = TwelveRecords();
  b.flows = {{kT0, MakeFlowKey(100, 80), MakeStats(12, 1200, kT0)}};
  b.endpoints_added = {Listener(80, 7, kT0)};
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(b).ok());
  }
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  auto all = ScanAll(*store);
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all[0].proc.comm_view(), "curl");
  EXPECT_EQ(store->Stats().records, 12u);
  auto flows = store->ReadFlows({});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 12u);
  auto eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  EXPECT_EQ(eps->size(), 1u);
  auto procs = store->Processes();
  ASSERT_TRUE(procs.ok());
  EXPECT_EQ(procs->size(), 2u);
}

TEST(Store, RewritingTheSameRecordsIsIdempotent) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  Batch b = TwelveRecords();
  ASSERT_TRUE(store->Write(b).ok());
  b.retried = true;  // as the flusher marks a batch it writes again
  ASSERT_TRUE(store->Write(b).ok());
  b.records.push_back(b.records[3]);  // a duplicate inside one batch
  ASSERT_TRUE(store->Write(b).ok());
  EXPECT_EQ(ScanAll(*store).size(), 12u);
  EXPECT_EQ(store->Stats().records, 12u);
  ASSERT_TRUE(store->CompactAll().ok());  // the memtable is not what hides duplicates
  ASSERT_TRUE(store->Write(b).ok());
  EXPECT_EQ(ScanAll(*store).size(), 12u);
  EXPECT_EQ(store->Stats().records, 12u);

  // Two connections closing in the same nanosecond are two records.
  Batch same_ns;
  same_ns.records = {MakeRecord(kT0 + 1, 1, 40000, 80), MakeRecord(kT0 + 1, 1, 40001, 80)};
  ASSERT_TRUE(store->Write(same_ns).ok());
  EXPECT_EQ(store->Stats().records, 14u);
}

// Records go to disk in blocks (keys.h): a run of at most kMaxRecordsPerBlock,
// within one flow bucket and kRecordBlockSpanNs. Each window still gets
// exactly its records, oldest first, whatever order the batch had.
TEST(Store, RecordsAreStoredInBlocksAndEveryWindowIsExact) {
  TempDir dir;
  std::vector<ConnRecord> want;
  Batch late;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    // 1000 records 100 us apart across the minute at kT0 + 60 s, shuffled.
    const int64_t start = kT0 + kMin - 50'000'000;
    for (int i = 0; i < 1000; ++i)
      want.push_back(MakeRecord(start + i * 100'000, 100 + i % 3, 20000 + i, 80 + i % 2));
    Batch b;
    b.records = want;
    std::mt19937 rng(5);
    std::shuffle(b.records.begin(), b.records.end(), rng);
    ASSERT_TRUE(store->Write(b).ok());
    // A later batch with one record older than the newest of the first.
    late.records = {MakeRecord(start + 999 * 100'000 - 50'000, 7, 19999, 80),
                    MakeRecord(start + 2 * kSec, 7, 19998, 80)};
    ASSERT_TRUE(store->Write(late).ok());
    want.insert(want.end(), late.records.begin(), late.records.end());
    std::stable_sort(want.begin(), want.end(),
                     [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });

    EXPECT_EQ(store->Stats().records, want.size());
    auto all = ScanAll(*store);
    ASSERT_EQ(all.size(), want.size());
    // Oldest first, but for the late record: its flush's block comes after
    // the first batch's last one (store.h).
    const auto late_at = std::find_if(
        all.begin(), all.end(), [&](const ConnRecord& r) { return r.key == late.records[0].key; });
    ASSERT_NE(late_at, all.end());
    EXPECT_EQ(late_at - all.begin(), 1000);
    std::vector<ConnRecord> in_order = all;
    std::stable_sort(in_order.begin(), in_order.end(),
                     [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(in_order[i].ts_ns, want[i].ts_ns) << i;
      EXPECT_EQ(in_order[i].key, want[i].key) << i;
    }
    all.erase(late_at);
    EXPECT_TRUE(std::is_sorted(all.begin(), all.end(),
                               [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; }));
    // Windows that begin and end inside blocks, and across the bucket.
    for (auto [from, to] :
         {std::pair{300, 700}, {0, 0}, {255, 256}, {499, 500}, {1000, 1001}, {1, 998}}) {
      const TimeWindow w{want[from].ts_ns, want[to].ts_ns};
      auto got = ScanAll(*store, w);
      ASSERT_EQ(got.size(), static_cast<size_t>(to - from + 1)) << from << ".." << to;
      EXPECT_EQ(got.front().ts_ns, want[from].ts_ns);
      EXPECT_EQ(got.back().ts_ns, want[to].ts_ns);
    }
    EXPECT_EQ(ScanAll(*store, {want.back().ts_ns + 1, want.back().ts_ns + kSec}).size(), 0u);
    EXPECT_EQ(store->Stats().corrupt_values, 0u);
  }
  // On disk: the first batch's two half-minutes are 500 records each, two
  // blocks each (256 + 244); the late batch is two blocks.
  RawStore raw(dir.path());
  std::unique_ptr<rocksdb::Iterator> it(raw.db().NewIterator({}, raw.cf("records")));
  size_t keys = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++keys;
    EXPECT_EQ(it->key().size(), kRecordBlockKeySize);
  }
  EXPECT_EQ(keys, 6u);
}

TEST(Store, StatsCountRecordsExactly) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  StoreStats st = store->Stats();
  EXPECT_EQ(st.records, 0u);
  EXPECT_EQ(st.oldest_ns, 0);
  EXPECT_EQ(st.dir, dir.path());
  uint64_t want = 0;
  for (int batch = 0; batch < 5; ++batch) {
    Batch b;
    for (int i = 0; i < 300; ++i)
      b.records.push_back(
          MakeRecord(kT0 + (batch * 300 + i) * kSec / 3, 100 + i % 7, 30000 + i, 80));
    want += b.records.size();
    ASSERT_TRUE(store->Write(b).ok());
  }
  st = store->Stats();
  EXPECT_EQ(st.records, want);
  EXPECT_EQ(st.batches, 5u);
  EXPECT_EQ(st.oldest_ns, kT0);
  EXPECT_GT(st.disk_bytes, 0u);
  EXPECT_EQ(st.write_errors, 0u);
  EXPECT_EQ(st.last_error, "");
  EXPECT_EQ(ScanAll(*store).size(), want);
}

TEST(Store, OpenFailuresSayWhereAndWhatToDo) {
  TempDir dir;
  std::ofstream(dir.sub("file")) << "not a directory";
  auto bad = Store::Open(TestOptions(dir.sub("file")));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir.sub("file")), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("--data-dir"), std::string::npos);

  auto first = MustOpen(TestOptions(dir.sub("db")));
  ASSERT_TRUE(first);
  auto second = Store::Open(TestOptions(dir.sub("db")));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another meshd"), std::string::npos)
      << second.status().message();

  EXPECT_FALSE(Store::Open(TestOptions("")).ok());
}

TEST(Store, ReadOnlyAnswersQueriesAndRefusesWritesWithACount) {
  TempDir dir;
  NodeMeta first;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(TwelveRecords()).ok());
    first = store->meta();
  }
  StoreOptions o = TestOptions(dir.path());
  o.read_only = true;
  o.retention_ns = kMin;  // would expire everything, if it could
  {
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    EXPECT_EQ(store->meta().node_id, first.node_id);
    EXPECT_EQ(store->meta().generation, first.generation + 1);
    EXPECT_EQ(ScanAll(*store).size(), 12u);
    EXPECT_EQ(ScanAll(*store)[0].proc.comm_view(), "curl");
    Status s = store->Write(TwelveRecords());
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find(dir.path()), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("queries answer from what is stored"), std::string::npos);
    EXPECT_FALSE(store->ReplaceEndpoints({}).ok());
    EXPECT_FALSE(store->PutMeta("k", "v").ok());
    auto removed = store->EnforceRetention(kT0 + 60 * kMin);
    ASSERT_TRUE(removed.ok());
    EXPECT_EQ(*removed, 0u);
    StoreStats st = store->Stats();
    EXPECT_TRUE(st.read_only);
    EXPECT_EQ(st.write_errors, 3u);
    EXPECT_EQ(st.last_error, "store write refused in " + dir.path() +
                                 ": opened read-only; queries answer from what is stored");
    EXPECT_EQ(st.records, 12u);
  }
  // Nothing was written: the generation was not used up.
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  EXPECT_EQ(store->meta().generation, first.generation + 1);
  EXPECT_FALSE(store->Stats().read_only);
}

TEST(Store, MalformedValuesOnDiskAreSkippedAndCounted) {
  TempDir dir;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->Write(TwelveRecords()).ok());
  }
  {  // Damage one record and add a key of the wrong length, behind the store's back.
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir.path(), &names).ok());
    // With the store's merge operators: RocksDB drops pending merge operands
    // when a column family is reopened without one.
    auto corrupt = std::make_shared<std::atomic<uint64_t>>(0);
    for (const auto& n : names) {
      rocksdb::ColumnFamilyOptions o;
      if (n == "flows") o.merge_operator = MakeFlowStatsMerge(corrupt);
      if (n == "meta") o.merge_operator = MakeCountMerge(corrupt);
      cfs.emplace_back(n, o);
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open({}, dir.path(), cfs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    auto records = std::find_if(handles.begin(), handles.end(),
                                [](auto* h) { return h->GetName() == "records"; });
    ASSERT_NE(records, handles.end());
    ConnRecord r = MakeRecord(kT0 + 30 * kSec, 100, 40003, 81);
    // Over the block that holds r (alone: the records are 10 s apart).
    ASSERT_TRUE(db->Put({}, *records, RecordBlockKey(r.ts_ns, r.key), "\x10garbage").ok());
    ASSERT_TRUE(db->Put({}, *records, RecordKeyAt(kT0 + 31 * kSec), "short key").ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  auto all = ScanAll(*store);
  EXPECT_EQ(all.size(), 11u);
  EXPECT_EQ(store->Stats().corrupt_values, 2u);
  EXPECT_EQ(store->Stats().records, 12u) << "counts are of what was written";
}

}  // namespace
}  // namespace flowmesh
