// Store writes: one Batch as one atomic WriteBatch (records, flow merges,
// per-bucket counts, processes, endpoints and their listen periods), and
// what happens when the disk refuses it.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <map>
#include <unordered_set>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/store/codec.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

// The batch's own time (its newest timestamp), so stores fed with old data in
// tests and replays age consistently; the wall clock when it carries none.
int64_t BatchTime(const Batch& batch) {
  int64_t t = 0;
  for (const auto& r : batch.records) t = std::max(t, r.ts_ns);
  for (const auto& f : batch.flows) t = std::max({t, f.bucket_ns, f.stats.last_seen_ns});
  for (const auto& e : batch.endpoints_added) t = std::max(t, e.since_ns);
  for (const auto& e : batch.endpoints_removed) t = std::max(t, e.until_ns);
  return t > 0 ? t : RealtimeNs();
}

std::string WriteErrorMessage(const std::string& dir, const rocksdb::Status& s) {
  std::string why = s.ToString();
  if (s.IsNoSpace() || why.find("No space left") != std::string::npos)
    why = "No space left on device (" + why + ")";
  else if (why.find("Read-only file system") != std::string::npos)
    why = "read-only file system (" + why + ")";
  return "store write failed in " + dir + ": " + why + "; queries answer from what is stored";
}

// The batch's records in time order: the aggregator's order, all but always.
std::vector<const ConnRecord*> InTimeOrder(const std::vector<ConnRecord>& records) {
  std::vector<const ConnRecord*> order;
  order.reserve(records.size());
  for (const ConnRecord& r : records) order.push_back(&r);
  auto earlier = [](const ConnRecord* a, const ConnRecord* b) { return a->ts_ns < b->ts_ns; };
  if (!std::is_sorted(order.begin(), order.end(), earlier))
    std::stable_sort(order.begin(), order.end(), earlier);
  return order;
}

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace

bool CommCache::Find(const ProcessId& id, std::string* comm) const {
  std::lock_guard lock(mu_);
  auto it = map_.find(id);
  if (it == map_.end()) return false;
  *comm = it->second;
  return true;
}

void CommCache::Put(const ProcessId& id, std::string comm) {
  std::lock_guard lock(mu_);
  if (map_.size() >= kMaxEntries) map_.clear();  // crude, but bounded and rare
  map_[id] = std::move(comm);
}

void CommCache::Clear() {
  std::lock_guard lock(mu_);
  map_.clear();
}

void Store::Impl::RecordWriteError(const rocksdb::Status& s) {
  needs_resume_ = true;
  std::string message = WriteErrorMessage(options.dir, s);
  std::lock_guard lock(stats_mu_);
  ++write_errors_;
  if (last_error_.empty()) FM_LOG(Error, "store") << message;  // once per streak
  last_error_ = std::move(message);
}

Status Store::Impl::RefuseWrite() {
  std::string message = "store write refused in " + options.dir + ": " + read_only_reason +
                        "; queries answer from what is stored";
  std::lock_guard lock(stats_mu_);
  ++write_errors_;
  last_error_ = message;
  return Status(Status::Code::kUnavailable, std::move(message));
}

