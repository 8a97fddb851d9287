// Opening and closing the store (column families, options, node identity)
// and the Store facade that forwards to Store::Impl.
#include "node/store/store.h"

#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/store/codec.h"
#include "node/store/merge_operators.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

constexpr const char* kRecordsCf = "records";
constexpr const char* kFlowsCf = "flows";
constexpr const char* kProcessesCf = "processes";
constexpr const char* kEndpointsCf = "endpoints";
constexpr const char* kMetaCf = "meta";
// Added after the first release: Open creates it in an older store; a
// read-only open of one without it answers with an empty listen history.
constexpr const char* kListenHistoryCf = "listen_history";

bool LockHeld(const std::string& text) {
  return text.find("lock hold by current process") != std::string::npos ||
         (text.find("lock") != std::string::npos &&
          text.find("Resource temporarily unavailable") != std::string::npos);
}

std::string OpenHint(const rocksdb::Status& s) {
  const std::string text = s.ToString();
  if (LockHeld(text))
    return "another meshd may be using it; stop that one or choose another --data-dir";
  if (text.find("Read-only file system") != std::string::npos)
    return "the file system is read-only; remount it read-write or choose another --data-dir";
  if (s.IsNoSpace() || text.find("No space left") != std::string::npos)
    return "free some space on that file system or choose another --data-dir";
  if (s.IsCorruption())
    return "the database is damaged and meshd does not repair it automatically; move the "
           "directory aside to start with an empty history";
  if (text.find("Permission denied") != std::string::npos)
    return "run meshd as a user that can write there, or choose another --data-dir";
  if (s.IsInvalidArgument() || s.IsNotSupported())
    return "it may not be a meshd store (or was written by a newer meshd); choose another "
           "--data-dir";
  return "check the disk and the directory, or choose another --data-dir";
}

// A store that exists but cannot be written (read-only or full file system)
// is still worth opening for queries; a store in use by another meshd is not.
bool ReadOnlyMayHelp(const rocksdb::Status& s, const std::string& dir) {
  std::error_code ec;
  return s.IsIOError() && !LockHeld(s.ToString()) &&
         std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", ec);
}

std::string RandomNodeId() {
  std::random_device rd;  // getrandom(2) on Linux
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 4; ++i) {
    uint32_t v = rd();
    for (int b = 0; b < 8; ++b, v >>= 4) id.push_back(kHex[v & 0xf]);
  }
  return id;
}

rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

