// RocksDB's memory under one budget (StoreOptions::memory_bytes): the
// options every column family shares and what each part uses now. Not for
// other modules.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/write_buffer_manager.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "node/store/store_types.h"

namespace flowmesh {

enum class ColumnFamilyKind { kRecords, kFlows, kSmall };

// Counts what RocksDB reports about flushes and write stalls (a stall holds
// up the flusher, and with it every record behind it).
class RocksEvents : public rocksdb::EventListener {
 public:
  void OnFlushCompleted(rocksdb::DB*, const rocksdb::FlushJobInfo&) override;
  void OnStallConditionsChanged(const rocksdb::WriteStallInfo& info) override;
  uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }
  uint64_t stalls() const { return stalls_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> flushes_{0};
  std::atomic<uint64_t> stalls_{0};
};

// The one block cache and write buffer manager of a store, shared by every
// column family, and the sizes derived from the budget.
class RocksMemory {
 public:
  explicit RocksMemory(uint64_t budget_bytes);

  uint64_t budget() const { return budget_; }
  // Into the DB's options: the write buffer manager, the open-file bound and
  // the event listener.
  void Apply(rocksdb::DBOptions* db) const;
  // A column family's options: its write buffers, its tables' block size and
  // compression, index blocks held in the shared cache.
  rocksdb::ColumnFamilyOptions ColumnFamily(ColumnFamilyKind kind) const;
  const RocksEvents& events() const { return *events_; }
  // An idle store gives its memory back: memtables flushed to disk, blocks
  // no reader holds dropped from the cache. Errors are left to the next
  // write to report.
  void Release(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles) const;
  // The memory figures of StoreStats, from RocksDB's own accounting.
  void Fill(rocksdb::DB& db, const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
            StoreStats* st) const;

 private:
  uint64_t budget_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers_;
  std::shared_ptr<RocksEvents> events_;
};

}  // namespace flowmesh
