// Flusher: drains and writes on an interval and on demand, keeps a failed
// batch pending and retries it, bounds what it keeps (dropping the oldest),
// and writes once more when stopped.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "node/store/flusher.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

// The aggregator's side: each drain hands out what was queued since the last.
class FakeSource {
 public:
  void Add(int records, int64_t first_ts) {
    std::lock_guard lock(mu_);
    for (int i = 0; i < records; ++i)
      next_.records.push_back(MakeRecord(first_ts + i, 1, static_cast<uint16_t>(40000 + i), 80));
  }
  void AddFlow(int64_t bucket, uint64_t connections) {
    std::lock_guard lock(mu_);
    next_.flows.push_back({bucket, MakeFlowKey(1, 80), MakeStats(connections, 0, bucket)});
  }
  void AddCheckpoint(int64_t bucket) {
    std::lock_guard lock(mu_);
    next_.checkpoints.push_back(bucket);
  }
  Batch Drain() {
    std::lock_guard lock(mu_);
    Batch b = std::move(next_);
    next_ = Batch{};
    return b;
  }
  Flusher::DrainFn fn() {
    return [this] { return Drain(); };
  }

 private:
  std::mutex mu_;
  Batch next_;
};

// The store's side: records what it was given, fails while `fail` is set.
class FakeSink {
 public:
  std::atomic<bool> fail{false};
  std::atomic<int> calls{0};
  std::atomic<int> concurrent{0};
  std::atomic<bool> overlapped{false};
  std::vector<Batch> written;
  Flusher::WriteFn fn() {
    return [this](const Batch& b) {
      if (concurrent.fetch_add(1) != 0) overlapped = true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      ++calls;
      Status s =
          fail ? Status(Status::Code::kResourceExhausted, "store write failed in /x: disk full")
               : Status::Ok();
      if (s.ok()) {
        std::lock_guard lock(mu);
        written.push_back(b);
      }
      concurrent.fetch_sub(1);
      return s;
    };
  }
  std::mutex mu;
};

FlusherOptions Manual(size_t max_pending = 1'000'000) {
  return {.interval_ns = 0, .max_pending_records = max_pending};
}

TEST(StoreFlusher, FlushNowWritesWhatWasDrained) {
  FakeSource src;
  FakeSink sink;
  Flusher f(Manual(), src.fn(), sink.fn());
  ASSERT_TRUE(f.FlushNow().ok());
  EXPECT_EQ(sink.calls, 0) << "nothing drained, nothing written";
  src.Add(3, kT0);
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 1u);
  EXPECT_EQ(sink.written[0].records.size(), 3u);
  FlusherStats st = f.Stats();
  EXPECT_EQ(st.flushes, 1u);
  EXPECT_EQ(st.records_written, 3u);
  EXPECT_EQ(st.pending_records, 0u);
}

TEST(StoreFlusher, ABatchBeingWrittenCountsAsPending) {
  // Drained from the aggregator but not in the store yet: whoever waits for
  // "nothing pending" (a benchmark, a query's flush) must not see 0 while a
  // slow write still holds the records.
  FakeSource src;
  Flusher* self = nullptr;
  uint64_t pending_during_write = 0;
  Flusher f(Manual(), src.fn(), [&](const Batch&) {
    pending_during_write = self->Stats().pending_records;
    return Status::Ok();
  });
  self = &f;
  src.Add(5, kT0);
  ASSERT_TRUE(f.FlushNow().ok());
  EXPECT_EQ(pending_during_write, 5u);
  EXPECT_EQ(f.Stats().pending_records, 0u);
}

