// Long-lived connections in windows, with real meshd (streaming and polling
// side by side), real sockets and a real store: two pooled clients of one
// server, one connected before meshd started, held across three minute
// buckets with traffic only in the middle one. Each bucket's window must show
// both, active, with bytes only in the middle bucket, exactly what the
// clients sent, and polling must give the same answers as streaming.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "node/common/clock.h"
#include "node/flow/flow.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/pool_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

TEST(WindowKernelTest, HeldConnectionsAreActiveInEveryBucketWithBytesWhereTheyMoved) {
  FM_REQUIRE_ROOT();
  const uint16_t port = FreePort(AF_INET);
  const std::string server = "127.0.0.1:" + std::to_string(port);
  PoolProcess db, early, late;
  ASSERT_TRUE(db.Start({"serve", "--listen", server, "--name", "fm-pooldb"}));
  ASSERT_FALSE(db.WaitLine("listening").empty());

  // Bucket k is the one everything starts in: leave time to start in it.
  if (RealtimeNs() % kFlowBucketNs > kFlowBucketNs - 15'000'000'000LL)
    SleepUntilNs(FlowBucketOf(RealtimeNs()) + kFlowBucketNs + 1'000'000'000LL);
  const int64_t k = FlowBucketOf(RealtimeNs());

  // Connected before meshd: found by the start-up snapshot.
  ASSERT_TRUE(early.Start({"clients", "--connect", server, "--name", "fm-early", "--quiet"}));
  ASSERT_FALSE(early.WaitLine("ready").empty());
  MeshdProcess streaming, polling;
  std::string err;
  ASSERT_TRUE(streaming.Start({"--node-name", "fm-stream", "--bind",
                               "127.0.0.1:" + std::to_string(FreePort(AF_INET)),
                               "--flush-interval", "200ms", "--account-interval", "1s"},
                              &err))
      << err;
  ASSERT_TRUE(polling.Start({"--node-name", "fm-poll", "--bind",
                             "127.0.0.1:" + std::to_string(FreePort(AF_INET)), "--probe-mode",
                             "polling", "--probe-interval", "1s", "--flush-interval", "200ms"},
                            &err))
      << err;
  // Connected after meshd: an open each probe sees.
  ASSERT_TRUE(late.Start({"clients", "--connect", server, "--name", "fm-late", "--quiet"}));
  ASSERT_FALSE(late.WaitLine("ready").empty());
  std::this_thread::sleep_for(2s);  // the poller's next poll finds it
  ASSERT_EQ(FlowBucketOf(RealtimeNs()), k) << "the set-up ran into the next minute";

  // Bucket k+1: a few bytes every half second for 20 s, then quiet again.
  SleepUntilNs(k + kFlowBucketNs + 2'000'000'000LL);
  early.Toggle();
  late.Toggle();
  std::this_thread::sleep_for(20s);
  const uint64_t early_sent = early.Toggle();
  const uint64_t late_sent = late.Toggle();
  ASSERT_GT(early_sent, 0u);
  ASSERT_GT(late_sent, 0u);

  // Into bucket k+2, long enough for a tick, a counter reading and a flush.
  SleepUntilNs(k + 2 * kFlowBucketNs + 4'000'000'000LL);

  for (const MeshdProcess* meshd : {&streaming, &polling}) {
    SCOPED_TRACE(meshd == &streaming ? "streaming" : "polling");
    auto look = [&](int bucket) {
      const int64_t since = k + bucket * kFlowBucketNs;
      CommandResult r = meshd->Meshctl({"look", server, "--format", "json", "--since",
                                        FormatRfc3339(since), "--until",
                                        FormatRfc3339(since + kFlowBucketNs - 1'000'000'000LL)});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      return r.out;
    };
    const std::string b0 = look(0), b1 = look(1), b2 = look(2);
    // Bucket k: both held, idle (no bytes, no segments); the early one
    // opened before meshd.
    EXPECT_EQ(EdgeOf(b0, "fm-early"), (LookEdge{true, 1, 0, 0, 0})) << b0;
    // The late one's handshake segments may be counted where it opened.
    LookEdge late_b0 = EdgeOf(b0, "fm-late");
    late_b0.segs = 0;
    EXPECT_EQ(late_b0, (LookEdge{true, 1, 1, 0, 0})) << b0;
    // Bucket k+1: open through it, and the bytes: the pings and their echoes,
    // in segments both ways.
    for (auto [comm, sent] : {std::pair{"fm-early", early_sent}, {"fm-late", late_sent}}) {
      LookEdge e = EdgeOf(b1, comm);
      EXPECT_TRUE(e.found && e.connections == 1 && e.opened == 0) << e << "\n" << b1;
      EXPECT_EQ(e.bytes, 2 * sent) << b1;
      EXPECT_GE(e.segs, 2 * sent / 16) << "at least a segment per ping and per echo\n" << b1;
    }
    // Bucket k+2: still open, idle.
    EXPECT_EQ(EdgeOf(b2, "fm-early"), (LookEdge{true, 1, 0, 0, 0})) << b2;
    EXPECT_EQ(EdgeOf(b2, "fm-late"), (LookEdge{true, 1, 0, 0, 0})) << b2;
    // The text says how many opened in the window.
    CommandResult text = meshd->Meshctl({"look", server, "--since", FormatRfc3339(k), "--until",
                                         FormatRfc3339(k + 3 * kFlowBucketNs)});
    EXPECT_NE(text.out.find("('fm-early', pgid=" + std::to_string(early.pid()) +
                            ") on fm-" + (meshd == &streaming ? "stream" : "poll") +
                            "  1 conn (0 new)"),
              std::string::npos)
        << text.out;
    // From the client's side too: what fm-early depends on, in the last bucket.
    CommandResult out = meshd->Meshctl({"look", "127.0.0.1", "--format", "json", "--since",
                                        FormatRfc3339(k + 2 * kFlowBucketNs)});
    EXPECT_NE(out.out.find("\"comm\": \"fm-early\""), std::string::npos) << out.out;
    EXPECT_NE(out.out.find("\"port\": " + std::to_string(port)), std::string::npos) << out.out;
  }
  CommandResult st = streaming.Meshctl({"status"});
  EXPECT_NE(st.out.find("account_dumps"), std::string::npos) << st.out;
}

}  // namespace
}  // namespace flowmesh::testing
