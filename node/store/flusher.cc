// The flush loop: drain, write, keep what failed, drop the oldest past a bound.
#include "node/store/flusher.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "node/common/log.h"
#include "node/common/sched.h"
#include "node/store/store.h"

namespace flowmesh {
namespace {

struct BucketKeyHash {
  size_t operator()(const std::pair<int64_t, FlowKey>& k) const noexcept {
    return FlowKeyHash{}(k.second) ^ static_cast<size_t>(k.first);
  }
};

// Deltas of the same (bucket, key) summed, first-appearance order kept, so a
// long outage costs one delta per flow and bucket, not one per flush.
void CoalesceFlows(std::vector<FlowDelta>* flows) {
  std::unordered_map<std::pair<int64_t, FlowKey>, size_t, BucketKeyHash> index;
  std::vector<FlowDelta> out;
  out.reserve(flows->size());
  for (auto& d : *flows) {
    auto [it, fresh] = index.try_emplace({d.bucket_ns, d.key}, out.size());
    if (fresh)
      out.push_back(std::move(d));
    else
      out[it->second].stats.Merge(d.stats);
  }
  *flows = std::move(out);
}

template <typename T>
void Append(std::vector<T>* to, std::vector<T>&& from) {
  to->insert(to->end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

}  // namespace

Flusher::WriteFn Flusher::WriteTo(Store* store) {
  return [store](const Batch& b) { return store->Write(b); };
}

Flusher::Flusher(FlusherOptions options, DrainFn drain, WriteFn write, RecycleFn recycle)
    : options_(options),
      drain_(std::move(drain)),
      write_(std::move(write)),
      recycle_(std::move(recycle)) {
  if (options_.interval_ns > 0) thread_ = std::thread([this] { Loop(); });
}

Flusher::~Flusher() { Stop(); }

void Flusher::Stop() {
  {
    std::lock_guard lock(thread_mu_);
    if (stopped_) return;
    stopped_ = stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  Status s = FlushNow();
  if (!s.ok()) FM_LOG(Warn, "store") << "last flush before stopping failed: " << s.message();
}

void Flusher::Loop() {
  SetThreadName("flusher");
  // A write of a second's records is a burst of CPU that the pending batch
  // can wait for; it need not preempt the workload (see SetThreadBatchPolicy).
  SetThreadBatchPolicy("flusher");
  std::unique_lock lock(thread_mu_);
  const auto interval = std::chrono::nanoseconds(options_.interval_ns);
  for (;;) {
    cv_.wait_for(lock, interval, [this] { return stop_ || kicked_; });
    if (stop_) break;
    kicked_ = false;
    lock.unlock();
    (void)FlushNow();  // errors are counted and logged in FlushLocked
    lock.lock();
  }
}

void Flusher::Kick() {
  if (failing_.load(std::memory_order_relaxed)) return;
  {
    std::lock_guard lock(thread_mu_);
    if (kicked_) return;
    kicked_ = true;
  }
  cv_.notify_all();
}

Status Flusher::FlushNow() {
  std::lock_guard lock(flush_mu_);
  return FlushLocked();
}

void Flusher::AppendPending(Batch&& more) {
  Append(&pending_.records, std::move(more.records));
  Append(&pending_.flows, std::move(more.flows));
  CoalesceFlows(&pending_.flows);
  Append(&pending_.processes, std::move(more.processes));
  Append(&pending_.endpoints_added, std::move(more.endpoints_added));
  Append(&pending_.endpoints_removed, std::move(more.endpoints_removed));
  Append(&pending_.checkpoints, std::move(more.checkpoints));
}

void Flusher::TrimPending() {
  const size_t cap = options_.max_pending_records;
  uint64_t dropped = 0, dropped_flows = 0;
  if (pending_.records.size() > cap) {
    dropped = pending_.records.size() - cap;
    pending_.records.erase(pending_.records.begin(), pending_.records.begin() + dropped);
  }
  if (pending_.flows.size() > cap) {
    // Oldest buckets go first, as with records.
    std::stable_sort(
        pending_.flows.begin(), pending_.flows.end(),
        [](const FlowDelta& a, const FlowDelta& b) { return a.bucket_ns < b.bucket_ns; });
    dropped_flows = pending_.flows.size() - cap;
    pending_.flows.erase(pending_.flows.begin(), pending_.flows.begin() + dropped_flows);
  }
  // The dropped deltas may be the checkpoint's carries: it vouches for
  // nothing now, and windows count from the checkpoint before it.
  if (dropped_flows > 0) pending_.checkpoints.clear();
  if (dropped == 0 && dropped_flows == 0) return;
  if (streak_dropped_ == 0)
    FM_LOG(Warn, "store") << "store writes keep failing: dropping the oldest pending records ("
                          << cap << " kept)";
  streak_dropped_ += dropped;
  std::lock_guard lock(stats_mu_);
  stats_.dropped_records += dropped;
  stats_.dropped_flow_deltas += dropped_flows;
}

Status Flusher::FlushLocked() {
  Batch drained = drain_ ? drain_() : Batch{};
  if (pending_.empty())
    pending_ = std::move(drained);
  else
    AppendPending(std::move(drained));
  if (pending_.empty()) return Status::Ok();
  {
    // In flight is pending too: status must not read 0 pending while a
    // write (a compaction's stall can make it slow) still holds records the
    // store's count does not have yet.
    std::lock_guard lock(stats_mu_);
    stats_.pending_records = pending_.records.size();
  }

  Status s = write_(pending_);
  if (s.ok()) {
    if (failing_)
      FM_LOG(Info, "store") << "store writes work again after " << streak_errors_
                            << " failed flushes; " << streak_dropped_ << " records were dropped";
    failing_ = false;
    streak_errors_ = streak_dropped_ = 0;
    {
      std::lock_guard lock(stats_mu_);
      ++stats_.flushes;
      stats_.records_written += pending_.records.size();
      stats_.pending_records = 0;
      stats_.last_error.clear();
    }
    if (recycle_) recycle_(std::move(pending_));
    pending_ = Batch{};
    return s;
  }
  pending_.retried = true;
  if (!failing_)  // once per error streak, not once per interval
    FM_LOG(Error, "store") << s.message() << "; keeping up to " << options_.max_pending_records
                           << " records pending";
  failing_ = true;
  ++streak_errors_;
  TrimPending();
  std::lock_guard lock(stats_mu_);
  ++stats_.write_errors;
  stats_.last_error = s.message();
  stats_.pending_records = pending_.records.size();
  return s;
}

FlusherStats Flusher::Stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

}  // namespace flowmesh