TEST(StoreFlusher, FailedBatchStaysPendingAndIsWrittenInOrderLater) {
  FakeSource src;
  FakeSink sink;
  Flusher f(Manual(), src.fn(), sink.fn());
  sink.fail = true;
  src.Add(2, kT0);
  EXPECT_FALSE(f.FlushNow().ok());
  src.Add(2, kT0 + 100);
  Status s = f.FlushNow();
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
  FlusherStats st = f.Stats();
  EXPECT_EQ(st.write_errors, 2u);
  EXPECT_EQ(st.pending_records, 4u);
  EXPECT_EQ(st.last_error, "store write failed in /x: disk full");
  EXPECT_EQ(st.flushes, 0u);

  sink.fail = false;
  src.Add(2, kT0 + 200);
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 1u);
  const auto& recs = sink.written[0].records;
  ASSERT_EQ(recs.size(), 6u);
  for (size_t i = 1; i < recs.size(); ++i) EXPECT_LT(recs[i - 1].ts_ns, recs[i].ts_ns);
  st = f.Stats();
  EXPECT_EQ(st.pending_records, 0u);
  EXPECT_EQ(st.records_written, 6u);
  EXPECT_EQ(st.last_error, "");
  EXPECT_EQ(st.dropped_records, 0u);
}

// Only a written batch goes back for its memory to be reused; a failed one
// stays pending, whole.
TEST(StoreFlusher, HandsBackOnlyWrittenBatches) {
  FakeSource src;
  FakeSink sink;
  std::vector<size_t> recycled;
  Flusher f(Manual(), src.fn(), sink.fn(),
            [&](Batch&& b) { recycled.push_back(b.records.size()); });
  src.Add(3, kT0);
  sink.fail = true;
  EXPECT_FALSE(f.FlushNow().ok());
  EXPECT_TRUE(recycled.empty());
  sink.fail = false;
  src.Add(2, kT0 + 10);
  ASSERT_TRUE(f.FlushNow().ok());
  EXPECT_EQ(recycled, std::vector<size_t>{5});
  ASSERT_EQ(sink.written.size(), 1u);
  EXPECT_EQ(sink.written[0].records.size(), 5u);
}

TEST(StoreFlusher, DropsTheOldestRecordsPastTheBound) {
  FakeSource src;
  FakeSink sink;
  Flusher f(Manual(/*max_pending=*/5), src.fn(), sink.fn());
  sink.fail = true;
  for (int i = 0; i < 3; ++i) {
    src.Add(3, kT0 + i * 100);
    (void)f.FlushNow();
  }
  FlusherStats st = f.Stats();
  EXPECT_EQ(st.pending_records, 5u);
  EXPECT_EQ(st.dropped_records, 4u);
  sink.fail = false;
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 1u);
  const auto& recs = sink.written[0].records;
  ASSERT_EQ(recs.size(), 5u);
  // Kept: the last two of the second drain and all of the third.
  EXPECT_EQ(recs.front().ts_ns, kT0 + 100 + 1);
  EXPECT_EQ(recs.back().ts_ns, kT0 + 200 + 2);
}

TEST(StoreFlusher, PendingFlowDeltasAreSummedPerBucketAndKey) {
  FakeSource src;
  FakeSink sink;
  Flusher f(Manual(), src.fn(), sink.fn());
  sink.fail = true;
  for (int i = 0; i < 10; ++i) {
    src.AddFlow(kT0, 1);
    src.AddFlow(kT0 + kMin, 2);
    (void)f.FlushNow();
  }
  sink.fail = false;
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 1u);
  const auto& flows = sink.written[0].flows;
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0].bucket_ns, kT0);
  EXPECT_EQ(flows[0].stats.connections, 10u);
  EXPECT_EQ(flows[1].stats.connections, 20u);
}

