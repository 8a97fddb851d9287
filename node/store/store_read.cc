// Store queries: records in a time window, flows summed over the buckets of a
// window, endpoints and processes. Malformed values are counted and skipped.
#include <algorithm>
#include <limits>
#include <unordered_map>

#include "node/common/clock.h"
#include "node/store/codec.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace

std::string Store::Impl::CommOf(const ProcessId& id) const {
  std::string comm;
  if (comm_cache_.Find(id, &comm)) return comm;
  std::string value;
  rocksdb::Status s = db->Get({}, processes, ProcessKey(id.first, id.second), &value);
  if (s.ok()) {
    auto p = DecodeProcessValue({id.first, id.second}, value);
    if (p.ok())
      comm = p->details.comm;
    else
      corrupt->fetch_add(1, std::memory_order_relaxed);
  } else if (!s.IsNotFound()) {
    return comm;  // a read error is not "unknown"; do not cache it
  }
  comm_cache_.Put(id, comm);
  return comm;
}

Status Store::Impl::ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                                const std::function<bool(const ConnRecord&)>& fn) const {
  if (window.since_ns > window.until_ns) return Status::Ok();
  rocksdb::ReadOptions ro;
  std::string upper;
  rocksdb::Slice upper_slice;
  if (window.until_ns < std::numeric_limits<int64_t>::max() && window.until_ns >= 0) {
    upper = RecordKeyAt(window.until_ns + 1);
    upper_slice = upper;
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, records));
  // Records of one window come from few processes: a local map spares the
  // shared cache's lock on every record.
  std::unordered_map<ProcessId, std::string, ProcessIdHash> comms;
  ProcessId last_id{};
  const std::string* last_comm = nullptr;
  // False to stop the scan. A block may begin before the window or hold
  // records past it, so each record's time is checked.
  auto visit = [&](ConnRecord& rec) {
    if (rec.ts_ns < window.since_ns || rec.ts_ns > window.until_ns) return true;
    if (!filter.Matches(rec)) return true;
    if (rec.proc.pid != 0) {
      ProcessId id{rec.proc.pid, rec.proc.start_ticks};
      if (!last_comm || id != last_id) {
        auto c = comms.find(id);
        if (c == comms.end()) c = comms.emplace(id, CommOf(id)).first;
        last_id = id;
        last_comm = &c->second;  // node-based map: stays valid as it grows
      }
      rec.proc.set_comm(*last_comm);
    }
    return fn(rec);
  };
  ConnRecord rec;  // reused: no allocation per record
  // A block that began up to kRecordBlockSpanNs before the window may hold
  // some of its records.
  const int64_t seek_ns =
      window.since_ns > kRecordBlockSpanNs ? window.since_ns - kRecordBlockSpanNs : 0;
  for (it->Seek(RecordKeyAt(seek_ns)); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    const int64_t key_ts = k.size() >= 8 ? static_cast<int64_t>(GetBigEndian64(k.data())) : 0;
    if (k.size() == kRecordBlockKeySize && k[kRecordKeySize] == kRecordBlockMark) {
      RecordBlockReader block(key_ts, View(it->value()));
      bool more = true;
      while (more && block.Next(&rec)) more = visit(rec);
      if (block.malformed()) corrupt->fetch_add(1, std::memory_order_relaxed);
      if (!more) break;
      continue;
    }
    // One record per key: a store written before blocks.
    if (k.size() != kRecordKeySize || !ParseRecordValue(key_ts, View(it->value()), &rec)) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!visit(rec)) break;
  }
  return FromRocks(it->status(), "cannot read records from " + options.dir);
}

Status Store::Impl::SumFlowRows(const rocksdb::ReadOptions& at, int64_t begin, int64_t end,
                                int64_t rolled_up_to, const FlowKeep& keep,
                                FlowSums* sums) const {
  FlowRowKeyParts key;
  for (const FlowSpan& span : PlanFlowSpans(begin, end, rolled_up_to)) {
    rocksdb::ReadOptions ro = at;
    const std::string upper = FlowBucketKey(span.level, span.end_ns);
    const rocksdb::Slice upper_slice(upper);
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, flows));
    for (it->Seek(FlowBucketKey(span.level, span.begin_ns)); it->Valid(); it->Next()) {
      if (!ParseFlowRowKey(View(it->key()), &key)) {
        corrupt->fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      if (keep && !keep(key.key)) continue;
      auto stats = DecodeFlowStats(View(it->value()));
      if (!stats.ok()) {
        corrupt->fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      (*sums)[key.key].Merge(*stats);
    }
    FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read flows from " + options.dir));
  }
  return Status::Ok();
}

Result<std::optional<int64_t>> Store::Impl::LastCheckpoint(const rocksdb::ReadOptions& at,
                                                           int64_t bucket_ns) const {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(at, meta));
  it->SeekForPrev(CheckpointKey(bucket_ns));
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read flow checkpoints from " + options.dir));
  if (!it->Valid()) return std::optional<int64_t>();
  // The key before may be another kind of meta key: then there is none.
  auto checkpoint = DecodeCheckpointKey(View(it->key()));
  return checkpoint.ok() ? std::optional<int64_t>(*checkpoint) : std::optional<int64_t>();
}

