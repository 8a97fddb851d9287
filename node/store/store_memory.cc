// RocksDB's memory under one budget: one LRU block cache of the budget's
// size, every memtable charged to it through one WriteBufferManager, index
// blocks held in it, so the budget bounds memtables and blocks together.
#include "node/store/store_memory.h"

#include <rocksdb/table.h>

#include <string>

namespace flowmesh {
namespace {

// Open SST files: each keeps a table reader (about 2 KB once its index
// lives in the cache) and a descriptor. A compacted store of 10M records
// (387 MB) is 9 files, so one at the default 2 GB retention about 50; past
// this many, the least recently used file is closed and opened again when
// read.
constexpr int kMaxOpenFiles = 128;
// Few shards: RocksDB's default splits the cache into 512 KB shards (32 for
// 16 MB), each evicting on its own, and each memtable reservation takes
// 256 KB of one shard. meshd reads from a handful of threads.
constexpr int kCacheShardBits = 2;
// An idle store flushes a memtable from this size (Release).
constexpr uint64_t kReleaseMemtableBytes = 256 << 10;

}  // namespace

void RocksEvents::OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) {
  flushes_.fetch_add(1, std::memory_order_relaxed);
}

void RocksEvents::OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) {
  if (info.condition.cur != rocksdb::WriteStallCondition::kNormal &&
      info.condition.prev == rocksdb::WriteStallCondition::kNormal)
    stalls_.fetch_add(1, std::memory_order_relaxed);
}

RocksMemory::RocksMemory(uint64_t budget_bytes)
    : budget_(budget_bytes), events_(std::make_shared<RocksEvents>()) {
  rocksdb::LRUCacheOptions co;
  co.capacity = budget_;
  co.num_shard_bits = kCacheShardBits;
  // Not strict: with a strict limit an insert that does not fit fails, so a
  // query that needs one more block than fits errors out ("Insert failed due
  // to LRU cache being full") instead of going over by a block, and the
  // memtables' reservations ignore the failure anyway. Memtables are bounded
  // by their own sizes below; pinned index blocks of L0 are few.
  co.strict_capacity_limit = false;
  cache_ = rocksdb::NewLRUCache(co);
  // Half the budget for memtables: past 7/8 of it RocksDB flushes the oldest
  // memtable; their memory is reserved in the cache, which evicts blocks to
  // make room. No stall on it (allow_stall false): a write never waits for
  // the budget, only for the per-family limits below.
  write_buffers_ = std::make_shared<rocksdb::WriteBufferManager>(budget_ / 2, cache_, false);
}

void RocksMemory::Apply(rocksdb::DBOptions* db) const {
  db->write_buffer_manager = write_buffers_;
  db->max_open_files = kMaxOpenFiles;
  db->listeners.push_back(events_);
}

rocksdb::ColumnFamilyOptions RocksMemory::ColumnFamily(ColumnFamilyKind kind) const {
  // Records take most writes (one per close), flows one merge per flow and
  // flush; the rest a few per process or listener. Two buffers each (one
  // filling while the other flushes): at most 2/4 + 2/8 + 5 x 2/64 of the
  // budget (0.91) even if the write buffer manager never stepped in.
  size_t write_buffer = budget_ / 64;
  size_t block_size = 4 << 10;
  if (kind == ColumnFamilyKind::kRecords) {
    write_buffer = budget_ / 4;
    block_size = 16 << 10;
  } else if (kind == ColumnFamilyKind::kFlows) {
    write_buffer = budget_ / 8;
    block_size = 16 << 10;
  }
  rocksdb::ColumnFamilyOptions o;
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = cache_;
  t.block_size = block_size;
  // Index blocks in the cache, charged to the budget, instead of on the heap
  // for as long as the file is open. L0's stay pinned: those files are read
  // by every query of recent data and are few.
  t.cache_index_and_filter_blocks = true;
  t.cache_index_and_filter_blocks_with_high_priority = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  // LZ4 is cheap while data moves through the upper levels; the bottommost
  // level holds nearly everything after compaction, and ZSTD is what keeps a
  // record well under 100 bytes there.
  o.compression = rocksdb::kLZ4Compression;
  o.bottommost_compression = rocksdb::kZSTD;
  o.level_compaction_dynamic_level_bytes = true;
  o.write_buffer_size = write_buffer;
  o.max_write_buffer_number = 2;
  return o;
}

void RocksMemory::Release(rocksdb::DB& db,
                          const std::vector<rocksdb::ColumnFamilyHandle*>& handles) const {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;  // nothing is being written; never hold up one that comes
  for (auto* h : handles) {
    uint64_t bytes = 0;
    // Not the few bytes of a meta stamp: a file a minute would keep
    // compactions running on an idle node.
    if (db.GetIntProperty(h, rocksdb::DB::Properties::kCurSizeAllMemTables, &bytes) &&
        bytes >= kReleaseMemtableBytes)
      (void)db.Flush(fo, h);
  }
  cache_->EraseUnRefEntries();
}

void RocksMemory::Fill(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                       StoreStats* st) const {
  auto sum = [&](const std::string& property) {
    uint64_t total = 0;
    for (auto* h : handles) {
      uint64_t v = 0;
      if (db.GetIntProperty(h, property, &v)) total += v;
    }
    return total;
  };
  st->memory_limit_bytes = budget_;
  st->memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  st->table_readers_bytes = sum(rocksdb::DB::Properties::kEstimateTableReadersMem);
  // The cache also holds the memtables' reservations; those are counted above.
  const size_t reserved = write_buffers_->dummy_entries_in_cache_usage();
  const size_t used = cache_->GetUsage();
  st->block_cache_bytes = used > reserved ? used - reserved : 0;
  st->memtable_flushes = events_->flushes();
  st->write_stalls = events_->stalls();
}

}  // namespace flowmesh
