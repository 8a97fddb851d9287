// meshd's history end to end: real connections through a client -> app ->
// store chain on loopback, then `meshctl flows`, `endpoints` and `look` must
// show exactly that chain, also after a restart; and kill -9 during heavy
// ingest keeps every record that was flushed, without duplicates.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "tests/kernel/chain_util.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

std::string At(const JsonLine& l, const std::string& key) {
  auto it = l.find(key);
  return it == l.end() ? "<missing " + key + ">" : it->second;
}

std::vector<JsonLine> FlowLines(const MeshdProcess& meshd, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"flows", "--json", "--since", "10m"};
  args.insert(args.end(), extra.begin(), extra.end());
  CommandResult r = meshd.Meshctl(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<JsonLine> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    JsonLine l;
    if (ParseFlatJson(line, &l))
      out.push_back(std::move(l));
    else
      ADD_FAILURE() << "not a JSON line: " << line;
  }
  return out;
}

// The records of one side of one hop: direction, the process, exact bytes.
struct Side {
  std::string direction;
  pid_t pid;
  std::string comm;
  uint16_t lport;  // 0 = any
  uint16_t rport;  // 0 = any
  size_t tx, rx;
};

size_t CountSide(const std::vector<JsonLine>& lines, const Side& s, std::string* mismatch) {
  size_t n = 0;
  for (const JsonLine& l : lines) {
    if (At(l, "direction") != s.direction) continue;
    if (s.lport && At(l, "lport") != std::to_string(s.lport)) continue;
    if (s.rport && At(l, "rport") != std::to_string(s.rport)) continue;
    if (At(l, "pid") != std::to_string(s.pid) || At(l, "comm") != s.comm ||
        At(l, "tx_bytes") != std::to_string(s.tx) || At(l, "rx_bytes") != std::to_string(s.rx) ||
        At(l, "laddr") != "127.0.0.1" || At(l, "raddr") != "127.0.0.1") {
      *mismatch = "pid " + At(l, "pid") + " comm " + At(l, "comm") + " tx " + At(l, "tx_bytes") +
                  " rx " + At(l, "rx_bytes");
      continue;
    }
    n++;
  }
  return n;
}

std::string LineWith(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) return line;
  return "";
}

class HistoryTest : public ::testing::Test {
 protected:
  static constexpr int kCalls = 5;
  static constexpr size_t kRequest = 100, kAppReply = 3000, kUpstreamRequest = 500,
                          kStoreReply = 2000;

  bool StartChain() {
    std::string err;
    if (!store_.Start({"fm-store", 0, kStoreReply, 0, 0}, &err) ||
        !app_.Start({"fm-app", 0, kAppReply, store_.port(), kUpstreamRequest}, &err)) {
      ADD_FAILURE() << err;
      return false;
    }
    return true;
  }

  // Every record of the chain, once each, with the right processes and bytes.
  void ExpectChainFlows(pid_t client) {
    std::vector<JsonLine> lines;
    std::string mismatch;
    const Side sides[] = {
        {"active", client, "fm-cli", 0, app_.port(), kRequest, kAppReply},
        {"passive", app_.pid(), "fm-app", app_.port(), 0, kAppReply, kRequest},
        {"active", app_.pid(), "fm-app", 0, store_.port(), kUpstreamRequest, kStoreReply},
        {"passive", store_.pid(), "fm-store", store_.port(), 0, kStoreReply, kUpstreamRequest},
    };
    // Closes arrive within milliseconds; the flush interval is 200 ms.
    for (int attempt = 0; attempt < 50; attempt++) {
      lines = FlowLines(meshd_, {});
      size_t complete = 0;
      for (const Side& s : sides) complete += CountSide(lines, s, &mismatch) == kCalls;
      if (complete == 4) break;
      std::this_thread::sleep_for(100ms);
    }
    for (const Side& s : sides)
      EXPECT_EQ(CountSide(lines, s, &mismatch), static_cast<size_t>(kCalls))
          << s.direction << " " << s.comm << " (last mismatch: " << mismatch << ")";
  }

