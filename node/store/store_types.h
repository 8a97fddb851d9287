// The store's plain types that leave meshd (meshctl status and flows, look
// queries): a query's time window and the store's figures. No RocksDB here,
// so what includes this does not rebuild when the store changes.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

namespace flowmesh {

// [since, until], Unix epoch ns, both inclusive.
struct TimeWindow {
  int64_t since_ns = 0;
  int64_t until_ns = std::numeric_limits<int64_t>::max();
  bool Contains(int64_t ts) const { return ts >= since_ns && ts <= until_ns; }
};

struct StoreStats {
  std::string dir;
  uint64_t disk_bytes = 0;  // SST files + WAL
  uint64_t records = 0;     // connection records held
  int64_t oldest_ns = 0;    // close time of the oldest record; 0 = none
  uint64_t batches = 0;     // batches written since open
  uint64_t write_errors = 0;
  std::string last_error;        // "" when the last write succeeded
  uint64_t expired_records = 0;  // removed by retention since open
  uint64_t corrupt_values = 0;   // malformed keys/values skipped since open
  bool read_only = false;        // opened read-only (asked for, or the disk refused writes)
  // RocksDB's memory (store_memory.cc): the budget, memtables (charged to
  // it), blocks in the cache besides them, and table readers outside it.
  uint64_t memory_limit_bytes = 0;
  uint64_t memtable_bytes = 0;
  uint64_t block_cache_bytes = 0;
  uint64_t table_readers_bytes = 0;
  uint64_t memtable_flushes = 0;  // since open
  uint64_t write_stalls = 0;      // times RocksDB slowed or stopped writes since open
};

}  // namespace flowmesh
