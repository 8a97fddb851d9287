// The listen history: who listened on which endpoint when, kept in step
// with the endpoints table by the same atomic writes, reconciled at start-up,
// expired with the flows, and read by look for windows in the past.
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <unordered_map>

#include "node/store/codec.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

std::string_view View(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

Result<ListenPeriod> ReadPeriod(const rocksdb::Iterator& it) {
  auto key = DecodeListenPeriodKey(View(it.key()));
  if (!key.ok()) return key.status();
  return DecodeListenPeriodValue(*key, View(it.value()));
}

bool SameOwner(const EndpointRecord& a, const EndpointRecord& b) {
  return a.proc.pid == b.proc.pid && a.proc.start_ticks == b.proc.start_ticks;
}

}  // namespace

std::map<std::string, EndpointOp> EndpointOps(const Batch& batch) {
  std::map<std::string, EndpointOp> ops;
  for (const auto& e : batch.endpoints_added) {
    EndpointOp& op = ops[EndpointKey(e.netns, e.addr, e.port)];
    if (!op.add || e.since_ns >= op.add->since_ns) op.add = &e;
  }
  for (const auto& e : batch.endpoints_removed) {
    EndpointOp& op = ops[EndpointKey(e.netns, e.addr, e.port)];
    if (!op.removed || e.since_ns >= op.removed_since) op.removed = &e;
    op.removed_since = op.removed->since_ns;
    op.removed_until = std::max(op.removed_until, e.until_ns);
  }
  return ops;
}

Status Store::Impl::LoadWatchedUntil() {
  std::string value;
  rocksdb::Status s = db->Get({}, meta, std::string(kMetaWatchedUntilKey), &value);
  if (s.IsNotFound()) return Status::Ok();  // a store from before the listen history
  if (!s.ok()) return FromRocks(s, "cannot read " + options.dir);
  auto t = DecodeCount(value);
  if (!t.ok()) {
    corrupt->fetch_add(1, std::memory_order_relaxed);
    return Status::Ok();  // stale periods then close at their own start
  }
  watched_until_ = watched_before_open_ = static_cast<int64_t>(*t);
  return Status::Ok();
}

void Store::Impl::StampWatched(int64_t now_ns) {
  std::lock_guard lock(write_mu_);
  if (needs_resume_ || now_ns <= watched_until_) return;
  if (db->Put({}, meta, std::string(kMetaWatchedUntilKey),
              EncodeCount(static_cast<uint64_t>(now_ns)))
          .ok())
    watched_until_ = now_ns;
}

Status Store::Impl::ScanListenPeriods(
    const std::string& prefix,
    const std::function<void(const rocksdb::Slice& key, ListenPeriod& p)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, listen_history));
  // An endpoint key's address length follows from its family byte, so the
  // keys under an endpoint's prefix are that endpoint's: prefix + since (8).
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    Result<ListenPeriod> p = ReadPeriod(*it);
    if (!p.ok()) {
      corrupt->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    fn(it->key(), *p);
  }
  return FromRocks(it->status(), "cannot read listen history from " + options.dir);
}

Result<std::vector<std::pair<std::string, ListenPeriod>>> Store::Impl::OpenPeriodsOf(
    const std::string& endpoint_key) const {
  std::vector<std::pair<std::string, ListenPeriod>> out;
  FM_RETURN_IF_ERROR(
      ScanListenPeriods(endpoint_key, [&](const rocksdb::Slice& key, ListenPeriod& p) {
        if (p.open()) out.emplace_back(key.ToString(), std::move(p));
      }));
  return out;
}