bool IsNodeId(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

// Node id made once and kept; generation one more than last time. Synced,
// because gossip peers trust a generation never to repeat.
Status Store::Impl::LoadNodeMeta() {
  std::string value;
  rocksdb::Status rs = db->Get({}, meta, ToSlice(kMetaNodeIdKey), &value);
  if (!rs.ok() && !rs.IsNotFound()) return FromRocks(rs, "cannot read the node id");
  if (rs.ok() && IsNodeId(value)) {
    node_meta.node_id = value;
  } else {
    if (rs.ok()) FM_LOG(Warn, "store") << "stored node id is malformed; making a new one";
    node_meta.node_id = RandomNodeId();
  }
  uint64_t generation = 0;
  rs = db->Get({}, meta, ToSlice(kMetaGenerationKey), &value);
  if (rs.ok()) {
    auto g = DecodeCount(value);
    if (!g.ok())
      return Status(Status::Code::kCorruption,
                    "the node generation stored in " + options.dir +
                        " is malformed; move the directory aside to start with a new identity");
    generation = *g;
  } else if (!rs.IsNotFound()) {
    return FromRocks(rs, "cannot read the generation");
  }
  node_meta.generation = generation + 1;
  // Read-only: the next writable open will hand out this generation again;
  // acceptable, since a read-only node writes nothing for peers to confuse.
  if (!read_only_reason.empty()) return Status::Ok();
  rocksdb::WriteBatch wb;
  wb.Put(meta, ToSlice(kMetaNodeIdKey), node_meta.node_id);
  wb.Put(meta, ToSlice(kMetaGenerationKey), EncodeCount(node_meta.generation));
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return FromRocks(db->Write(wo, &wb), "cannot persist the node generation");
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  Status::Code code = Status::Code::kInternal;
  if (s.IsNotFound())
    code = Status::Code::kNotFound;
  else if (s.IsCorruption())
    code = Status::Code::kCorruption;
  else if (s.IsNoSpace())
    code = Status::Code::kResourceExhausted;
  else if (s.IsIOError())
    code = Status::Code::kIoError;
  else if (s.IsInvalidArgument() || s.IsNotSupported())
    code = Status::Code::kInvalidArgument;
  else if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete())
    code = Status::Code::kUnavailable;
  return {code, what + ": " + s.ToString()};
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.dir.empty()) return InvalidArgument("store: no data directory given (--data-dir)");
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec)
    return Status(ec == std::errc::permission_denied ? Status::Code::kPermissionDenied
                                                     : Status::Code::kIoError,
                  "cannot create store directory " + options.dir + ": " + ec.message() +
                      "; check permissions or choose another --data-dir");

  if (options.memory_bytes < kMinStoreMemoryBytes)
    return InvalidArgument("store: a memory budget of " + std::to_string(options.memory_bytes) +
                           " bytes is too small; give at least 4M (--store-memory)");

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->memory = std::make_unique<RocksMemory>(options.memory_bytes);
  const RocksMemory& memory = *impl->memory;

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.bytes_per_sync = 1 << 20;
  db_options.max_total_wal_size = 128 << 20;  // old memtables flush instead of the WAL growing
  db_options.info_log = MakeRocksLog();       // no LOG file on the data disk
  memory.Apply(&db_options);
  // Default recovery mode (point in time): after kill -9 the WAL replays up
  // to its last complete record; no repair is ever run on open.

  rocksdb::ColumnFamilyOptions records_opt = memory.ColumnFamily(ColumnFamilyKind::kRecords);
  rocksdb::ColumnFamilyOptions flows_opt = memory.ColumnFamily(ColumnFamilyKind::kFlows);
  flows_opt.merge_operator = MakeFlowStatsMerge(impl->corrupt);
  rocksdb::ColumnFamilyOptions small_opt = memory.ColumnFamily(ColumnFamilyKind::kSmall);
  rocksdb::ColumnFamilyOptions meta_opt = small_opt;
  meta_opt.merge_operator = MakeCountMerge(impl->corrupt);

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {kRecordsCf, records_opt},
      {kFlowsCf, flows_opt},
      {kProcessesCf, small_opt},
      {kEndpointsCf, small_opt},
      {kMetaCf, meta_opt},
      {kListenHistoryCf, small_opt},
      {rocksdb::kDefaultColumnFamilyName, small_opt}};
  // Every existing column family must be opened; keep ones we do not know.
  std::vector<std::string> existing;
  const bool listed = rocksdb::DB::ListColumnFamilies(db_options, options.dir, &existing).ok();
  if (listed) {
    for (const auto& name : existing)
      if (std::none_of(cfs.begin(), cfs.end(), [&](const auto& d) { return d.name == name; }))
        cfs.emplace_back(name, small_opt);
  }
  // A read-only open cannot create the history of an older store.
  std::vector<rocksdb::ColumnFamilyDescriptor> read_only_cfs = cfs;
  const bool has_history =
      listed && std::find(existing.begin(), existing.end(), kListenHistoryCf) != existing.end();
  if (!has_history)
    std::erase_if(read_only_cfs, [](const auto& d) { return d.name == kListenHistoryCf; });

  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs;
  if (options.read_only) {
    impl->read_only_reason = "opened read-only";
    rs = rocksdb::DB::OpenForReadOnly(db_options, options.dir, read_only_cfs, &impl->handles, &raw);
  } else {
    rs = rocksdb::DB::Open(db_options, options.dir, cfs, &impl->handles, &raw);
    if (!rs.ok() && ReadOnlyMayHelp(rs, options.dir)) {
      impl->handles.clear();
      rocksdb::Status ro = rocksdb::DB::OpenForReadOnly(db_options, options.dir, read_only_cfs,
                                                        &impl->handles, &raw);
      if (ro.ok()) {
        impl->read_only_reason = "cannot write (" + rs.ToString() + "); " + OpenHint(rs);
        FM_LOG(Error, "store") << "cannot open " << options.dir << " for writing: " << rs.ToString()
                               << "; answering queries read-only from what is "
                               << "stored; " << OpenHint(rs);
        rs = ro;
      }
    }
  }
  if (!rs.ok()) {
    Status st = FromRocks(rs, "cannot open store in " + options.dir);
    return Status(st.code(), st.message() + "; " + OpenHint(rs));
  }
  impl->db.reset(raw);
  impl->records = impl->handles[0];
  impl->flows = impl->handles[1];
  impl->processes = impl->handles[2];
  impl->endpoints = impl->handles[3];
  impl->meta = impl->handles[4];
  if (impl->handles[5]->GetName() == kListenHistoryCf) impl->listen_history = impl->handles[5];

  FM_RETURN_IF_ERROR(impl->LoadNodeMeta());
  FM_RETURN_IF_ERROR(impl->LoadTotalRecords());
  FM_RETURN_IF_ERROR(impl->LoadWatchedUntil());
  FM_LOG(Info, "store") << "opened " << options.dir << ": node " << impl->node_meta.node_id
                        << " generation " << impl->node_meta.generation << ", "
                        << impl->total_records.load() << " records";
  if (impl->read_only_reason.empty()) impl->StartRetentionThread();
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Impl::~Impl() {
  StopRetentionThread();
  if (!db) return;
  // A clean stop (SIGTERM) makes the last batches durable; kill -9 relies on
  // the WAL already being in the page cache.
  rocksdb::Status s;
  // Not after a failed write: syncing a WAL that failed aborts in Debian's
  // librocksdb 7.8 (an assertion), and there is nothing new in it to keep.
  if (read_only_reason.empty() && !needs_resume_) {
    // meshd watched until now: a listener the next start-up no longer sees
    // stopped after this, not after the last batch (store_listeners.cc).
    const int64_t watched = std::max(watched_until_, RealtimeNs());
    s = db->Put({}, meta, std::string(kMetaWatchedUntilKey),
                EncodeCount(static_cast<uint64_t>(watched)));
    if (s.ok()) s = db->FlushWAL(/*sync=*/true);
  }
  if (!s.ok())
    FM_LOG(Warn, "store") << "syncing the WAL of " << options.dir << ": " << s.ToString();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  handles.clear();
  s = db->Close();
  if (!s.ok()) FM_LOG(Warn, "store") << "closing " << options.dir << ": " << s.ToString();
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Status Store::Write(const Batch& batch) { return impl_->Write(batch); }

Status Store::ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                          const std::function<bool(const ConnRecord&)>& fn) const {
  return impl_->ScanRecords(window, filter, fn);
}

