// The flush loop between the aggregator and the store: every interval, or
// sooner when kicked (the aggregator does once a batch's worth of records is
// pending, so heavy churn costs a bounded batch, not a second's worth), it
// drains a Batch and writes it. While writes fail (disk full, read-only) the
// batch stays pending and grows, up to a bound past which the oldest records
// are dropped and counted; the probe never waits on the disk.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "node/common/status.h"
#include "node/flow/flow.h"

namespace flowmesh {

class Store;

struct FlusherOptions {
  int64_t interval_ns = 1'000'000'000;     // --flush-interval; 0 = no thread, FlushNow only
  size_t max_pending_records = 1'000'000;  // also bounds pending flow deltas
};

struct FlusherStats {
  uint64_t flushes = 0;  // successful writes of a non-empty batch
  uint64_t records_written = 0;
  uint64_t pending_records = 0;  // drained but not yet written
  uint64_t dropped_records = 0;  // oldest pending records given up while writes failed
  uint64_t dropped_flow_deltas = 0;
  uint64_t write_errors = 0;
  std::string last_error;  // "" when the last write succeeded
};

class Flusher {
 public:
  using DrainFn = std::function<Batch()>;               // e.g. the aggregator's TakeBatch
  using WriteFn = std::function<Status(const Batch&)>;  // Store::Write, or a fake in tests
  // Gets each batch once it is written (the aggregator's Recycle); may be null.
  using RecycleFn = std::function<void(Batch&&)>;

  // Writes to `store`, which must outlive the Flusher.
  static WriteFn WriteTo(Store* store);

  Flusher(FlusherOptions options, DrainFn drain, WriteFn write, RecycleFn recycle = nullptr);
  ~Flusher();  // Stop()
  Flusher(const Flusher&) = delete;
  Flusher& operator=(const Flusher&) = delete;

  // Drains and writes now, on the caller's thread (queries that must see the
  // latest records, SIGTERM). Serialised with the background flushes.
  Status FlushNow();
  // Wakes the thread for a flush now rather than at the end of the interval.
  // Any thread; cheap, never waits for the flush. Ignored while writes fail:
  // a failing store is retried once an interval, not at every kick.
  void Kick();
  // Stops the thread, then flushes one last time. Idempotent.
  void Stop();
  FlusherStats Stats() const;

 private:
  Status FlushLocked();
  void AppendPending(Batch&& more);
  void TrimPending();
  void Loop();

  const FlusherOptions options_;
  const DrainFn drain_;
  const WriteFn write_;
  const RecycleFn recycle_;

  std::mutex flush_mu_;  // one flush at a time; guards pending_
  Batch pending_;
  // Written under flush_mu_; atomic so Kick can read it without the lock.
  std::atomic<bool> failing_{false};
  uint64_t streak_errors_ = 0;
  uint64_t streak_dropped_ = 0;

  mutable std::mutex stats_mu_;
  FlusherStats stats_;

  std::mutex thread_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace flowmesh
