// The store's memory budget as RocksDB itself reports it: the options in
// effect on a real database on disk, and its memtables and cache while more
// than the budget is written.
#include <gtest/gtest.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <thread>

#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

const rocksdb::BlockBasedTableOptions* TableOptions(const rocksdb::ColumnFamilyOptions& o) {
  return o.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
}

// Memtables of every family at once, as RocksDB counts them: active,
// waiting to flush and flushed but still read.
uint64_t MemtableBytes(const Store::Rocks& r) {
  uint64_t total = 0;
  for (auto* h : r.families) {
    uint64_t v = 0;
    EXPECT_TRUE(r.db->GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &v));
    total += v;
  }
  return total;
}

// The most memtable memory the families' own limits allow: write_buffer_size
// each, max_write_buffer_number of them before writes stop, and the arena
// block a memtable may overrun its size by (an eighth).
uint64_t MemtableCeiling(const Store::Rocks& r) {
  uint64_t total = 0;
  for (auto* h : r.families) {
    rocksdb::ColumnFamilyOptions o = r.db->GetOptions(h);
    total += o.max_write_buffer_number * (o.write_buffer_size + o.write_buffer_size / 8);
  }
  return total;
}

bool FlushesSettled(const Store::Rocks& r) {
  for (auto* h : r.families) {
    uint64_t pending = 0, running = 0;
    r.db->GetIntProperty(h, rocksdb::DB::Properties::kMemTableFlushPending, &pending);
    r.db->GetIntProperty(h, rocksdb::DB::Properties::kNumRunningFlushes, &running);
    if (pending != 0 || running != 0) return false;
  }
  return true;
}

TEST(StoreMemory, TheOptionsInEffectBoundTheMemoryByTheBudget) {
  TempDir dir;
  StoreOptions so = TestOptions(dir.path());
  so.memory_bytes = 24ULL << 20;  // not the default: the options follow the budget
  auto store = MustOpen(so);
  ASSERT_TRUE(store);
  Store::Rocks r = store->rocks();
  ASSERT_EQ(r.families.size(), 7u) << "records, flows, processes, endpoints, meta, listen "
                                      "history, default";

  const rocksdb::DBOptions db = r.db->GetDBOptions();
  ASSERT_TRUE(db.write_buffer_manager);
  const rocksdb::WriteBufferManager& wbm = *db.write_buffer_manager;
  EXPECT_TRUE(wbm.enabled());
  EXPECT_EQ(wbm.buffer_size(), so.memory_bytes / 2);
  EXPECT_TRUE(wbm.cost_to_cache()) << "memtables are charged to the block cache";
  EXPECT_GT(db.max_open_files, 0) << "unbounded (-1) keeps every table reader open";
  EXPECT_LE(db.max_open_files, 128);

  std::shared_ptr<rocksdb::Cache> cache;
  uint64_t ceiling = 0;
  for (auto* h : r.families) {
    SCOPED_TRACE(h->GetName());
    rocksdb::ColumnFamilyOptions o = r.db->GetOptions(h);
    const rocksdb::BlockBasedTableOptions* t = TableOptions(o);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(t->block_cache);
    if (!cache) cache = t->block_cache;
    EXPECT_EQ(t->block_cache.get(), cache.get()) << "one cache for every family";
    EXPECT_TRUE(t->cache_index_and_filter_blocks) << "index blocks are charged to the cache";
    EXPECT_TRUE(t->pin_l0_filter_and_index_blocks_in_cache);
    EXPECT_LE(o.max_write_buffer_number, 2);
    EXPECT_LE(o.write_buffer_size, so.memory_bytes / 4);
    ceiling += o.max_write_buffer_number * o.write_buffer_size;
  }
  EXPECT_EQ(cache->GetCapacity(), so.memory_bytes);
  EXPECT_FALSE(cache->HasStrictCapacityLimit()) << "a full cache must not fail a query";
  EXPECT_LE(ceiling, so.memory_bytes) << "every family's buffers full at once fit the budget";

  // The write buffer manager reserves what memtables hold in that same cache.
  const size_t usage_before = cache->GetUsage();
  const size_t reserved_before = wbm.dummy_entries_in_cache_usage();
  Batch b;
  for (int i = 0; i < 5000; ++i) b.records.push_back(MakeRecord(kT0 + i * kSec, 100, 40000, 80));
  ASSERT_TRUE(store->Write(b).ok());
  const size_t reserved = wbm.dummy_entries_in_cache_usage();
  EXPECT_GT(reserved, reserved_before);
  EXPECT_GE(cache->GetUsage() - usage_before, reserved - reserved_before);

  StoreStats st = store->Stats();
  EXPECT_EQ(st.memory_limit_bytes, so.memory_bytes);
  EXPECT_EQ(st.memtable_bytes, MemtableBytes(r));
  EXPECT_GT(st.memtable_bytes, 0u);
}

