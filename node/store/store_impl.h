// Store's private state, shared by store.cc (open), store_write.cc,
// store_read.cc (queries), store_retention.cc (retention, stats) and
// store_listeners.cc (listen history). Not for other modules.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "node/store/store.h"
#include "node/store/store_memory.h"

namespace flowmesh {

// A process still mentioned by records gets its last_seen rewritten at most
// this often; retention keeps processes this much longer than records so a
// record never outlives its process's comm.
inline constexpr int64_t kLastSeenRefreshNs = 3600LL * 1'000'000'000;

// RocksDB's info log, into meshd's (rocks_log.cc).
std::shared_ptr<rocksdb::Logger> MakeRocksLog();

// rocksdb::Status to Status; `what` says which operation on which store.
Status FromRocks(const rocksdb::Status& s, const std::string& what);

struct ProcessIdHash {
  size_t operator()(const std::pair<uint32_t, uint64_t>& p) const noexcept {
    return (uint64_t{p.first} * 0x9e3779b97f4a7c15ULL) ^ p.second;
  }
};
using ProcessId = std::pair<uint32_t, uint64_t>;  // (pid, start_ticks)

// comm by process identity, so records (which do not store comm) read back
// with it. Write keeps it coherent, so "unknown" answers may be cached too.
class CommCache {
 public:
  // Sets *comm and returns true when cached.
  bool Find(const ProcessId& id, std::string* comm) const;
  void Put(const ProcessId& id, std::string comm);
  void Clear();

 private:
  static constexpr size_t kMaxEntries = 1 << 16;
  mutable std::mutex mu_;
  std::unordered_map<ProcessId, std::string, ProcessIdHash> map_;
};

// A run of consecutive buckets of one flow level: [begin_ns, end_ns).
struct FlowSpan {
  int level = 0;
  int64_t begin_ns = 0;
  int64_t end_ns = 0;
  bool operator==(const FlowSpan&) const = default;
};
// The fewest buckets that exactly cover the minute buckets [first, end):
// hours where whole hours fit, then 10 minutes, then minutes. Coarse buckets
// are used only where they end by `coarse_end` (what has been rolled up).
std::vector<FlowSpan> PlanFlowSpans(int64_t first_bucket, int64_t end_bucket,
                                    int64_t coarse_end = std::numeric_limits<int64_t>::max());

// What one Batch does to one endpoint (by EndpointKey). The Batch does not
// say whether a listener went before or after it came back, so the newest
// `since` decides: a re-listen (newer since) survives the removal of its
// predecessor; add-then-remove of the same listener removes it.
struct EndpointOp {
  const EndpointRecord* add = nullptr;      // the newest listen of this key
  const EndpointRecord* removed = nullptr;  // the newest removal of this key
  int64_t removed_since = 0;                // the newest since among the removals
  int64_t removed_until = 0;                // the latest known end among them; 0 = not known
  bool adds() const { return add && (!removed || add->since_ns > removed_since); }
};
std::map<std::string, EndpointOp> EndpointOps(const Batch& batch);

class Store::Impl {
 public:
  ~Impl();

  // Open's steps after the database is open.
  Status LoadNodeMeta();
  Status LoadTotalRecords();
  Status LoadWatchedUntil();
  // kMetaWatchedUntilKey = now: an idle node writes no batches, so the
  // retention thread vouches that meshd still runs. Errors are the next
  // write's to report.
  void StampWatched(int64_t now_ns);

  Status Write(const Batch& batch);
  // The batch's records as blocks into *wb, with the per-bucket counts of
  // those not stored before; caller holds write_mu_.
  Status WriteRecords(const Batch& batch, rocksdb::WriteBatch* wb, uint64_t* new_records);
  Status ReplaceEndpoints(const std::vector<EndpointRecord>& endpoints);
  Status ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                     const std::function<bool(const ConnRecord&)>& fn) const;
  Result<std::vector<Flow>> ReadFlows(const TimeWindow& window,
                                      const std::function<bool(const FlowKey&)>& keep) const;
  using FlowSums = std::unordered_map<FlowKey, FlowStats, FlowKeyHash>;
  using FlowKeep = std::function<bool(const FlowKey&)>;
  // Merges every flow row of the minute buckets [begin, end) into *sums,
  // reading coarse rows below `rolled_up_to` where they cover whole buckets.
  Status SumFlowRows(const rocksdb::ReadOptions& at, int64_t begin, int64_t end,
                     int64_t rolled_up_to, const FlowKeep& keep, FlowSums* sums) const;
  // What was open when the minute `first` began, per flow: the last
  // checkpoint at or before it, plus the opens and minus the closes since
  // (as FlowStats carried from `first`, into *open). False when no
  // checkpoint is stored at or before `first` (a store of before
  // checkpoints, whose rows carry every minute themselves).
  // The last flow checkpoint at or before bucket_ns, if the store has one.
  Result<std::optional<int64_t>> LastCheckpoint(const rocksdb::ReadOptions& at,
                                                int64_t bucket_ns) const;
  Result<bool> OpenAtStart(const rocksdb::ReadOptions& at, int64_t first, int64_t rolled_up_to,
                           const FlowKeep& keep, FlowSums* open) const;
  Result<std::vector<EndpointRecord>> Endpoints() const;
  Result<std::vector<ListenPeriod>> ListenHistory(const TimeWindow& window,
                                                  const std::optional<Endpoint>& at) const;
  Result<std::optional<ProcessDetails>> Process(uint32_t pid, uint64_t start_ticks) const;
  Result<std::vector<ProcessDetails>> Processes() const;
  std::string CommOf(const ProcessId& id) const;  // "" when unknown