Status Store::Impl::RefreshProcesses(const Batch& batch, int64_t batch_time,
                                     rocksdb::WriteBatch* wb) {
  std::unordered_set<ProcessId, ProcessIdHash> mentioned;
  for (const auto& r : batch.records)
    if (r.proc.pid) mentioned.insert({r.proc.pid, r.proc.start_ticks});
  for (const auto& f : batch.flows)
    if (f.key.pid) mentioned.insert({f.key.pid, f.key.start_ticks});
  for (const auto& p : batch.processes) mentioned.erase({p.pid, p.start_ticks});

  for (const ProcessId& id : mentioned) {
    auto it = last_seen_written_.find(id);
    if (it != last_seen_written_.end() &&
        (it->second < 0 || batch_time - it->second < kLastSeenRefreshNs))
      continue;  // unknown process, or refreshed recently enough
    std::string key = ProcessKey(id.first, id.second), value;
    rocksdb::Status s = db->Get({}, processes, key, &value);
    if (s.IsNotFound()) {
      last_seen_written_[id] = -1;
      continue;
    }
    if (!s.ok()) return FromRocks(s, "cannot read a process from " + options.dir);
    auto stored = DecodeProcessValue({id.first, id.second}, value);
    if (!stored.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (batch_time - stored->last_seen_ns < kLastSeenRefreshNs) {
      last_seen_written_[id] = stored->last_seen_ns;
      continue;
    }
    wb->Put(processes, key, EncodeProcessValue(stored->details, batch_time));
    last_seen_written_[id] = batch_time;
  }
  return Status::Ok();
}

Status Store::Impl::WriteRecords(const Batch& batch, rocksdb::WriteBatch* wb,
                                 uint64_t* new_records) {
  // One block per run of records (keys.h): cut at kMaxRecordsPerBlock, at a
  // flow bucket and past kRecordBlockSpanNs from its first record.
  struct Block {
    std::string key;
    int64_t first_ts = 0;
    int64_t bucket = 0;
    uint64_t count = 0;
  };
  std::vector<Block> blocks;
  std::string value;  // the open block's value; one buffer for every block
  auto put = [&] {
    if (!blocks.empty()) wb->Put(records, blocks.back().key, value);
    value.clear();
  };
  // A record is its close time and connection: written twice in a batch, it
  // is stored once. Such twins sort next to each other.
  std::vector<const ConnRecord*> same_ts;
  for (const ConnRecord* r : InTimeOrder(batch.records)) {
    if (!same_ts.empty() && same_ts.front()->ts_ns != r->ts_ns) same_ts.clear();
    if (std::any_of(same_ts.begin(), same_ts.end(),
                    [r](const ConnRecord* o) { return o->key == r->key; }))
      continue;
    same_ts.push_back(r);
    const int64_t bucket = FlowBucketOf(r->ts_ns);
    if (blocks.empty() || blocks.back().count == kMaxRecordsPerBlock ||
        blocks.back().bucket != bucket || r->ts_ns - blocks.back().first_ts > kRecordBlockSpanNs) {
      put();
      blocks.push_back({RecordBlockKey(r->ts_ns, r->key), r->ts_ns, bucket, 0});
    }
    AppendToRecordBlock(blocks.back().first_ts, *r, &value);
    ++blocks.back().count;
  }
  put();

  // A block already stored (a batch written again after a failed write that
  // landed after all) is rewritten, and only the records it did not hold yet
  // are counted, so Stats().records stays exact: a retried batch is the one
  // before with more appended, so its blocks begin where they began. Only
  // such a batch pays for looking its keys up.
  if (batch.retried && !blocks.empty()) {
    std::vector<rocksdb::Slice> keys;
    keys.reserve(blocks.size());
    for (const Block& b : blocks) keys.emplace_back(b.key);
    std::vector<rocksdb::PinnableSlice> found(keys.size());
    std::vector<rocksdb::Status> statuses(keys.size());
    db->MultiGet({}, records, keys.size(), keys.data(), found.data(), statuses.data());
    std::unordered_set<std::string_view> seen;
    for (size_t i = 0; i < blocks.size(); ++i) {
      Block& b = blocks[i];
      if (!statuses[i].ok() && !statuses[i].IsNotFound())
        return FromRocks(statuses[i], "cannot check records in " + options.dir);
      const uint64_t stored = statuses[i].ok() ? CountRecordBlock(b.first_ts, View(found[i])) : 0;
      b.count = seen.insert(b.key).second && b.count > stored ? b.count - stored : 0;
    }
  }
  std::map<int64_t, uint64_t> new_per_bucket;
  for (const Block& b : blocks) {
    new_per_bucket[b.bucket] += b.count;
    *new_records += b.count;
  }
  for (const auto& [bucket, n] : new_per_bucket)
    if (n > 0) wb->Merge(meta, CountKey(bucket), EncodeCount(n));
  return Status::Ok();
}

Status Store::Impl::Write(const Batch& batch) {
  if (!read_only_reason.empty()) return batch.empty() ? Status::Ok() : RefuseWrite();
  std::lock_guard lock(write_mu_);
  if (needs_resume_) {
    // After a failed write RocksDB stops writes until it recovers (by itself
    // for a full disk, once enough space is free; "busy" meanwhile). The
    // cause stays the first error, which is what the operator must fix.
    rocksdb::Status s = db->Resume();
    if (!s.ok()) {
      std::lock_guard lock(stats_mu_);
      ++write_errors_;
      return Status(Status::Code::kUnavailable,
                    last_error_.empty() ? WriteErrorMessage(options.dir, s) : last_error_);
    }
    needs_resume_ = false;
  }
  if (batch.empty()) return Status::Ok();
  const int64_t batch_time = BatchTime(batch);
  // One WriteBatch kept from write to write: its buffer (a megabyte or two at
  // churn) stays in memory that is already paged in, instead of fresh pages
  // faulted in on every write. One that grew past kMaxKeptWriteBatch while
  // the store failed is let go.
  rocksdb::WriteBatch& wb = write_batch_;
  if (wb.GetDataSize() > kMaxKeptWriteBatch) wb = rocksdb::WriteBatch();
  wb.Clear();

  uint64_t new_records = 0;
  FM_RETURN_IF_ERROR(WriteRecords(batch, &wb, &new_records));

  // Minute buckets only; the coarse levels get them when the minute is over
  // (RollUp, below). A late delta for a minute already rolled up goes to
  // every level at once.
  int64_t newest_flow_bucket = 0;
  for (const auto& f : batch.flows) {
    const std::string stats = EncodeFlowStats(f.stats);
    const int levels = f.bucket_ns < rolled_up_to_ ? kFlowLevels : 1;
    for (int level = 0; level < levels; ++level)
      wb.Merge(flows, FlowRowKey(level, FlowLevelBucketOf(level, f.bucket_ns), f.key), stats);
    newest_flow_bucket = std::max(newest_flow_bucket, FlowBucketOf(f.bucket_ns));
  }

  // In the batch with the carries it vouches for (or after them).
  for (int64_t checkpoint : batch.checkpoints)
    wb.Put(meta, CheckpointKey(checkpoint), rocksdb::Slice());

  for (const auto& p : batch.processes)
    wb.Put(processes, ProcessKey(p.pid, p.start_ticks), EncodeProcessValue(p, batch_time));
  FM_RETURN_IF_ERROR(RefreshProcesses(batch, batch_time, &wb));

  const std::map<std::string, EndpointOp> endpoint_ops = EndpointOps(batch);
  for (const auto& [key, op] : endpoint_ops) {
    if (op.adds())
      wb.Put(endpoints, key, EncodeEndpointValue(*op.add));
    else
      wb.Delete(endpoints, key);
  }
  FM_RETURN_IF_ERROR(RecordListenPeriods(endpoint_ops, batch_time, &wb));
  // meshd watched until this batch: a listener the next start-up no longer
  // sees stopped after it (see ReconcileListenPeriods).
  wb.Put(meta, std::string(kMetaWatchedUntilKey),
         EncodeCount(static_cast<uint64_t>(std::max(watched_until_, batch_time))));

  rocksdb::WriteOptions wo;
  // sync=false: a process crash (kill -9) loses nothing, the WAL is in the
  // page cache; a power loss can lose the batches of the last moments.
  wo.sync = false;
  rocksdb::Status s = db->Write(wo, &wb);
  if (!s.ok()) {
    RecordWriteError(s);
    return Status(s.IsNoSpace() ? Status::Code::kResourceExhausted : Status::Code::kIoError,
                  WriteErrorMessage(options.dir, s));
  }
  total_records.fetch_add(new_records, std::memory_order_relaxed);
  watched_until_ = std::max(watched_until_, batch_time);
  // The minutes before the newest one are taken as finished. A failure is
  // not this batch's (it is stored); the next write tries again.
  if (newest_flow_bucket > rolled_up_to_) {
    Status r = RollUp(newest_flow_bucket);
    if (!r.ok() && !rollup_failing_) FM_LOG(Warn, "store") << r.message();
    rollup_failing_ = !r.ok();
  }
  for (const auto& p : batch.processes) {
    comm_cache_.Put({p.pid, p.start_ticks}, p.comm);
    last_seen_written_[{p.pid, p.start_ticks}] = batch_time;
  }
  std::lock_guard stats_lock(stats_mu_);
  if (!last_error_.empty()) FM_LOG(Info, "store") << "writes to " << options.dir << " work again";
  ++batches_;
  last_error_.clear();
  return Status::Ok();
}

Status Store::Impl::ReplaceEndpoints(const std::vector<EndpointRecord>& list) {
  if (!read_only_reason.empty()) return RefuseWrite();
  std::lock_guard lock(write_mu_);
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, endpoints));
  for (it->SeekToFirst(); it->Valid(); it->Next()) wb.Delete(endpoints, it->key());
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read endpoints in " + options.dir);
  for (const auto& e : list)
    wb.Put(endpoints, EndpointKey(e.netns, e.addr, e.port), EncodeEndpointValue(e));
  FM_RETURN_IF_ERROR(ReconcileListenPeriods(list, &wb));
  rocksdb::Status s = db->Write({}, &wb);
  if (!s.ok()) {
    RecordWriteError(s);
    return Status(Status::Code::kIoError, WriteErrorMessage(options.dir, s));
  }
  return Status::Ok();
}

}  // namespace flowmesh