// A checkpoint vouches that its carries are written: it stays pending with
// them through failed writes, and goes when flow deltas had to be dropped.
TEST(StoreFlusher, CheckpointsStayWithTheirCarriesAndGoWhenFlowsAreDropped) {
  FakeSource src;
  FakeSink sink;
  Flusher f(Manual(/*max_pending=*/3), src.fn(), sink.fn());
  sink.fail = true;
  src.AddFlow(kT0, 1);
  src.AddCheckpoint(kT0);
  (void)f.FlushNow();
  src.AddFlow(kT0 + kMin, 1);
  src.AddCheckpoint(kT0 + kMin);
  (void)f.FlushNow();
  sink.fail = false;
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 1u);
  EXPECT_EQ(sink.written[0].checkpoints, (std::vector<int64_t>{kT0, kT0 + kMin}));

  sink.fail = true;
  for (int i = 0; i < 4; ++i) {
    src.AddFlow(kT0 + (2 + i) * kMin, 1);
    src.AddCheckpoint(kT0 + (2 + i) * kMin);
    (void)f.FlushNow();
  }
  EXPECT_EQ(f.Stats().dropped_flow_deltas, 1u);
  sink.fail = false;
  src.AddCheckpoint(kT0 + 10 * kMin);  // after the drop: its carries are all here
  ASSERT_TRUE(f.FlushNow().ok());
  ASSERT_EQ(sink.written.size(), 2u);
  EXPECT_EQ(sink.written[1].flows.size(), 3u);
  EXPECT_EQ(sink.written[1].checkpoints, (std::vector<int64_t>{kT0 + 10 * kMin}));
}

TEST(StoreFlusher, ThreadFlushesEveryIntervalAndStopFlushesOnceMore) {
  FakeSource src;
  FakeSink sink;
  Flusher f({.interval_ns = 10'000'000}, src.fn(), sink.fn());
  for (int i = 0; i < 200 && sink.written.size() < 3; ++i) {
    src.Add(1, kT0 + i);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  f.Stop();
  EXPECT_GE(f.Stats().flushes, 3u);
  int calls = sink.calls;
  src.Add(1, kT0 + 1000);
  f.Stop();  // idempotent: no second final flush
  EXPECT_EQ(sink.calls, calls);
}

TEST(StoreFlusher, StopWritesTheLastBatchWithoutWaitingForTheInterval) {
  FakeSource src;
  FakeSink sink;
  auto f = std::make_unique<Flusher>(FlusherOptions{.interval_ns = 3600'000'000'000}, src.fn(),
                                     sink.fn());
  src.Add(4, kT0);
  auto start = std::chrono::steady_clock::now();
  f.reset();  // what SIGTERM does
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_EQ(sink.written.size(), 1u);
  EXPECT_EQ(sink.written[0].records.size(), 4u);
}

// The aggregator kicks once a batch's worth is pending: the thread writes it
// then, not at the end of an hour-long interval.
TEST(StoreFlusher, KickWritesBeforeTheInterval) {
  FakeSource src;
  FakeSink sink;
  Flusher f({.interval_ns = 3600'000'000'000}, src.fn(), sink.fn());
  for (int round = 1; round <= 3; ++round) {
    src.Add(5, kT0 + round * 10);
    f.Kick();
    f.Kick();  // a second kick before the flush is the same flush
    for (int i = 0; i < 2000 && f.Stats().flushes < static_cast<uint64_t>(round); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(f.Stats().flushes, static_cast<uint64_t>(round));
    EXPECT_EQ(f.Stats().records_written, 5u * round);
  }
  f.Stop();
  EXPECT_EQ(sink.written.size(), 3u);
}

TEST(StoreFlusher, FlushNowFromManyThreadsIsSerialised) {
  FakeSource src;
  FakeSink sink;
  Flusher f({.interval_ns = 1'000'000}, src.fn(), sink.fn());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        src.Add(1, kT0 + t * 1000 + i);
        (void)f.FlushNow();
      }
    });
  for (auto& t : threads) t.join();
  f.Stop();
  EXPECT_FALSE(sink.overlapped) << "two writes ran at once";
  EXPECT_EQ(f.Stats().records_written, 200u);
}

TEST(StoreFlusher, WritesIntoARealStore) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  FakeSource src;
  {
    Flusher f(Manual(), src.fn(), Flusher::WriteTo(store.get()));
    src.Add(10, kT0);
    ASSERT_TRUE(f.FlushNow().ok());
    src.Add(5, kT0 + kSec);
  }  // the destructor's final flush
  EXPECT_EQ(store->Stats().records, 15u);
  EXPECT_EQ(ScanAll(*store).size(), 15u);
}

}  // namespace
}  // namespace flowmesh