Result<std::vector<Flow>> Store::ReadFlows(const TimeWindow& window,
                                           const std::function<bool(const FlowKey&)>& keep) const {
  return impl_->ReadFlows(window, keep);
}

Result<std::vector<EndpointRecord>> Store::Endpoints() const { return impl_->Endpoints(); }

Result<std::vector<ListenPeriod>> Store::ListenHistory(const TimeWindow& window,
                                                       const std::optional<Endpoint>& at) const {
  return impl_->ListenHistory(window, at);
}

Status Store::ReplaceEndpoints(const std::vector<EndpointRecord>& endpoints) {
  return impl_->ReplaceEndpoints(endpoints);
}

Result<std::optional<ProcessDetails>> Store::Process(uint32_t pid, uint64_t start_ticks) const {
  return impl_->Process(pid, start_ticks);
}

Result<std::vector<ProcessDetails>> Store::Processes() const { return impl_->Processes(); }

const NodeMeta& Store::meta() const { return impl_->node_meta; }

Status Store::PutMeta(const std::string& key, const std::string& value) {
  if (!impl_->read_only_reason.empty()) return impl_->RefuseWrite();
  return FromRocks(impl_->db->Put({}, impl_->meta, UserMetaKey(key), value),
                   "cannot store " + key + " in " + impl_->options.dir);
}

Result<std::optional<std::string>> Store::GetMeta(const std::string& key) const {
  std::string value;
  rocksdb::Status s = impl_->db->Get({}, impl_->meta, UserMetaKey(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "cannot read " + key + " from " + impl_->options.dir);
  return std::optional<std::string>(std::move(value));
}

StoreStats Store::Stats() const { return impl_->Stats(); }

Result<uint64_t> Store::EnforceRetention(int64_t now_ns) { return impl_->EnforceRetention(now_ns); }

Status Store::CompactAll() { return impl_->CompactAll(); }

Store::Rocks Store::rocks() const { return {impl_->db.get(), impl_->handles}; }

bool RecordFilter::Matches(const ConnRecord& r) const {
  if (pid != 0 && r.proc.pid != pid) return false;
  if (family != 0 && r.key.family() != family) return false;
  if (!lports.empty() && std::find(lports.begin(), lports.end(), r.key.lport) == lports.end())
    return false;
  if (!rports.empty() && std::find(rports.begin(), rports.end(), r.key.rport) == rports.end())
    return false;
  return true;
}

}  // namespace flowmesh
