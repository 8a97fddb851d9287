// Store queries: records in a time window, flows summed over the buckets of a
// window, endpoints and processes. Malformed values are counted and skipped.
#include <unordered_map>

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
  for (it->Seek(RecordKeyAt(window.since_ns)); it->Valid(); it->Next()) {
    auto key = DecodeRecordKey(View(it->key()));
    auto rec = key.ok() ? DecodeRecordValue(key->ts_ns, View(it->value()))
                        : Result<ConnRecord>(key.status());
    if (!rec.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (!filter.Matches(*rec)) continue;
    if (rec->proc.pid != 0) {
      ProcessId id{rec->proc.pid, rec->proc.start_ticks};
      auto c = comms.find(id);
      if (c == comms.end()) c = comms.emplace(id, CommOf(id)).first;
      rec->proc.set_comm(c->second);
    }
    if (!fn(*rec)) break;
  }
  return FromRocks(it->status(), "cannot read records from " + options.dir);
}

Result<std::vector<Flow>> Store::Impl::ReadFlows(
    const TimeWindow& window, const std::function<bool(const FlowKey&)>& keep) const {
  std::vector<Flow> out;
  if (window.since_ns > window.until_ns) return out;
  rocksdb::ReadOptions ro;
  std::string upper;
  rocksdb::Slice upper_slice;
  const int64_t last_bucket = FlowBucketOf(window.until_ns);
  if (last_bucket <= std::numeric_limits<int64_t>::max() - kFlowBucketNs) {
    upper = BucketKey(last_bucket + kFlowBucketNs);
    upper_slice = upper;
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, flows));
  std::unordered_map<FlowKey, FlowStats, FlowKeyHash> sums;
  for (it->Seek(BucketKey(FlowBucketOf(window.since_ns))); it->Valid(); it->Next()) {
    auto key = DecodeFlowRowKey(View(it->key()));
    if (!key.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (keep && !keep(key->key)) continue;
    auto stats = DecodeFlowStats(View(it->value()));
    if (!stats.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    sums[key->key].Merge(*stats);
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read flows from " + options.dir));
  out.reserve(sums.size());
  for (auto& [k, s] : sums) out.push_back({k, s});
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