Status Store::Impl::RecordListenPeriods(const std::map<std::string, EndpointOp>& ops,
                                        int64_t batch_time, rocksdb::WriteBatch* wb) {
  auto put = [&](const std::string& key, const ListenPeriod& p) {
    wb->Put(listen_history, key, EncodeListenPeriodValue(p));
  };
  for (const auto& [key, op] : ops) {
    FM_ASSIGN_OR_RETURN(auto open, OpenPeriodsOf(key));
    const int64_t stopped = op.removed_until > 0 ? op.removed_until : batch_time;
    if (op.removed) {
      // Everything open there stopped: a listener that came back in the
      // same batch (op.adds()) opens a new period below.
      for (auto& [k, p] : open) {
        p.until_ns = std::max(p.endpoint.since_ns, stopped);
        put(k, p);
      }
      // Nothing open: it listened and stopped between two flushes (the
      // aggregator then sends the removal alone). Its start is known unless
      // it predates this meshd (since 0), and then it was closed at start-up.
      const EndpointRecord& r = *op.removed;
      if (open.empty() && !op.add && r.since_ns > 0)
        put(ListenPeriodKey(r.netns, r.addr, r.port, r.since_ns),
            ListenPeriod{r, std::max(r.since_ns, stopped)});
      open.clear();
    }
    if (!op.add) continue;
    const EndpointRecord& a = *op.add;
    if (!op.adds()) {  // listened and stopped within this batch
      put(ListenPeriodKey(a.netns, a.addr, a.port, a.since_ns),
          ListenPeriod{a, std::max(a.since_ns, stopped)});
      continue;
    }
    // A port that changed hands between two reports (no removal seen) comes
    // with the first owner's start; the new owner began when this batch saw
    // it, as far as the store can tell.
    EndpointRecord start = a;
    for (const auto& [k, p] : open)
      if (p.endpoint.since_ns == a.since_ns && p.endpoint.proc.known() && !SameOwner(p.endpoint, a))
        start.since_ns = std::max(a.since_ns + 1, batch_time);
    bool continues = false;
    for (auto& [k, p] : open) {
      // The same listen (its owner learned since): rewritten below.
      if (p.endpoint.since_ns == start.since_ns) continue;
      if (SameOwner(p.endpoint, start)) {
        // The same process reported again (a seed after a restart): its
        // period goes on rather than restarting at the report.
        continues = true;
        continue;
      }
      // The port changed hands without a removal seen: the old owner
      // listened at most until the new one did.
      p.until_ns = std::max(p.endpoint.since_ns, start.since_ns);
      put(k, p);
    }
    if (!continues)
      put(ListenPeriodKey(start.netns, start.addr, start.port, start.since_ns),
          ListenPeriod{start, 0});
  }
  return Status::Ok();
}

Status Store::Impl::ReconcileListenPeriods(const std::vector<EndpointRecord>& live,
                                           rocksdb::WriteBatch* wb) {
  std::unordered_map<std::string, const EndpointRecord*> by_key;
  for (const EndpointRecord& e : live) by_key[EndpointKey(e.netns, e.addr, e.port)] = &e;
  std::unordered_map<std::string, bool> continued;  // endpoint key -> an open period goes on
  FM_RETURN_IF_ERROR(ScanListenPeriods("", [&](const rocksdb::Slice& key, ListenPeriod& p) {
    if (!p.open()) return;
    const std::string endpoint_key =
        EndpointKey(p.endpoint.netns, p.endpoint.addr, p.endpoint.port);
    auto now = by_key.find(endpoint_key);
    if (now != by_key.end() && SameOwner(*now->second, p.endpoint)) {
      continued[endpoint_key] = true;  // one period across the restart
      return;
    }
    // Gone while meshd was down (or replaced by another owner). It stopped
    // somewhere between the last time the store vouches meshd watched (its
    // last batch, its clean shutdown, or the retention thread's stamp) and
    // now. The earlier bound is the one we can stand behind: a window after
    // it and before the restart does not claim a listener nobody saw.
    p.until_ns = std::max(p.endpoint.since_ns, watched_before_open_);
    wb->Put(listen_history, key, EncodeListenPeriodValue(p));
  }));
  for (const auto& [endpoint_key, e] : by_key)
    if (!continued.count(endpoint_key))
      wb->Put(listen_history, ListenPeriodKey(e->netns, e->addr, e->port, e->since_ns),
              EncodeListenPeriodValue(ListenPeriod{*e, 0}));
  return Status::Ok();
}

Status Store::Impl::ExpireListenPeriods(int64_t cut_ns) {
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, listen_history));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    Result<ListenPeriod> p = ReadPeriod(*it);
    if (p.ok() && (p->open() || p->until_ns >= cut_ns)) continue;
    wb.Delete(listen_history, it->key());  // ended before the cut, or unreadable and so useless
  }
  FM_RETURN_IF_ERROR(FromRocks(it->status(), "cannot read listen history from " + options.dir));
  if (wb.Count() == 0) return Status::Ok();
  return FromRocks(db->Write({}, &wb), "retention cannot delete listen history in " + options.dir);
}

Result<std::vector<ListenPeriod>> Store::Impl::ListenHistory(
    const TimeWindow& window, const std::optional<Endpoint>& at) const {
  std::vector<ListenPeriod> out;
  if (listen_history == nullptr) return out;  // read-only open of an older store
  FM_RETURN_IF_ERROR(ScanListenPeriods("", [&](const rocksdb::Slice&, ListenPeriod& p) {
    if (!p.Overlaps(window)) return;
    if (at && (p.endpoint.port != at->port || !ListenerServes(p.endpoint.addr, at->addr))) return;
    out.push_back(std::move(p));
  }));
  std::stable_sort(out.begin(), out.end(), [](const ListenPeriod& a, const ListenPeriod& b) {
    return a.endpoint.since_ns > b.endpoint.since_ns;
  });
  return out;
}

}  // namespace flowmesh