Result<bool> Store::Impl::OpenAtStart(const rocksdb::ReadOptions& at, int64_t first,
                                      int64_t rolled_up_to, const FlowKeep& keep,
                                      FlowSums* open) const {
  FM_ASSIGN_OR_RETURN(std::optional<int64_t> checkpoint, LastCheckpoint(at, first));
  if (!checkpoint) return false;
  // At `first` itself, its rows hold the carries; before the retention cut,
  // its rows are gone and nothing can be rebuilt.
  if (*checkpoint == first || *checkpoint < expired_before.load()) return true;
  FlowSums before;
  FM_RETURN_IF_ERROR(SumFlowRows(at, *checkpoint, first, rolled_up_to, keep, &before));
  for (const auto& [key, s] : before) {
    // Carried at the checkpoint (the earliest count is the checkpoint's),
    // opened and closed since.
    const uint64_t in = s.carried + s.connections;
    if (in <= s.closed) continue;
    FlowStats& c = (*open)[key];
    c.carried = in - s.closed;
    c.carried_from_ns = first;
    c.first_seen_ns = c.last_seen_ns = first;
  }
  return true;
}

Result<std::vector<Flow>> Store::Impl::ReadFlows(const TimeWindow& window,
                                                 const FlowKeep& keep) const {
  std::vector<Flow> out;
  if (window.since_ns > window.until_ns) return out;
  // Minute buckets [first, end) overlap the window; cover them with as few
  // (coarse) buckets as possible. The sum is the same.
  const int64_t first = std::max(FlowBucketOf(window.since_ns), expired_before.load());
  // An open-ended window ("until now", or the end of time) cannot hold flows
  // from the future: stop an hour past now (clock steps), so the plan stays
  // a handful of spans instead of millions of empty buckets.
  const int64_t horizon = RealtimeNs() + 3600 * int64_t{1'000'000'000};
  const int64_t last = FlowBucketOf(std::min(window.until_ns, horizon));
  const int64_t end = last <= std::numeric_limits<int64_t>::max() - kFlowBucketNs
                          ? last + kFlowBucketNs
                          : last;  // the bucket at the end of time is not readable
  // One snapshot for the watermarks, the checkpoint and every span: a
  // roll-up or a late delta committed meanwhile is seen everywhere or nowhere.
  const rocksdb::Snapshot* snapshot = db->GetSnapshot();
  struct Release {
    rocksdb::DB* db;
    const rocksdb::Snapshot* s;
    ~Release() { db->ReleaseSnapshot(s); }
  } release{db.get(), snapshot};
  rocksdb::ReadOptions at;
  at.snapshot = snapshot;
  auto meta_time = [&](std::string_view k) -> Result<int64_t> {
    std::string value;
    rocksdb::Status s = db->Get(at, meta, std::string(k), &value);
    if (s.IsNotFound()) return 0;
    if (!s.ok()) return FromRocks(s, "cannot read flows from " + options.dir);
    auto r = DecodeCount(value);
    return r.ok() ? static_cast<int64_t>(*r) : 0;
  };
  FM_ASSIGN_OR_RETURN(const int64_t rolled_up_to, meta_time(kMetaRolledUpToKey));

  // What was open when the window began, then everything inside it.
  FlowSums sums;
  FM_ASSIGN_OR_RETURN(const bool closes_counted, OpenAtStart(at, first, rolled_up_to, keep, &sums));
  FM_RETURN_IF_ERROR(SumFlowRows(at, first, end, rolled_up_to, keep, &sums));
  // A flow still open at the window's end was seen until then, or until
  // meshd last wrote (it would have seen the close). Stores of before
  // checkpoints did not count closes, so they cannot tell.
  int64_t seen_until = 0;
  if (closes_counted) {
    FM_ASSIGN_OR_RETURN(const int64_t watched, meta_time(kMetaWatchedUntilKey));
    seen_until = std::min(window.until_ns, watched);
  }
  out.reserve(sums.size());
  for (auto& [k, s] : sums) {
    if (s.carried + s.connections > s.closed && seen_until > s.last_seen_ns)
      s.last_seen_ns = seen_until;
    // A window's total: what the flow carried into the window is final now,
    // and adds to other flows' (see FlowStats::carried_from_ns).
    s.carried_from_ns = 0;
    out.push_back({k, s});
  }
  return out;
}

Result<std::vector<EndpointRecord>> Store::Impl::Endpoints() const {
  std::vector<EndpointRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, endpoints));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = DecodeEndpointKey(View(it->key()));
    auto e = key.ok() ? DecodeEndpointValue(*key, View(it->value()))
                      : Result<EndpointRecord>(key.status());
    if (!e.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    out.push_back(std::move(*e));
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read endpoints from " + options.dir));
  return out;
}

Result<std::optional<ProcessDetails>> Store::Impl::Process(uint32_t pid,
                                                           uint64_t start_ticks) const {
  std::string value;
  rocksdb::Status s = db->Get({}, processes, ProcessKey(pid, start_ticks), &value);
  if (s.IsNotFound()) return std::optional<ProcessDetails>();
  FM_RETURN_IF_ERROR(FromRocks(s, "cannot read a process from " + options.dir));
  auto p = DecodeProcessValue({pid, start_ticks}, value);
  if (!p.ok()) {
    corrupt->fetch_add(1, std::memory_order_relaxed);
    return p.status();
  }
  return std::optional<ProcessDetails>(std::move(p->details));
}

Result<std::vector<ProcessDetails>> Store::Impl::Processes() const {
  std::vector<ProcessDetails> out;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, processes));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto key = DecodeProcessKey(View(it->key()));
    auto p = key.ok() ? DecodeProcessValue(*key, View(it->value()))
                      : Result<StoredProcess>(key.status());
    if (!p.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    out.push_back(std::move(p->details));
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read processes from " + options.dir));
  return out;
}

}  // namespace flowmesh