  StoreStats Stats() const;
  uint64_t DiskBytes() const;
  Result<uint64_t> EnforceRetention(int64_t now_ns);
  Status CompactAll();
  Status RefuseWrite();  // counts and explains a write to a read-only store
  void StartRetentionThread();
  void StopRetentionThread();

  // Set by Open.
  StoreOptions options;
  std::unique_ptr<RocksMemory> memory;  // outlives db: its cache and listener are db's
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // every CF opened, ours first
  rocksdb::ColumnFamilyHandle* records = nullptr;
  rocksdb::ColumnFamilyHandle* flows = nullptr;
  rocksdb::ColumnFamilyHandle* processes = nullptr;
  rocksdb::ColumnFamilyHandle* endpoints = nullptr;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* listen_history = nullptr;
  NodeMeta node_meta;
  // Why the store is read-only ("" = writable); every write is refused with it.
  std::string read_only_reason;
  std::shared_ptr<std::atomic<uint64_t>> corrupt = std::make_shared<std::atomic<uint64_t>>(0);
  std::atomic<uint64_t> total_records{0};  // sum of the per-bucket counts
  std::atomic<int64_t> expired_before{0};  // retention's last cut (kMetaExpiredBeforeKey)

 private:
  struct Counts {
    std::vector<std::pair<int64_t, uint64_t>> buckets;  // oldest first
  };
  Result<Counts> ReadCounts() const;
  // Deletes every record, flow and count before `cut_bucket` (whole buckets);
  // returns how many records went. Caller holds write_mu_.
  Result<uint64_t> DeleteBefore(int64_t cut_bucket, const Counts& counts);
  Result<uint64_t> ExpireProcesses(int64_t cutoff_ns);
  // The last flow checkpoint at or before cut_bucket when cutting there frees
  // something (it is after the last cut), else cut_bucket: a cut at a
  // checkpoint keeps what was open at it. Caller holds write_mu_.
  Result<int64_t> CutAtCheckpoint(int64_t cut_bucket) const;
  // store_listeners.cc. The listen periods a Batch opens and closes, and
  // kMetaWatchedUntilKey, into *wb. Caller holds write_mu_.
  Status RecordListenPeriods(const std::map<std::string, EndpointOp>& ops, int64_t batch_time,
                             rocksdb::WriteBatch* wb);
  // Start-up: closes the open periods `live` lacks, opens those it adds.
  Status ReconcileListenPeriods(const std::vector<EndpointRecord>& live, rocksdb::WriteBatch* wb);
  // Deletes the periods that ended before cut_ns. Caller holds write_mu_.
  Status ExpireListenPeriods(int64_t cut_ns);
  // fn(key, period) for every readable period whose key starts with
  // `prefix` ("" = all); malformed ones are counted and skipped.
  Status ScanListenPeriods(
      const std::string& prefix,
      const std::function<void(const rocksdb::Slice& key, ListenPeriod& p)>& fn) const;
  // The open periods of one endpoint (its EndpointKey), with their keys.
  Result<std::vector<std::pair<std::string, ListenPeriod>>> OpenPeriodsOf(
      const std::string& endpoint_key) const;
  void CompactBefore(int64_t cut_bucket);
  void RecordWriteError(const rocksdb::Status& s);
  // Sums the minute buckets [rolled_up_to_, target) into the coarse levels
  // and moves the watermark, atomically. Caller holds write_mu_.
  Status RollUp(int64_t target_bucket);
  Status RefreshProcesses(const Batch& batch, int64_t batch_time, rocksdb::WriteBatch* wb);
  void RetentionLoop();

  // Serialises writers: the "is this record new?" check and the count merge
  // must not interleave with another write or with retention's deletes.
  std::mutex write_mu_;
  rocksdb::WriteBatch write_batch_;  // Write's, reused; under write_mu_
  static constexpr size_t kMaxKeptWriteBatch = 8 << 20;
  bool needs_resume_ = false;
  int64_t rolled_up_to_ = 0;  // kMetaRolledUpToKey; under write_mu_
  bool rollup_failing_ = false;
  // kMetaWatchedUntilKey: as this process last wrote it, and as Open found
  // it (what the restart's closing of stale listen periods trusts).
  int64_t watched_until_ = 0;
  int64_t watched_before_open_ = 0;
  // Last last_seen written per process; lets Write refresh a process that
  // records still mention without rewriting it every batch.
  std::unordered_map<ProcessId, int64_t, ProcessIdHash> last_seen_written_;

  mutable std::mutex stats_mu_;
  uint64_t batches_ = 0;
  uint64_t write_errors_ = 0;
  std::string last_error_;
  uint64_t expired_records_ = 0;

  mutable CommCache comm_cache_;  // filled by reads, kept coherent by writes

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  std::atomic<bool> stop_{false};  // set under thread_mu_; read by retention's loops
  std::thread thread_;
};

}  // namespace flowmesh
