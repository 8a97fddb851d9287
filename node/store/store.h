// meshd's own history in an embedded RocksDB under --data-dir: closed
// connection records keyed by close time, flows summed per minute bucket,
// process details, local endpoints, who listened where when, and node
// metadata, one column family each. A Batch is written atomically through the WAL, so kill -9 keeps
// every batch that Write returned OK for and never half of one.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/flow/flow.h"
#include "node/store/store_types.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace flowmesh {

// The smallest memory budget: below it the small column families' write
// buffers reach RocksDB's 64 KB floor and records would flush every batch.
inline constexpr uint64_t kMinStoreMemoryBytes = 4ULL << 20;

struct StoreOptions {
  std::string dir;                                         // created if missing
  int64_t retention_ns = 7LL * 24 * 3600 * 1'000'000'000;  // records/flows older go
  uint64_t retention_bytes = 2ULL << 30;           // oldest buckets go while larger; 0 = no limit
  int64_t retention_interval_ns = 60'000'000'000;  // background check; 0 = no thread
  // Queries only: nothing is written (not even the generation). Open also
  // falls back to this, with the reason in Stats().last_error, when the disk
  // refuses writes (read-only or full file system) but the store is readable.
  bool read_only = false;
  // RocksDB's memory: the block cache's size, with every memtable charged
  // to it (half of it for memtables before they are flushed); see
  // store_memory.cc. At least kMinStoreMemoryBytes (4 MB).
  uint64_t memory_bytes = 16ULL << 20;
};

// Zeros and empty lists select everything (as in control.capnp's Filter).
struct RecordFilter {
  uint32_t pid = 0;
  uint16_t family = 0;
  std::vector<uint16_t> lports;
  std::vector<uint16_t> rports;
  bool Matches(const ConnRecord& r) const;
};

// One period during which a process listened on an endpoint: the owner and
// start (endpoint.since_ns) as the listener was recorded, and its end.
struct ListenPeriod {
  EndpointRecord endpoint;
  int64_t until_ns = 0;  // 0 = still listening
  bool open() const { return until_ns == 0; }
  bool Overlaps(const TimeWindow& w) const {
    return endpoint.since_ns <= w.until_ns && (open() || until_ns >= w.since_ns);
  }
};

// Identity of this node's store: a random id made on first open, and a
// generation that grows by one on every open (the mesh gossips both).
struct NodeMeta {
  std::string node_id;  // 32 hex digits
  uint64_t generation = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();  // stops the retention thread, closes the database
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // One atomic write. On failure (disk full, read-only) the error says so
  // and the next Write first tries to resume the database. Records are keyed
  // by close time and 4-tuple, so writing one again never duplicates it; the
  // record count stays exact for a batch written again when it is marked
  // `retried` (the flusher does), which makes the store look its keys up.

  Status Write(const Batch& batch);

  // Records whose close time is in the window, oldest first (records that
  // reached meshd out of order, by the few ms the ring buffer allows, may
  // come out of order if two flushes wrote them). `fn` returns false to stop
  // early.
  Status ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                     const std::function<bool(const ConnRecord&)>& fn) const;
  // Flows of every bucket that overlaps the window, summed per key: each
  // flow that had a connection open at some moment in it, with the
  // connections opened in it, those already open when it began (carried)
  // and the bytes moved in it. `keep` (optional) skips keys before they are
  // summed.
  Result<std::vector<Flow>> ReadFlows(const TimeWindow& window,
                                      const std::function<bool(const FlowKey&)>& keep = {}) const;

  Result<std::vector<EndpointRecord>> Endpoints() const;
  // Start-up: the endpoints table becomes exactly this (the snapshot's
  // listeners), and the listen history agrees: a period still open that the
  // snapshot lacks is closed (see store_listeners.cc for the time it gets).
  Status ReplaceEndpoints(const std::vector<EndpointRecord>& endpoints);
  // The listen history: every period that overlaps the window, the latest
  // start first. With `at`, only the listeners of at.port that accept
  // connections to at.addr (ListenerServes: wildcards, dual stack).
  Result<std::vector<ListenPeriod>> ListenHistory(
      const TimeWindow& window, const std::optional<Endpoint>& at = std::nullopt) const;

  Result<std::optional<ProcessDetails>> Process(uint32_t pid, uint64_t start_ticks) const;
  Result<std::vector<ProcessDetails>> Processes() const;

  const NodeMeta& meta() const;
  // Small values the mesh keeps (known peers); key is free-form text.
  Status PutMeta(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> GetMeta(const std::string& key) const;

  StoreStats Stats() const;
  // Drops records, flows, processes and ended listen periods older than
  // retention, then the oldest buckets (and the listen periods that ended
  // before them) while the store is over retention_bytes. Returns the number of
  // records removed. The background thread calls it; tests call it directly.
  Result<uint64_t> EnforceRetention(int64_t now_ns);
  // Memtables to SST files and a full compaction (benchmarks, size checks).
  Status CompactAll();
  // The database and every column family it opened, for tests and
  // benchmarks that read what RocksDB reports (options in effect,
  // properties). Not for writing.
  struct Rocks {
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> families;
  };
  Rocks rocks() const;

 private:
  class Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh
