// A look of a window in the past shows who listened then: a real server
// serves a real client and exits, another process takes its port, and
// `meshctl look IP:PORT --since/--until` of the first one's time still has
// it as the root with its client, also after meshd restarts (cleanly, or
// after kill -9 with the second server gone while meshd was down).
#include <gtest/gtest.h>

#include <sstream>
#include <thread>

#include "node/common/clock.h"
#include "tests/kernel/chain_util.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

std::string FirstLine(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  return line;
}

class PastListenerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::vector<std::string> Flags() const {
    std::vector<std::string> f = {"--node-name", "fm-past", "--flush-interval", "200ms"};
    if (GetParam() == "polling")
      f.insert(f.end(), {"--probe-mode", "polling", "--probe-interval", "100ms"});
    return f;
  }
  bool Streaming() const { return GetParam() == "streaming"; }

  // `look` of the endpoint over [since, until] (RFC 3339), or of the last
  // hour when `since` is empty.
  std::string Look(const std::string& since = "", const std::string& until = "") {
    std::vector<std::string> args = {"look", endpoint_};
    if (!since.empty()) args.insert(args.end(), {"--since", since, "--until", until});
    CommandResult r = meshd_.Meshctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }
  std::string Root(const char* comm, pid_t pid) const {
    return endpoint_ + " ('" + comm + "', pgid=" + std::to_string(pid) + ") on fm-past";
  }
  // Waits until the look of now has `root` as its first line (the probe
  // and a flush have seen the listener).
  bool WaitForRoot(const std::string& root) {
    for (int i = 0; i < 50; i++) {
      if (FirstLine(Look()) == root) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  MeshdProcess meshd_;
  std::string endpoint_;
};

TEST_P(PastListenerTest, APastWindowShowsTheServerOfThatTimeWithItsClient) {
  FM_REQUIRE_ROOT();
  std::string err;
  ASSERT_TRUE(meshd_.Start(Flags(), &err)) << err;
  const std::string before = FormatRfc3339(RealtimeNs() - 1'000'000'000);

  ServerProcess first;
  ASSERT_TRUE(first.Start({"fm-first", 0, 1000, 0, 0}, &err)) << err;
  const uint16_t port = first.port();
  endpoint_ = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(WaitForRoot(Root("fm-first", first.pid()))) << Look();
  ClientLoopResult client = RunClientLoop("fm-cli", port, 3, 100);
  ASSERT_TRUE(client.ok);
  std::this_thread::sleep_for(1200ms);
  const std::string while_first = FormatRfc3339(RealtimeNs());
  std::this_thread::sleep_for(1200ms);
  const pid_t first_pid = first.pid();
  first.Stop();  // exits: its listening socket closes

  std::this_thread::sleep_for(1200ms);
  ServerProcess second;
  ASSERT_TRUE(second.Start({"fm-second", port, 1000, 0, 0}, &err)) << err;
  ASSERT_TRUE(WaitForRoot(Root("fm-second", second.pid()))) << Look();

  auto expect_past = [&](const char* when) {
    SCOPED_TRACE(when);
    std::string out = Look(before, while_first);
    EXPECT_EQ(FirstLine(out), Root("fm-first", first_pid)) << out;
    if (Streaming()) {  // a poll every 100 ms may miss a connection of a millisecond
      EXPECT_NE(out.find("└<-- 127.0.0.1 ('fm-cli', pgid=" + std::to_string(client.pid) +
                         ") on fm-past  3 conns"),
                std::string::npos)
          << out;
    }
    EXPECT_EQ(out.find("fm-second"), std::string::npos) << out;
    // Listening, after its client was done.
    out = Look(while_first, while_first);
    EXPECT_EQ(FirstLine(out), Root("fm-first", first_pid)) << out;
    // Now: the one that listens now.
    EXPECT_EQ(FirstLine(Look()), Root("fm-second", second.pid()));
  };
  expect_past("while meshd runs");

  // The history is in the store: the same after a clean restart.
  ASSERT_EQ(meshd_.Stop(), 0) << meshd_.Log();
  ASSERT_TRUE(meshd_.Start(Flags(), &err)) << err;
  expect_past("after a restart");

  // kill -9, and the second server goes while meshd is down: after the
  // restart it is the root of a window while it listened, and now nobody is.
  // The period closes at the last batch before the kill (what the store can
  // vouch for): another listener makes one after `while_second` (a poll may
  // miss short connections, never a listener that stays).
  const std::string while_second = FormatRfc3339(RealtimeNs());
  std::this_thread::sleep_for(200ms);
  ServerProcess marker;
  ASSERT_TRUE(marker.Start({"fm-marker", 0, 10, 0, 0}, &err)) << err;
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(FirstLine(Look()), Root("fm-second", second.pid()));  // flushed before the kill
  meshd_.Kill();
  const pid_t second_pid = second.pid();
  second.Stop();
  std::this_thread::sleep_for(1200ms);
  ASSERT_TRUE(meshd_.Start(Flags(), &err)) << err;
  // Nobody connected to the second server, and flows are summed per minute
  // (this window's may hold the first one's): only the history can make the
  // second the root.
  std::string out = Look(while_second, while_second);
  EXPECT_EQ(FirstLine(out), Root("fm-second", second_pid)) << out;
  // Nothing listens now; of the last hour, the second listened last.
  CommandResult eps = meshd_.Meshctl({"endpoints"});
  EXPECT_EQ(eps.out.find(endpoint_), std::string::npos) << eps.out;
  EXPECT_EQ(FirstLine(Look()), Root("fm-second", second_pid));
  out = Look(before, while_first);
  EXPECT_EQ(FirstLine(out), Root("fm-first", first_pid)) << out;
}

INSTANTIATE_TEST_SUITE_P(Modes, PastListenerTest, ::testing::Values("streaming", "polling"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace flowmesh::testing
