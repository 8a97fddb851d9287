// Pooled connections across the lab (issue 13): a database on one host, an
// app pool on a second host connected before meshd started, another on a
// third connected after, all trading a few bytes every half second. A look
// whose window starts after every pool opened must show both pools, from
// every host, in both directions: the server's clients, and each client
// host's dependencies. Before windows counted open connections, it showed the
// server with no clients.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "node/common/clock.h"
#include "node/flow/flow.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/pool_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLab = "fmwin";
std::string Host(int i) { return std::string(kLab) + "-" + std::to_string(i); }
std::string Addr(int i) { return "10.213.0." + std::to_string(i); }

class WindowLabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    CommandResult up = RunCommand({"/bin/bash", LAB_SH, "up", kLab, "3"}, 30s);
    ASSERT_EQ(up.exit_code, 0) << up.err;
    char tmpl[] = "/tmp/fm-winlab-XXXXXX";
    dir_ = mkdtemp(tmpl);
    key_ = dir_ + "/cluster.key";
    CommandResult k = WriteClusterKey(key_);
    ASSERT_EQ(k.exit_code, 0) << k.err;
  }

  void TearDown() override {
    pools_.clear();
    nodes_.clear();
    RunCommand({"/bin/bash", LAB_SH, "down", kLab}, 30s);
    if (!dir_.empty()) RunCommand({"/bin/rm", "-rf", dir_});
  }

  void StartNode(int i) {
    auto n = std::make_unique<MeshdProcess>();
    n->set_netns(Host(i));
    std::string err;
    ASSERT_TRUE(n->Start({"--node-name", "h" + std::to_string(i), "--netns", "self", "--bind",
                          Addr(i) + ":7946", "--cluster-key-file", key_, "--join",
                          Addr(1) + ":7946", "--flush-interval", "200ms",
                          // Open connections' bytes read every 5 s, not 30: the window
                          // below is asked 15 s after it began.
                          "--account-interval", "5s"},
                         &err))
        << err;
    nodes_[i] = std::move(n);
  }

  PoolProcess& Pool(int host, std::vector<std::string> args) {
    auto p = std::make_unique<PoolProcess>();
    EXPECT_TRUE(p->Start(std::move(args), Host(host)));
    pools_.push_back(std::move(p));
    return *pools_.back();
  }

  std::string dir_, key_;
  std::map<int, std::unique_ptr<MeshdProcess>> nodes_;
  std::vector<std::unique_ptr<PoolProcess>> pools_;
};

TEST_F(WindowLabTest, PoolsOpenedBeforeTheWindowShowFromEveryHostBothWays) {
  const std::string db = Addr(1) + ":5432";
  PoolProcess& server = Pool(1, {"serve", "--listen", db, "--name", "fm-db"});
  ASSERT_FALSE(server.WaitLine("listening").empty());
  // Connected before any meshd started: seen only by the start-up snapshot.
  PoolProcess& early = Pool(2, {"clients", "--connect", db, "--count", "3", "--name", "fm-app-a"});
  ASSERT_FALSE(early.WaitLine("ready").empty());
  for (int i = 1; i <= 3; i++) StartNode(i);
  PoolProcess& late = Pool(3, {"clients", "--connect", db, "--count", "2", "--name", "fm-app-b"});
  ASSERT_FALSE(late.WaitLine("ready").empty());

  // A window that starts in the minute after every open: no pool opened in it.
  const int64_t since = FlowBucketOf(RealtimeNs()) + kFlowBucketNs;
  SleepUntilNs(since + 15'000'000'000LL);  // a tick, counter readings and a flush in it
  const std::string window = FormatRfc3339(since);

  std::string first_tree;
  for (int viewer = 1; viewer <= 3; viewer++) {
    SCOPED_TRACE("asked on h" + std::to_string(viewer));
    // The server's side: both pools, every connection, none new, bytes moving.
    CommandResult r = nodes_[viewer]->Meshctl({"look", db, "--since", window, "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    LookEdge a = EdgeOf(r.out, "fm-app-a"), b = EdgeOf(r.out, "fm-app-b");
    EXPECT_TRUE(a.found && a.connections == 3 && a.opened == 0 && a.bytes > 0) << a << "\n" << r.out;
    EXPECT_TRUE(b.found && b.connections == 2 && b.opened == 0 && b.bytes > 0) << b << "\n" << r.out;
    CommandResult text = nodes_[viewer]->Meshctl({"look", db, "--since", window});
    EXPECT_NE(text.out.find("on h2  3 conns (0 new)"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("on h3  2 conns (0 new)"), std::string::npos) << text.out;
    // The same tree from every host (the bytes grow between asks, so compare
    // the lines without them).
    std::string shape;
    for (size_t at = 0, nl; (nl = text.out.find('\n', at)) != std::string::npos; at = nl + 1) {
      std::string line = text.out.substr(at, nl - at);
      shape += line.substr(0, line.find(" conn")) + "\n";
    }
    if (viewer == 1)
      first_tree = shape;
    else
      EXPECT_EQ(shape, first_tree);
    // The client hosts' side: what their processes depend on, in the window.
    for (int client = 2; client <= 3; client++) {
      CommandResult out = nodes_[viewer]->Meshctl({"look", Addr(client), "--since", window});
      ASSERT_EQ(out.exit_code, 0) << out.err;
      EXPECT_NE(out.out.find("└--> " + db + " ('fm-db', pgid=" + std::to_string(server.pid()) +
                             ") on h1  " + (client == 2 ? "3" : "2") + " conns (0 new)"),
                std::string::npos)
          << out.out;
    }
  }
}

}  // namespace
}  // namespace flowmesh::testing
