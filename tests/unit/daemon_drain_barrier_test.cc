// The queries' read barrier against a fake probe thread: a query waits for
// a collection that began after it, waiters share rounds, the bound and the
// probe's absence answer anyway, and a timeout is counted in the metrics.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "node/daemon/daemon_metrics.h"
#include "node/daemon/drain_barrier.h"

namespace flowmesh {
namespace {

using namespace std::chrono_literals;
using Outcome = DrainBarrier::Outcome;

// A probe thread in miniature: Wake() hands out tickets and cuts the wait
// short; each round serves the tickets handed out before its collection.
class FakeProbe {
 public:
  explicit FakeProbe(DrainBarrier& barrier) : barrier_(barrier) {}
  ~FakeProbe() { StopThread(); }

  uint64_t Wake() {
    std::lock_guard lock(mu_);
    wake_cv_.notify_all();
    return ++tickets_;
  }
  void StartThread() {
    barrier_.Open([this] { return Wake(); });
    thread_ = std::thread([this] {
      while (running_) {
        uint64_t serving;
        {
          std::unique_lock lock(mu_);
          wake_cv_.wait_for(lock, 200ms, [&] { return tickets_ > served_ || !running_; });
          serving = tickets_;
        }
        std::this_thread::sleep_for(2ms);  // the collection, kernel check, tick
        served_ = serving;
        rounds_++;
        barrier_.RoundDone(serving);
      }
      barrier_.Close();
    });
  }
  void StopThread() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      running_ = false;
      wake_cv_.notify_all();
    }
    thread_.join();
  }
  uint64_t rounds() const { return rounds_; }

 private:
  DrainBarrier& barrier_;
  std::mutex mu_;
  std::condition_variable wake_cv_;
  uint64_t tickets_ = 0;
  std::atomic<uint64_t> served_{0};
  std::atomic<uint64_t> rounds_{0};
  std::atomic<bool> running_{true};
  std::thread thread_;
};

TEST(DrainBarrier, WithoutAProbeThreadAQueryDoesNotWait) {
  DrainBarrier barrier(1'000'000'000);
  EXPECT_EQ(barrier.Wait(), Outcome::kNoProbe);
  EXPECT_EQ(barrier.stats().waits, 0u);
}

TEST(DrainBarrier, AQueryWaitsForARoundAndWakesTheProbe) {
  DrainBarrier barrier(1'000'000'000);
  FakeProbe probe(barrier);
  probe.StartThread();
  std::this_thread::sleep_for(10ms);  // the probe thread waits, 200 ms at a time
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(barrier.Wait(), Outcome::kDrained);
  // Woken, not at the end of its 200 ms wait.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_EQ(barrier.stats().waits, 1u);
  EXPECT_EQ(barrier.stats().timeouts, 0u);
  EXPECT_EQ(barrier.waited().Snapshot().count, 1u);
}

TEST(DrainBarrier, ARoundWhoseCollectionBeganBeforeTheQueryDoesNotAnswerIt) {
  DrainBarrier barrier(50'000'000);
  uint64_t tickets = 0;
  barrier.Open([&] { return ++tickets; });
  barrier.RoundDone(0);  // a round that collected before any query
  std::future<Outcome> waiting = std::async(std::launch::async, [&] { return barrier.Wait(); });
  std::this_thread::sleep_for(5ms);
  barrier.RoundDone(0);  // still before the query's ticket
  EXPECT_EQ(waiting.wait_for(10ms), std::future_status::timeout);
  barrier.RoundDone(1);
  EXPECT_EQ(waiting.get(), Outcome::kDrained);
}

TEST(DrainBarrier, QueriesWaitingTogetherShareRounds) {
  DrainBarrier barrier(1'000'000'000);
  FakeProbe probe(barrier);
  probe.StartThread();
  std::vector<std::future<Outcome>> queries;
  for (int i = 0; i < 16; i++)
    queries.push_back(std::async(std::launch::async, [&] { return barrier.Wait(); }));
  for (auto& q : queries) EXPECT_EQ(q.get(), Outcome::kDrained);
  // Each round takes 2 ms and serves every ticket handed out before it;
  // a round per query would be 16 (the threads' starts spread them a bit).
  EXPECT_LT(probe.rounds(), 16u);
  EXPECT_EQ(barrier.stats().waits, 16u);
}

TEST(DrainBarrier, TheBoundAnswersAnywayAndIsCounted) {
  DrainBarrier barrier(20'000'000);
  barrier.Open([] { return uint64_t{1}; });  // a probe thread that never comes round
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(barrier.Wait(), Outcome::kTimedOut);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 20ms);
  EXPECT_EQ(barrier.stats().timeouts, 1u);
  std::string text = RenderMetrics(NodeStatus{}, LookLatency{}, barrier);
  EXPECT_NE(text.find("\nflowmesh_look_drain_timeouts_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nflowmesh_look_drain_seconds_count 1\n"), std::string::npos) << text;
}

TEST(DrainBarrier, AProbeThreadThatStopsReleasesItsWaiters) {
  DrainBarrier barrier(5'000'000'000);
  barrier.Open([] { return uint64_t{1}; });
  std::future<Outcome> waiting = std::async(std::launch::async, [&] { return barrier.Wait(); });
  std::this_thread::sleep_for(5ms);
  barrier.Close();
  ASSERT_EQ(waiting.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(waiting.get(), Outcome::kNoProbe);
  EXPECT_EQ(barrier.Wait(), Outcome::kNoProbe);
  EXPECT_EQ(barrier.stats().timeouts, 0u);
}

}  // namespace
}  // namespace flowmesh