  void ExpectEndpoints() {
    CommandResult r = meshd_.Meshctl({"endpoints", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, JsonLine> by_port;
    for (JsonLine& l : ParseFlatJsonArray(r.out)) by_port[At(l, "port")] = l;
    ASSERT_TRUE(by_port.count(std::to_string(app_.port()))) << r.out;
    ASSERT_TRUE(by_port.count(std::to_string(store_.port()))) << r.out;
    const JsonLine& a = by_port[std::to_string(app_.port())];
    EXPECT_EQ(At(a, "pid"), std::to_string(app_.pid()));
    EXPECT_EQ(At(a, "pgid"), std::to_string(app_.pid()));
    EXPECT_EQ(At(a, "comm"), "fm-app");
    EXPECT_EQ(At(a, "addr"), "127.0.0.1");
    const JsonLine& s = by_port[std::to_string(store_.port())];
    EXPECT_EQ(At(s, "pid"), std::to_string(store_.pid()));
    EXPECT_EQ(At(s, "comm"), "fm-store");
    // The text form lists the same.
    r = meshd_.Meshctl({"endpoints"});
    EXPECT_NE(LineWith(r.out, "127.0.0.1:" + std::to_string(app_.port())).find("fm-app"),
              std::string::npos)
        << r.out;
  }

  // look from the app's endpoint: the client above it, the store below it.
  void ExpectLook(pid_t client) {
    const std::string app = "127.0.0.1:" + std::to_string(app_.port());
    const std::string store = "127.0.0.1:" + std::to_string(store_.port());
    const std::string conns = std::to_string(kCalls) + " conns";
    CommandResult r = meshd_.Meshctl({"look", app});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::istringstream in(r.out);
    std::string root;
    std::getline(in, root);
    EXPECT_EQ(
        root.rfind(app + " ('fm-app', pgid=" + std::to_string(app_.pid()) + ") on fm-node", 0), 0u)
        << r.out;
    std::string up = LineWith(
        r.out, "└<-- 127.0.0.1 ('fm-cli', pgid=" + std::to_string(client) + ") on fm-node");
    EXPECT_NE(up.find(conns), std::string::npos) << r.out;
    std::string down =
        LineWith(r.out, "└--> " + store + " ('fm-store', pgid=" + std::to_string(store_.pid()) +
                            ") on fm-node");
    EXPECT_NE(down.find(conns), std::string::npos) << r.out;
    // Exactly one client and one dependency: nothing else touched the app.
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;

    r = meshd_.Meshctl({"look", app, "--direction", "out", "--format", "json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\"target\": \"" + app + "\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"comm\": \"fm-store\""), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("fm-cli"), std::string::npos) << "--direction out shows no clients\n"
                                                       << r.out;
    EXPECT_NE(r.out.find("\"connections\": " + std::to_string(kCalls)), std::string::npos) << r.out;

    // A window that ends before the traffic shows the root without edges.
    r = meshd_.Meshctl({"look", app, "--since", "2h", "--until", "1h"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.find("fm-cli"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("fm-store"), std::string::npos) << r.out;
  }

  MeshdProcess meshd_;
  ServerProcess store_, app_;
};

TEST_F(HistoryTest, LocalChainShowsInFlowsEndpointsAndLookAlsoAfterRestart) {
  FM_REQUIRE_ROOT();
  std::string err;
  const std::vector<std::string> flags = {"--node-name", "fm-node", "--flush-interval", "200ms"};
  ASSERT_TRUE(meshd_.Start(flags, &err)) << err;
  ASSERT_TRUE(StartChain());
  ClientLoopResult client = RunClientLoop("fm-cli", app_.port(), kCalls, kRequest);
  ASSERT_TRUE(client.ok);
  ASSERT_EQ(client.done, static_cast<uint64_t>(kCalls));

  ExpectChainFlows(client.pid);
  ExpectEndpoints();
  ExpectLook(client.pid);

  // Filters: -p selects one process, -D one remote port.
  std::vector<JsonLine> only_client = FlowLines(meshd_, {"-p", std::to_string(client.pid)});
  EXPECT_EQ(only_client.size(), static_cast<size_t>(kCalls));
  std::vector<JsonLine> to_store = FlowLines(meshd_, {"-D", std::to_string(store_.port())});
  EXPECT_EQ(to_store.size(), static_cast<size_t>(kCalls));

  // The same answers from the store after a clean restart.
  ASSERT_EQ(meshd_.Stop(), 0) << meshd_.Log();
  ASSERT_TRUE(meshd_.Start(flags, &err)) << err;
  ExpectChainFlows(client.pid);
  ExpectEndpoints();
  ExpectLook(client.pid);

  CommandResult st = meshd_.Meshctl({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0);
  EXPECT_NE(st.out.find("\"records\":"), std::string::npos) << st.out;
}

// (lport, rport, direction, ts): one record.
using RecordId = std::tuple<std::string, std::string, std::string, std::string>;

std::vector<RecordId> Ids(const std::vector<JsonLine>& lines) {
  std::vector<RecordId> out;
  for (const JsonLine& l : lines)
    out.emplace_back(At(l, "lport"), At(l, "rport"), At(l, "direction"), At(l, "ts"));
  return out;
}

TEST(HistoryCrashTest, KillNineDuringIngestKeepsEveryFlushedRecordOnce) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  const std::vector<std::string> flags = {"--node-name", "fm-crash", "--flush-interval", "100ms"};
  ASSERT_TRUE(meshd.Start(flags, &err)) << err;
  ServerProcess sink;
  ASSERT_TRUE(sink.Start({"fm-sink", 0, 10, 0, 0}, &err)) << err;
  const std::string port = std::to_string(sink.port());

  ClientLoopResult load = StartClientLoop("fm-load", sink.port(), 1000000, 10, 3000);
  std::this_thread::sleep_for(1500ms);
  // What meshctl shows has been flushed (a query flushes first).
  std::vector<RecordId> before = Ids(FlowLines(meshd, {"-D", port}));
  meshd.Kill();
  // The kill lands mid-ingest: the load is still running.
  EXPECT_EQ(waitpid(load.pid, nullptr, WNOHANG), 0) << "the load ended before the kill";
  load = FinishClientLoop(load);
  EXPECT_GT(load.done, 1000u) << "the load did not reach thousands of connections";
  ASSERT_GT(before.size(), 500u) << "too few records before the kill to mean anything";

  ASSERT_TRUE(meshd.Start(flags, &err)) << err;
  EXPECT_EQ(meshd.Log().find("repair"), std::string::npos) << meshd.Log();
  std::vector<RecordId> after = Ids(FlowLines(meshd, {"-D", port}));
  std::set<RecordId> unique(after.begin(), after.end());
  EXPECT_EQ(unique.size(), after.size()) << "duplicated records after the restart";
  size_t missing = 0;
  for (const RecordId& id : before) missing += unique.count(id) == 0;
  EXPECT_EQ(missing, 0u) << "of " << before.size() << " records flushed before kill -9";
  EXPECT_GE(after.size(), before.size());

  // And it carries on recording.
  ClientLoopResult more = RunClientLoop("fm-after", sink.port(), 20, 10);
  ASSERT_TRUE(more.ok);
  size_t seen = 0;
  for (int i = 0; i < 50 && seen < 20; i++) {
    seen = FlowLines(meshd, {"-p", std::to_string(more.pid)}).size();
    if (seen < 20) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(seen, 20u);
  std::printf(
      "kill -9 test: %llu connections of load, %zu records shown before the kill, %zu "
      "after the restart\n",
      static_cast<unsigned long long>(load.done), before.size(), after.size());
}

}  // namespace
}  // namespace flowmesh::testing