TEST(StoreMemory, WritingThreeBudgetsOfRecordsStaysWithinTheBound) {
  TempDir dir;
  StoreOptions so = TestOptions(dir.path());
  so.memory_bytes = kMinStoreMemoryBytes;
  auto store = MustOpen(so);
  ASSERT_TRUE(store);
  Store::Rocks r = store->rocks();
  const uint64_t ceiling = MemtableCeiling(r);
  const rocksdb::WriteBufferManager& wbm = *r.db->GetDBOptions().write_buffer_manager;
  std::shared_ptr<rocksdb::Cache> cache =
      TableOptions(r.db->GetOptions(r.families[0]))->block_cache;

  // 2,000 records a batch, as a flush of a busy node; about 100 bytes each in
  // a memtable, so 3 x 4 MB after 60 batches.
  constexpr int kBatches = 60, kPerBatch = 2000;
  uint64_t peak = 0;
  for (int n = 0; n < kBatches; ++n) {
    Batch b;
    for (int i = 0; i < kPerBatch; ++i)
      b.records.push_back(MakeRecord(kT0 + (n * kPerBatch + i) * 1'000'000LL, 100 + i % 50,
                                     static_cast<uint16_t>(30000 + i), 80));
    ASSERT_TRUE(store->Write(b).ok()) << "batch " << n;
    const uint64_t now = MemtableBytes(r);
    peak = std::max(peak, now);
    ASSERT_LE(now, ceiling) << "batch " << n;
  }
  EXPECT_GT(peak, wbm.buffer_size() / 4) << "the batches reached the memtables";

  // Once RocksDB has flushed what it scheduled, the memtables are back under
  // the write buffer manager's size and the cache within its capacity.
  for (int i = 0; i < 2000 && !FlushesSettled(r); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(FlushesSettled(r));
  EXPECT_LE(MemtableBytes(r), wbm.buffer_size());
  EXPECT_LE(wbm.memory_usage(), wbm.buffer_size());
  EXPECT_LE(cache->GetUsage(), cache->GetCapacity());

  StoreStats st = store->Stats();
  EXPECT_GE(st.memtable_flushes, 2u) << "a 1 MB records buffer flushes several times";
  EXPECT_LE(st.memtable_bytes + st.block_cache_bytes, st.memory_limit_bytes);
  EXPECT_EQ(st.records, uint64_t{kBatches} * kPerBatch) << "nothing lost to the bound";
  EXPECT_EQ(ScanAll(*store).size(), uint64_t{kBatches} * kPerBatch);
}

// After an interval without a batch the background thread flushes the
// memtables and drops the blocks no reader holds (L0's pinned index stays).
TEST(StoreMemory, AnIdleStoreGivesItsMemtablesAndCachedBlocksBack) {
  TempDir dir;
  StoreOptions so = TestOptions(dir.path());
  so.retention_interval_ns = 50'000'000;
  so.retention_ns = std::numeric_limits<int64_t>::max();  // kT0 is years ago
  so.retention_bytes = 0;
  auto store = MustOpen(so);
  ASSERT_TRUE(store);
  Batch b;
  for (int i = 0; i < 20000; ++i)
    b.records.push_back(MakeRecord(kT0 + i * 1'000'000LL, 100 + i % 50, 30000 + i % 20000, 80));
  ASSERT_TRUE(store->Write(b).ok());
  const StoreStats busy = store->Stats();
  ASSERT_GT(busy.memtable_bytes, 1u << 20) << "20,000 records wait in the records memtable";

  StoreStats idle = store->Stats();
  for (int i = 0; i < 2000 && idle.memtable_bytes > (256u << 10); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    idle = store->Stats();
  }
  EXPECT_LT(idle.memtable_bytes, 256u << 10) << "from " << busy.memtable_bytes;
  EXPECT_GT(idle.memtable_flushes, busy.memtable_flushes);

  // A read fills the cache; the next idle interval empties it again. The
  // release runs every 50 ms, during the scan too (a scan under ASan takes
  // longer than that): what the cache held is read as the scan goes, and
  // its most counts.
  uint64_t read = 0;
  size_t scanned = 0;
  Status scan = store->ScanRecords({}, {}, [&](const ConnRecord&) {
    if (++scanned % 500 == 0) read = std::max(read, store->Stats().block_cache_bytes);
    return true;
  });
  ASSERT_TRUE(scan.ok()) << scan.message();
  ASSERT_EQ(scanned, 20000u);
  read = std::max(read, store->Stats().block_cache_bytes);
  ASSERT_GT(read, 64u << 10);
  uint64_t cached = read;
  for (int i = 0; i < 2000 && cached >= (64u << 10); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    cached = store->Stats().block_cache_bytes;
  }
  EXPECT_LT(cached, 64u << 10) << "from " << read;
  EXPECT_EQ(ScanAll(*store).size(), 20000u);
}

TEST(StoreMemory, ABudgetBelowTheFloorIsRefusedWithTheFlag) {
  TempDir dir;
  StoreOptions so = TestOptions(dir.path());
  so.memory_bytes = 1 << 20;
  auto s = Store::Open(so);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.status().message().find("--store-memory"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("4M"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace flowmesh
