// Retention (by age, then by size; listen periods go with the flows) and its
// background thread, disk usage, Stats and full compaction.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/common/sched.h"
#include "node/store/codec.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

// Size retention aims this far under the limit so it does not run again at
// the next check for a few kilobytes.
constexpr double kSizeTarget = 0.9;
constexpr int kMaxSizeRounds = 8;

}  // namespace

Result<Store::Impl::Counts> Store::Impl::ReadCounts() const {
  Counts counts;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, meta));
  for (it->Seek(std::string(1, kMetaCountPrefix));
       it->Valid() && !it->key().empty() && it->key()[0] == kMetaCountPrefix; it->Next()) {
    auto bucket = DecodeCountKey(View(it->key()));
    auto n = DecodeCount(View(it->value()));
    if (!bucket.ok() || !n.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    counts.buckets.emplace_back(*bucket, *n);
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read record counts from " + options.dir));
  return counts;
}

Status Store::Impl::LoadTotalRecords() {
  std::string value;
  rocksdb::Status s = db->Get({}, meta, std::string(kMetaExpiredBeforeKey), &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "cannot read " + options.dir);
  if (s.ok()) {
    auto cut = DecodeCount(value);
    if (cut.ok()) expired_before = static_cast<int64_t>(*cut);
  }
  s = db->Get({}, meta, std::string(kMetaRolledUpToKey), &value);
  if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "cannot read " + options.dir);
  if (s.ok()) {
    auto r = DecodeCount(value);
    if (r.ok()) rolled_up_to_ = static_cast<int64_t>(*r);
  }
  FM_ASSIGN_OR_RETURN(Counts counts, ReadCounts());
  uint64_t total = 0;
  for (const auto& b : counts.buckets) total += b.second;
  total_records = total;
  return Status::Ok();
}

Result<uint64_t> Store::Impl::DeleteBefore(int64_t cut_bucket, const Counts& counts) {
  uint64_t removed = 0;
  for (const auto& [bucket, n] : counts.buckets)
    if (bucket < cut_bucket) removed += n;
  rocksdb::WriteBatch wb;
  wb.DeleteRange(records, RecordKeyAt(0), RecordKeyAt(cut_bucket));
  // A coarse flow bucket goes once all of its minutes have: until then a
  // window that starts after the cut may still read it whole.
  for (int level = 0; level < kFlowLevels; ++level)
    wb.DeleteRange(flows, FlowBucketKey(level, 0),
                   FlowBucketKey(level, FlowLevelBucketOf(level, cut_bucket)));
  wb.DeleteRange(meta, CountKey(0), CountKey(cut_bucket));
  wb.DeleteRange(meta, CheckpointKey(0), CheckpointKey(cut_bucket));
  const int64_t floor = std::max(expired_before.load(), cut_bucket);
  wb.Put(meta, std::string(kMetaExpiredBeforeKey), EncodeCount(static_cast<uint64_t>(floor)));
  // Deleted minutes need no roll-up.
  const int64_t rolled = std::max(rolled_up_to_, cut_bucket);
  wb.Put(meta, std::string(kMetaRolledUpToKey), EncodeCount(static_cast<uint64_t>(rolled)));
  FM_RETURN_IF_ERROR(
      FromRocks(db->Write({}, &wb), "retention cannot delete old buckets in " + options.dir));
  expired_before = floor;
  rolled_up_to_ = rolled;
  uint64_t total = total_records.load();
  total_records = total >= removed ? total - removed : 0;
  std::lock_guard lock(stats_mu_);
  expired_records_ += removed;
  return removed;
}

Result<int64_t> Store::Impl::CutAtCheckpoint(int64_t cut_bucket) const {
  FM_ASSIGN_OR_RETURN(std::optional<int64_t> checkpoint, LastCheckpoint({}, cut_bucket));
  if (!checkpoint || *checkpoint <= expired_before.load()) return cut_bucket;
  return *checkpoint;
}

Result<uint64_t> Store::Impl::ExpireProcesses(int64_t cutoff_ns) {
  // A process that listened in a period still kept stays too: it is the
  // root of a look of that period, even if nothing connected to it since.
  std::unordered_set<ProcessId, ProcessIdHash> listened;
  FM_RETURN_IF_ERROR(ScanListenPeriods("", [&](const rocksdb::Slice&, ListenPeriod& l) {
    if (l.open() || l.until_ns >= cutoff_ns)
      listened.insert({l.endpoint.proc.pid, l.endpoint.proc.start_ticks});
  }));
  rocksdb::WriteBatch wb;
  uint64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, processes));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = DecodeProcessKey(View(it->key()));
    auto p = key.ok() ? DecodeProcessValue(*key, View(it->value()))
                      : Result<StoredProcess>(key.status());
    if (p.ok() && (p->last_seen_ns >= cutoff_ns ||
                   listened.count({p->details.pid, p->details.start_ticks})))
      continue;
    wb.Delete(processes, it->key());  // expired, or unreadable and so useless
    ++n;
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read processes from " + options.dir));
  if (n == 0) return n;
  FM_RETURN_IF_ERROR(
      FromRocks(db->Write({}, &wb), "retention cannot delete processes in " + options.dir));
  comm_cache_.Clear();
  last_seen_written_.clear();
  return n;
}

void Store::Impl::CompactBefore(int64_t cut_bucket) {
  // DeleteRange only hides data; compacting the range is what frees the disk.
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
  struct Range {
    rocksdb::ColumnFamilyHandle* cf;
    std::string begin, end;
  };
  std::vector<Range> ranges = {{records, RecordKeyAt(0), RecordKeyAt(cut_bucket)},
                               {meta, CountKey(0), CountKey(cut_bucket)}};
  for (int level = 0; level < kFlowLevels; ++level)
    ranges.push_back({flows, FlowBucketKey(level, 0),
                      FlowBucketKey(level, FlowLevelBucketOf(level, cut_bucket))});
  for (const Range& r : ranges) {
    if (stop_) return;
    const rocksdb::Slice begin(r.begin), end(r.end);
    rocksdb::Status s = db->CompactRange(o, r.cf, &begin, &end);
    if (!s.ok() && !stop_)
      FM_LOG(Warn, "store") << "compacting expired data in " << options.dir << ": " << s.ToString();
  }
}

Result<uint64_t> Store::Impl::EnforceRetention(int64_t now_ns) {
  uint64_t removed = 0;
  if (!read_only_reason.empty()) return removed;  // nothing can be deleted
  if (options.retention_ns > 0 && now_ns > options.retention_ns) {
    int64_t cut = FlowBucketOf(now_ns - options.retention_ns);
    bool deleted = false;
    {
      std::lock_guard lock(write_mu_);
      // At most an hour more is kept: what was open at the cut is still
      // counted by windows that start after it.
      FM_ASSIGN_OR_RETURN(cut, CutAtCheckpoint(cut));
      FM_ASSIGN_OR_RETURN(Counts counts, ReadCounts());
      bool old_records = !counts.buckets.empty() && counts.buckets.front().first < cut;
      bool old_flows = false;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, flows));
      for (int level = 0; level < kFlowLevels && !old_flows; ++level) {
        it->Seek(FlowBucketKey(level, 0));
        old_flows = it->Valid() &&
                    it->key().compare(FlowBucketKey(level, FlowLevelBucketOf(level, cut))) < 0;
      }
      if (old_records || old_flows) {
        FM_ASSIGN_OR_RETURN(removed, DeleteBefore(cut, counts));
        deleted = true;
      }
      // A listen period goes with the flows it could be the root of; then
      // the processes, which the periods left keep.
      FM_RETURN_IF_ERROR(ExpireListenPeriods(cut));
      FM_RETURN_IF_ERROR(
          ExpireProcesses(now_ns - options.retention_ns - kLastSeenRefreshNs).status());
    }
    if (deleted) CompactBefore(cut);
  }
  for (int round = 0; options.retention_bytes > 0 && round < kMaxSizeRounds && !stop_; ++round) {
    const uint64_t disk = DiskBytes();
    if (disk <= options.retention_bytes) break;
    int64_t cut = 0;
    {
      std::lock_guard lock(write_mu_);
      FM_ASSIGN_OR_RETURN(Counts counts, ReadCounts());
      if (counts.buckets.empty()) break;  // nothing left that retention may drop
      uint64_t total = 0;
      for (const auto& b : counts.buckets) total += b.second;
      // Estimate from the average record's share of the disk (flows shrink
      // with their buckets too); the next round corrects a bad estimate.
      const double per_record =
          static_cast<double>(disk) / static_cast<double>(std::max<uint64_t>(total, 1));
      const double excess =
          static_cast<double>(disk) - kSizeTarget * static_cast<double>(options.retention_bytes);
      const uint64_t need = static_cast<uint64_t>(std::ceil(excess / per_record));
      uint64_t taken = 0;
      for (const auto& [bucket, n] : counts.buckets) {
        cut = bucket + kFlowBucketNs;
        taken += n;
        if (taken >= need) break;
      }
      // The checkpoint before, unless that frees nothing: then the open
      // connections counted there are lost to windows of the next hour, not
      // the disk.
      FM_ASSIGN_OR_RETURN(cut, CutAtCheckpoint(cut));
      FM_ASSIGN_OR_RETURN(uint64_t n, DeleteBefore(cut, counts));
      removed += n;
      FM_RETURN_IF_ERROR(ExpireListenPeriods(cut));
    }
    CompactBefore(cut);
  }
  return removed;
}

uint64_t Store::Impl::DiskBytes() const {
  uint64_t total = 0;
  for (auto* h : handles) {
    uint64_t v = 0;
    if (db->GetIntProperty(h, "rocksdb.total-sst-files-size", &v)) total += v;
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options.dir, ec)) {
    if (entry.path().extension() != ".log") continue;  // WAL files; "LOG" is the info log
    std::error_code size_ec;
    uint64_t size = entry.file_size(size_ec);
    if (!size_ec) total += size;
  }
  return total;
}

StoreStats Store::Impl::Stats() const {
  StoreStats st;
  st.dir = options.dir;
  st.disk_bytes = DiskBytes();
  st.records = total_records.load();
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, records));
  it->SeekToFirst();
  if (it->Valid()) {
    auto key = DecodeRecordKey(View(it->key()));
    if (key.ok()) st.oldest_ns = key->ts_ns;
  }
  st.corrupt_values = corrupt->load(std::memory_order_relaxed);
  st.read_only = !read_only_reason.empty();
  std::lock_guard lock(stats_mu_);
  st.batches = batches_;
  st.write_errors = write_errors_;
  st.last_error = last_error_;
  st.expired_records = expired_records_;
  if (st.last_error.empty() && st.read_only && !options.read_only)  // the disk refused at open
    st.last_error = "store in " + options.dir + " is read-only: " + read_only_reason +
                    "; queries answer from what is stored";
  return st;
}

Status Store::Impl::CompactAll() {
  if (!read_only_reason.empty()) return RefuseWrite();
  rocksdb::FlushOptions fo;
  fo.wait = true;
  FM_RETURN_IF_ERROR(FromRocks(db->Flush(fo, handles), "cannot flush " + options.dir));
  rocksdb::CompactRangeOptions o;
  o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (auto* h : handles)
    FM_RETURN_IF_ERROR(
        FromRocks(db->CompactRange(o, h, nullptr, nullptr), "cannot compact " + options.dir));
  return Status::Ok();
}

void Store::Impl::StartRetentionThread() {
  if (options.retention_interval_ns <= 0) return;
  thread_ = std::thread([this] { RetentionLoop(); });
}

void Store::Impl::StopRetentionThread() {
  {
    std::lock_guard lock(thread_mu_);
    stop_ = true;
  }
  thread_cv_.notify_all();
  if (!thread_.joinable()) return;
  db->DisableManualCompaction();  // a long CompactRange must not hold up shutdown
  thread_.join();
}

void Store::Impl::RetentionLoop() {
  SetThreadName("retention");
  std::unique_lock lock(thread_mu_);
  bool failing = false;
  const auto interval = std::chrono::nanoseconds(options.retention_interval_ns);
  while (!thread_cv_.wait_for(lock, interval, [this] { return stop_.load(); })) {
    lock.unlock();
    StampWatched(RealtimeNs());
    auto removed = EnforceRetention(RealtimeNs());
    if (!removed.ok() && !failing)
      FM_LOG(Warn, "store") << "retention: " << removed.status().message();
    else if (removed.ok() && *removed > 0)
      FM_LOG(Info, "store") << "retention removed " << *removed << " records from " << options.dir;
    failing = !removed.ok();
    lock.lock();
  }
}

}  // namespace flowmesh
