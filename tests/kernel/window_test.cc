// Long-lived connections in windows, with real meshd (streaming and polling
// side by side), real sockets and a real store: two pooled clients of one
// server, one connected before meshd started, held across three minute
// buckets with traffic only in the middle one. Each bucket's window must show
// both, active, with bytes only in the middle bucket, exactly what the
// clients sent, and polling must give the same answers as streaming.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <regex>
#include <string>
#include <thread>

#include "node/flow/flow.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

void SleepUntil(int64_t unix_ns) {
  const int64_t d = unix_ns - NowNs();
  if (d > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(d));
}

// RFC 3339 with seconds, as meshctl's --since/--until take it.
std::string Rfc3339(int64_t unix_ns) {
  time_t t = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

// tests/tools/pool.py in its own process, its stdout read line by line.
class Pool {
 public:
  ~Pool() { Stop(); }
  bool Start(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      close(fds[0]);
      args.insert(args.begin(), {"python3", POOL_PY});
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    fd_ = fds[0];
    return pid_ > 0;
  }
  // The next line that starts with `prefix`, or "" after the timeout.
  std::string WaitLine(const std::string& prefix, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.rfind(prefix, 0) == 0) return line;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char chunk[256];
        ssize_t n = read(fd_, chunk, sizeof chunk);
        if (n <= 0) return "";
        buf_.append(chunk, static_cast<size_t>(n));
      }
    }
    return "";
  }
  // Toggles pinging; returns the payload bytes sent so far.
  uint64_t Toggle() {
    kill(pid_, SIGUSR1);
    std::string line = WaitLine("sent ");
    return line.empty() ? 0 : std::stoull(line.substr(5));
  }
  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (fd_ >= 0) close(fd_), fd_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
};

struct Edge {
  bool found = false;
  uint64_t connections = 0, opened = 0, bytes = 0;
  bool operator==(const Edge&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Edge& e) {
  return os << (e.found ? "" : "(missing) ") << e.connections << " conns, " << e.opened
            << " opened, " << e.bytes << " bytes";
}

// The client node of process `comm` in look's JSON and its edge's stats.
Edge ClientEdge(const std::string& json, const std::string& comm) {
  Edge e;
  size_t at = json.find("\"comm\": \"" + comm + "\"");
  if (at == std::string::npos) return e;
  std::smatch m;
  std::string rest = json.substr(at);
  static const std::regex stats(
      R"re("stats": \{"connections": (\d+), "opened": (\d+), "bytes_tx": (\d+), "bytes_rx": (\d+))re");
  if (!std::regex_search(rest, m, stats)) return e;
  e.found = true;
  e.connections = std::stoull(m[1]);
  e.opened = std::stoull(m[2]);
  e.bytes = std::stoull(m[3]) + std::stoull(m[4]);
  return e;
}

TEST(WindowKernelTest, HeldConnectionsAreActiveInEveryBucketWithBytesWhereTheyMoved) {
  FM_REQUIRE_ROOT();
  const uint16_t port = FreePort(AF_INET);
  const std::string server = "127.0.0.1:" + std::to_string(port);
  Pool db, early, late;
  ASSERT_TRUE(db.Start({"serve", "--listen", server, "--name", "fm-pooldb"}));
  ASSERT_FALSE(db.WaitLine("listening").empty());

  // Bucket k is the one everything starts in: leave time to start in it.
  if (NowNs() % kFlowBucketNs > kFlowBucketNs - 15'000'000'000LL)
    SleepUntil(FlowBucketOf(NowNs()) + kFlowBucketNs + 1'000'000'000LL);
  const int64_t k = FlowBucketOf(NowNs());

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
  ASSERT_EQ(FlowBucketOf(NowNs()), k) << "the set-up ran into the next minute";

  // Bucket k+1: a few bytes every half second for 20 s, then quiet again.
  SleepUntil(k + kFlowBucketNs + 2'000'000'000LL);
  early.Toggle();
  late.Toggle();
  std::this_thread::sleep_for(20s);
  const uint64_t early_sent = early.Toggle();
  const uint64_t late_sent = late.Toggle();
  ASSERT_GT(early_sent, 0u);
  ASSERT_GT(late_sent, 0u);

  // Into bucket k+2, long enough for a tick, a counter reading and a flush.
  SleepUntil(k + 2 * kFlowBucketNs + 4'000'000'000LL);

  for (const MeshdProcess* meshd : {&streaming, &polling}) {
    SCOPED_TRACE(meshd == &streaming ? "streaming" : "polling");
    auto look = [&](int bucket) {
      const int64_t since = k + bucket * kFlowBucketNs;
      CommandResult r = meshd->Meshctl({"look", server, "--format", "json", "--since",
                                        Rfc3339(since), "--until",
                                        Rfc3339(since + kFlowBucketNs - 1'000'000'000LL)});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      return r.out;
    };
    const std::string b0 = look(0), b1 = look(1), b2 = look(2);
    // Bucket k: both held, idle; the early one opened before meshd.
    EXPECT_EQ(ClientEdge(b0, "fm-early"), (Edge{true, 1, 0, 0})) << b0;
    EXPECT_EQ(ClientEdge(b0, "fm-late"), (Edge{true, 1, 1, 0})) << b0;
    // Bucket k+1: open through it, and the bytes: the pings and their echoes.
    EXPECT_EQ(ClientEdge(b1, "fm-early"), (Edge{true, 1, 0, 2 * early_sent})) << b1;
    EXPECT_EQ(ClientEdge(b1, "fm-late"), (Edge{true, 1, 0, 2 * late_sent})) << b1;
    // Bucket k+2: still open, idle.
    EXPECT_EQ(ClientEdge(b2, "fm-early"), (Edge{true, 1, 0, 0})) << b2;
    EXPECT_EQ(ClientEdge(b2, "fm-late"), (Edge{true, 1, 0, 0})) << b2;
    // The text says how many opened in the window.
    CommandResult text = meshd->Meshctl({"look", server, "--since", Rfc3339(k), "--until",
                                         Rfc3339(k + 3 * kFlowBucketNs)});
    EXPECT_NE(text.out.find("('fm-early', pgid=" + std::to_string(early.pid()) +
                            ") on fm-" + (meshd == &streaming ? "stream" : "poll") +
                            "  1 conn (0 new)"),
              std::string::npos)
        << text.out;
    // From the client's side too: what fm-early depends on, in the last bucket.
    CommandResult out = meshd->Meshctl({"look", "127.0.0.1", "--format", "json", "--since",
                                        Rfc3339(k + 2 * kFlowBucketNs)});
    EXPECT_NE(out.out.find("\"comm\": \"fm-early\""), std::string::npos) << out.out;
    EXPECT_NE(out.out.find("\"port\": " + std::to_string(port)), std::string::npos) << out.out;
  }
  CommandResult st = streaming.Meshctl({"status"});
  EXPECT_NE(st.out.find("account_dumps"), std::string::npos) << st.out;
}

}  // namespace
}  // namespace flowmesh::testing
