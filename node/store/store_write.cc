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
  // Sized up front (a record is about 70 bytes in the batch, a flow merge
  // about 150): growing a batch of tens of thousands of records by doubling
  // copies it several times.
  rocksdb::WriteBatch wb(batch.records.size() * 80 + batch.flows.size() * 160 + 64);

  // Records: a key already stored (a batch written again after a failed
  // write) is rewritten but not counted again, so Stats().records stays
  // exact. Only such a batch pays for looking its keys up first: at tens of
  // thousands of records a second the lookups were a tenth of meshd's CPU.
  std::vector<std::string> keys;
  keys.reserve(batch.records.size());
  for (const auto& r : batch.records) keys.push_back(RecordKey(r.ts_ns, r.key));
  std::vector<rocksdb::Status> statuses(keys.size(), rocksdb::Status::NotFound());
  if (batch.retried && !keys.empty()) {
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<rocksdb::PinnableSlice> found(keys.size());
    db->MultiGet({}, records, keys.size(), slices.data(), found.data(), statuses.data());
  }
  std::unordered_set<std::string_view> seen;
  std::map<int64_t, uint64_t> new_per_bucket;
  uint64_t new_records = 0;
  std::string value;  // one buffer for every record's value
  value.reserve(64);
  // Records arrive in time order, so runs share a bucket: count a run, then
  // add it to the map once.
  int64_t run_bucket = 0;
  uint64_t run = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!statuses[i].ok() && !statuses[i].IsNotFound())
      return FromRocks(statuses[i], "cannot check records in " + options.dir);
    EncodeRecordValueTo(batch.records[i], &value);
    wb.Put(records, keys[i], value);
    if (statuses[i].IsNotFound() && (!batch.retried || seen.insert(keys[i]).second)) {
      const int64_t bucket = FlowBucketOf(batch.records[i].ts_ns);
      if (run > 0 && bucket != run_bucket) {
        new_per_bucket[run_bucket] += run;
        run = 0;
      }
      run_bucket = bucket;
      ++run;
      ++new_records;
    }
  }
  if (run > 0) new_per_bucket[run_bucket] += run;
  for (const auto& [bucket, n] : new_per_bucket) wb.Merge(meta, CountKey(bucket), EncodeCount(n));

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
