// The scatter-gather with a bound on requests in flight (the map's scatter
// to a thousand members): never more than N out, every target answered, the
// next sent as one completes (from the completing thread), slow members
// timed out, and nothing sent after the whole scatter's deadline.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "node/mesh/scatter_gather.h"

namespace flowmesh::mesh {
namespace {

using namespace std::chrono_literals;
using Gather = ScatterGather<std::string, std::string>;

std::vector<Gather::Target> Targets(int n) {
  std::vector<Gather::Target> out;
  for (int i = 0; i < n; i++)
    out.push_back({"m" + std::to_string(i) + ":1", "q" + std::to_string(i)});
  return out;
}

TEST(MeshScatterBounded, NeverMoreThanNInFlightAndEveryoneAnswered) {
  std::atomic<int> in_flight{0}, most{0};
  std::mutex mu;
  std::set<std::thread::id> senders;
  Gather::Sender send = [&](const Address& to, std::string request, int64_t, Gather::Done done) {
    int now = ++in_flight;
    for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
    }
    {
      std::lock_guard lock(mu);
      senders.insert(std::this_thread::get_id());
    }
    std::thread([&in_flight, to, request, done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + std::hash<std::string>{}(to) % 5));
      --in_flight;
      done("answer of " + to + " to " + request);
    }).detach();
  };
  std::vector<int64_t> latency;
  auto replies = Gather::Run(Targets(60), send, 1'000'000'000, nullptr,
                             ScatterLimits{4, 5'000'000'000, &latency});
  EXPECT_LE(most.load(), 4);
  EXPECT_EQ(most.load(), 4) << "the bound is used, not only respected";
  ASSERT_EQ(replies.size(), 60u);
  for (int i = 0; i < 60; i++) {
    ASSERT_TRUE(replies[i].has_value() && replies[i]->ok()) << i;
    EXPECT_EQ(**replies[i], "answer of m" + std::to_string(i) + ":1 to q" + std::to_string(i));
    EXPECT_GT(latency[i], 0) << i;
  }
  // The next request went out from the thread that completed one.
  EXPECT_GT(senders.size(), 1u);
}

TEST(MeshScatterBounded, SlowMembersTimeOutAndTheRestStillAnswer) {
  const int64_t hop = 50'000'000;
  Gather::Sender send = [](const Address& to, std::string, int64_t timeout_ns, Gather::Done done) {
    const bool slow = to.rfind("m3", 0) == 0;  // m3, m30..m39
    std::thread([slow, timeout_ns, done] {
      if (slow) {
        // What the transport does: it times the exchange out itself.
        std::this_thread::sleep_for(std::chrono::nanoseconds(timeout_ns));
        return done(Unavailable("query to member timed out"));
      }
      std::this_thread::sleep_for(2ms);
      done(std::string("ok"));
    }).detach();
  };
  auto start = std::chrono::steady_clock::now();
  auto replies = Gather::Run(Targets(40), send, hop, nullptr, ScatterLimits{8, 2'000'000'000});
  auto took = std::chrono::steady_clock::now() - start;
  int timed_out = 0;
  for (size_t i = 0; i < replies.size(); i++) {
    ASSERT_TRUE(replies[i].has_value()) << i;
    if (!replies[i]->ok()) {
      timed_out++;
      EXPECT_NE(replies[i]->status().message().find("timed out"), std::string::npos);
    }
  }
  EXPECT_EQ(timed_out, 11);
  EXPECT_LT(took, 1s) << "slow members cost their hop timeout, not the whole deadline";
}

TEST(MeshScatterBounded, NothingIsSentAfterTheWholeDeadline) {
  std::atomic<int> sent{0};
  Gather::Sender send = [&](const Address&, std::string, int64_t timeout_ns, Gather::Done) {
    sent++;
    EXPECT_LE(timeout_ns, 100'000'000) << "a request's timeout ends with the scatter's";
  };  // never answers
  auto start = std::chrono::steady_clock::now();
  auto replies =
      Gather::Run(Targets(6), send, 1'000'000'000, nullptr, ScatterLimits{2, 100'000'000});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(sent.load(), 2);
  EXPECT_LT(took, 1500ms);
  ASSERT_EQ(replies.size(), 6u);
  EXPECT_FALSE(replies[0].has_value());  // sent, never answered: the caller says what that means
  EXPECT_FALSE(replies[1].has_value());
  for (int i = 2; i < 6; i++) {
    ASSERT_TRUE(replies[i].has_value()) << i;
    EXPECT_EQ(replies[i]->status().message(), kDeadlineError);
  }
}

TEST(MeshScatterBounded, AnInlineSenderNeitherRecursesNorDeadlocks) {
  int depth = 0, deepest = 0;
  Gather::Sender send = [&](const Address& to, std::string, int64_t, Gather::Done done) {
    deepest = std::max(deepest, ++depth);
    done("ok " + to);  // answers before send returns, on the caller's thread
    --depth;
  };
  auto replies =
      Gather::Run(Targets(5000), send, 1'000'000'000, nullptr, ScatterLimits{1, 5'000'000'000});
  ASSERT_EQ(replies.size(), 5000u);
  for (const auto& r : replies) ASSERT_TRUE(r.has_value() && r->ok());
  EXPECT_EQ(deepest, 1);
}

TEST(MeshScatterBounded, ALateAnswerAfterTheCallerReturnedIsHarmless) {
  std::vector<Gather::Done> held;
  std::mutex mu;
  Gather::Sender send = [&](const Address&, std::string, int64_t, Gather::Done done) {
    std::lock_guard lock(mu);
    held.push_back(std::move(done));
  };
  auto replies =
      Gather::Run(Targets(3), send, 1'000'000'000, nullptr, ScatterLimits{1, 50'000'000});
  ASSERT_EQ(replies.size(), 3u);
  std::lock_guard lock(mu);
  ASSERT_EQ(held.size(), 1u);
  held[0](std::string("late"));  // sends nothing more, writes nowhere returned
  EXPECT_EQ(held.size(), 1u);
}

}  // namespace
}  // namespace flowmesh::mesh
