// The one scatter-gather of the mesh: answers come back in the targets'
// order whichever thread delivers them, errors stay per target, and a sender
// that never calls back costs the timeout plus the guard, not forever.
#include "node/mesh/scatter_gather.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace flowmesh::mesh {
namespace {

using namespace std::chrono_literals;
using Gather = ScatterGather<std::string, std::string>;

TEST(MeshScatterGather, AnswersAndErrorsComeBackPerTargetInOrder) {
  std::vector<std::string> sent;
  Gather::Sender send = [&](const Address& to, std::string request, int64_t timeout_ns,
                            Gather::Done done) {
    sent.push_back(to + " " + request);
    EXPECT_EQ(timeout_ns, 1'000'000'000);
    if (to == "b:1") return done(Unavailable("refused by b"));
    // Out of order and from other threads, as the mesh thread answers.
    std::thread([to, request, done] {
      std::this_thread::sleep_for(to == "a:1" ? 30ms : 1ms);
      done("answer of " + to + " to " + request);
    }).detach();
  };
  bool meanwhile = false;
  auto replies = Gather::Run({{"a:1", "q1"}, {"b:1", "q2"}, {"c:1", "q3"}}, send, 1'000'000'000,
                             [&] { meanwhile = true; });
  EXPECT_TRUE(meanwhile);
  EXPECT_EQ(sent, (std::vector<std::string>{"a:1 q1", "b:1 q2", "c:1 q3"}));
  ASSERT_EQ(replies.size(), 3u);
  ASSERT_TRUE(replies[0].has_value() && replies[0]->ok());
  EXPECT_EQ(**replies[0], "answer of a:1 to q1");
  ASSERT_TRUE(replies[1].has_value());
  EXPECT_FALSE(replies[1]->ok());
  EXPECT_EQ(replies[1]->status().message(), "refused by b");
  ASSERT_TRUE(replies[2].has_value() && replies[2]->ok());
  EXPECT_EQ(**replies[2], "answer of c:1 to q3");
}

TEST(MeshScatterGather, ASenderThatNeverCallsBackIsBoundedByTheDeadline) {
  Gather::Done kept;  // never called: held so the callback is not destroyed either
  Gather::Sender send = [&](const Address& to, std::string, int64_t, Gather::Done done) {
    if (to == "silent:1") {
      kept = std::move(done);
      return;
    }
    done(std::string("here"));
  };
  auto start = std::chrono::steady_clock::now();
  auto replies = Gather::Run({{"silent:1", "q"}, {"quick:1", "q"}}, send, 100'000'000);
  auto took = std::chrono::steady_clock::now() - start;
  // The timeout (100 ms) plus the one-second guard, and not much more.
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 3s);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_FALSE(replies[0].has_value());
  ASSERT_TRUE(replies[1].has_value() && replies[1]->ok());
  EXPECT_EQ(**replies[1], "here");
  // A late answer after the wait gave up lands nowhere harmful.
  kept(std::string("too late"));
}

TEST(MeshScatterGather, NoTargetsRunsMeanwhileAndReturnsAtOnce) {
  bool meanwhile = false;
  auto start = std::chrono::steady_clock::now();
  auto replies = Gather::Run(
      {}, [](const Address&, std::string, int64_t, Gather::Done) { FAIL() << "nothing to send"; },
      5'000'000'000, [&] { meanwhile = true; });
  EXPECT_TRUE(replies.empty());
  EXPECT_TRUE(meanwhile);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

}  // namespace
}  // namespace flowmesh::mesh
