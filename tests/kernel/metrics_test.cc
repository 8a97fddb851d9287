// meshd --metrics-listen as Prometheus sees it: the real binary scraped over
// loopback while real connections come and go, every scrape checked by
// promtool, the counters required to move.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <string_view>
#include <thread>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh::testing {
namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

struct HttpReply {
  std::string status_line;
  std::string headers;
  std::string body;
};

// One request over a fresh connection, read to the server's close.
HttpReply Http(uint16_t port, const std::string& method, const std::string& path) {
  HttpReply r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    r.status_line = std::string("connect failed: ") + strerror(errno);
    return r;
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
  send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string all;
  char buf[8192];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t eol = all.find("\r\n"), end = all.find("\r\n\r\n");
  if (eol == std::string::npos || end == std::string::npos) {
    r.status_line = "no HTTP response: '" + all + "'";
    return r;
  }
  r.status_line = all.substr(0, eol);
  r.headers = all.substr(eol + 2, end - eol);
  r.body = all.substr(end + 4);
  return r;
}

// The value of the sample written exactly as `series` (name and labels), or -1.
double Value(const std::string& body, const std::string& series) {
  size_t at = ("\n" + body).find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 1));
}

// `promtool check metrics` reads the exposition on stdin: exit 0 and no
// output means the format parsed and no lint rule (names, units, _total,
// HELP) complained.
void ExpectPromtoolClean(const std::string& body, const std::string& what) {
  char path[] = "/tmp/fm-scrape-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  close(fd);
  CommandResult r =
      RunCommand({"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + path});
  unlink(path);
  EXPECT_EQ(r.exit_code, 0) << what << ": promtool said:\n" << r.out << r.err << "\n" << body;
  EXPECT_EQ(r.out + r.err, "") << what << ": promtool printed problems\n" << body;
}

// promtool comes with Debian's prometheus package (scripts/setup.sh). Where
// every test must run (CI=true) its absence fails the test; elsewhere it skips.
void RequirePromtool() {
  if (access(kPromtool, X_OK) == 0) return;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && (std::string_view(ci) == "true" || std::string_view(ci) == "1"))
    FAIL() << kPromtool << " is missing and CI=" << ci
           << " says every test must run: install Debian's prometheus package (scripts/setup.sh)";
  GTEST_SKIP() << kPromtool << " is missing; run scripts/setup.sh (Debian package prometheus)";
}

class MetricsEndpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    RequirePromtool();
  }

  bool Start(const std::vector<std::string>& extra) {
    port_ = FreePort(AF_INET);
    std::vector<std::string> flags = {"--netns",          "self",
                                      "--flush-interval", "100ms",
                                      "--metrics-listen", "127.0.0.1:" + std::to_string(port_)};
    flags.insert(flags.end(), extra.begin(), extra.end());
    std::string err;
    bool ok = meshd_.Start(flags, &err);
    EXPECT_TRUE(ok) << err;
    return ok;
  }

  // A GET /metrics that must succeed and pass promtool.
  std::string Scrape(const std::string& what) {
    HttpReply r = Http(port_, "GET", "/metrics");
    EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK") << what;
    EXPECT_NE(r.headers.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos)
        << r.headers;
    ExpectPromtoolClean(r.body, what);
    return r.body;
  }

  MeshdProcess meshd_;
  uint16_t port_ = 0;
};

TEST_F(MetricsEndpoint, CountersMoveWithRealTrafficAndEveryScrapePassesPromtool) {
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(Start({"--probe-mode", "streaming"}));
  const std::string url = "http://127.0.0.1:" + std::to_string(port_) + "/metrics";
  EXPECT_NE(meshd_.Log().find("serving Prometheus metrics at " + url), std::string::npos)
      << meshd_.Log();

  std::string first = Scrape("first scrape");
  EXPECT_EQ(Value(first, "flowmesh_probe_mode{mode=\"streaming\"}"), 1) << first;
  EXPECT_EQ(Value(first, "flowmesh_probe_mode{mode=\"polling\"}"), 0) << first;
  EXPECT_EQ(Value(first, "flowmesh_build_info{version=\"" FLOWMESH_VERSION "\"}"), 1) << first;
  EXPECT_GT(Value(first, "process_start_time_seconds"), 1.6e9) << first;
  // The ring buffer's memory is all there from the start; the tables' grows with use.
  EXPECT_GE(Value(first, "flowmesh_bpf_map_memlock_bytes{map=\"events\"}"), 64 << 10) << first;
  EXPECT_GT(Value(first, "flowmesh_bpf_map_memlock_bytes{map=\"socks\"}"), 0) << first;
  EXPECT_EQ(Value(first, "flowmesh_bpf_map_full_total{map=\"socks\"}"), 0) << first;
  double events0 = Value(first, "flowmesh_probe_events_total");
  double records0 = Value(first, "flowmesh_store_records_written_total");
  double looks0 = Value(first, "flowmesh_look_duration_seconds_count{kind=\"meshctl\"}");
  ASSERT_GE(events0, 0) << first;
  ASSERT_GE(records0, 0) << first;
  ASSERT_EQ(looks0, 0) << first;

  // A connection held open shows in the open-connections gauge: both ends.
  TrafficSpec held_spec;
  held_spec.hold_ms = 3000;
  TrafficResult held = StartHeldTraffic(held_spec);
  ASSERT_TRUE(held.ok) << held.error;
  // The probe hands events over every 200 ms or so: poll.
  std::string during;
  for (int i = 0; i < 20; ++i) {
    during = Scrape("scrape with a connection held open");
    if (Value(during, "flowmesh_connections_open") >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(Value(during, "flowmesh_connections_open"), 2) << during;
  ASSERT_TRUE(FinishTraffic(held));

  // Three more connections, opened and closed: each is 2 opens and 2 closes
  // seen by the probe and 2 records (one per end) written to the store.
  constexpr int kConnections = 3;
  TrafficResult last;
  for (int i = 0; i < kConnections; ++i) {
    last = RunTraffic(TrafficSpec{});
    ASSERT_TRUE(last.ok) << last.error;
  }
  const double want_records = records0 + 2 * (kConnections + 1);
  std::string second;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       std::chrono::steady_clock::now() < deadline;) {
    second = Scrape("second scrape");
    if (Value(second, "flowmesh_store_records_written_total") >= want_records) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(Value(second, "flowmesh_probe_events_total"), events0 + 4 * (kConnections + 1))
      << second;
  EXPECT_GE(Value(second, "flowmesh_store_records_written_total"), want_records) << second;
  // Each closed connection touches its two flows (client and server side).
  EXPECT_GT(Value(second, "flowmesh_flow_updates_total"),
            Value(first, "flowmesh_flow_updates_total"))
      << second;
  EXPECT_GE(Value(second, "flowmesh_store_records"), 2 * (kConnections + 1)) << second;
  EXPECT_GT(Value(second, "flowmesh_store_size_bytes"), 0) << second;
  EXPECT_EQ(Value(second, "flowmesh_probe_events_lost_total"), 0) << second;
  EXPECT_EQ(Value(second, "flowmesh_store_write_errors_total"), 0) << second;

  // `meshctl look` on this node moves the meshctl histogram by exactly one.
  CommandResult look = meshd_.Meshctl({"look", "127.0.0.1:" + std::to_string(last.server_port)});
  ASSERT_EQ(look.exit_code, 0) << look.err;
  EXPECT_NE(look.out.find("fm-client"), std::string::npos) << look.out;
  std::string third = Scrape("scrape after meshctl look");
  EXPECT_EQ(Value(third, "flowmesh_look_duration_seconds_count{kind=\"meshctl\"}"), 1) << third;
  EXPECT_EQ(Value(third, "flowmesh_look_duration_seconds_bucket{kind=\"meshctl\",le=\"+Inf\"}"), 1)
      << third;
  EXPECT_GT(Value(third, "flowmesh_look_duration_seconds_sum{kind=\"meshctl\"}"), 0) << third;
  EXPECT_EQ(Value(third, "flowmesh_look_duration_seconds_count{kind=\"peer\"}"), 0) << third;

  // What is not a scrape is refused.
  EXPECT_EQ(Http(port_, "GET", "/").status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(Http(port_, "POST", "/metrics").status_line, "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(meshd_.Stop(), 0) << meshd_.Log();
}

TEST_F(MetricsEndpoint, PollingModeIsReported) {
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_TRUE(Start({"--probe-mode", "polling"}));
  std::string body = Scrape("polling scrape");
  EXPECT_EQ(Value(body, "flowmesh_probe_mode{mode=\"polling\"}"), 1) << body;
  EXPECT_EQ(Value(body, "flowmesh_probe_mode{mode=\"streaming\"}"), 0) << body;
  EXPECT_EQ(meshd_.Stop(), 0) << meshd_.Log();
}

// An empty and an oversized datagram at meshd's mesh port were counted in the
// transport and shown nowhere; now both `meshctl status` and /metrics say so, by reason.
TEST_F(MetricsEndpoint, EmptyAndOversizedDatagramsShowInStatusAndMetrics) {
  if (IsSkipped() || HasFatalFailure()) return;
  uint16_t mesh_port = FreePort(AF_INET);
  ASSERT_TRUE(Start({"--probe-mode", "polling", "--insecure", "--node-name", "refusing", "--bind",
                     "127.0.0.1:" + std::to_string(mesh_port)}));
  std::string before = Scrape("before the datagrams");
  EXPECT_EQ(Value(before, "flowmesh_mesh_refusals_total{reason=\"packet_empty\"}"), 0) << before;
  EXPECT_EQ(Value(before, "flowmesh_mesh_refusals_total{reason=\"packet_oversized\"}"), 0) << before;

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(mesh_port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string big(2000, 'x');
  ASSERT_EQ(sendto(fd, "", 0, 0, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  ASSERT_EQ(sendto(fd, big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(big.size()));
  close(fd);

  std::string json;
  for (int i = 0; i < 100; i++) {
    json = meshd_.Meshctl({"status", "--json"}).out;
    if (json.find("\"packet_empty\":1") != std::string::npos &&
        json.find("\"packet_oversized\":1") != std::string::npos)
      break;
    usleep(50'000);
  }
  EXPECT_NE(json.find("\"packet_empty\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"packet_oversized\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"seal_open_failed\":0"), std::string::npos) << json;
  std::string text = meshd_.Meshctl({"status"}).out;
  EXPECT_NE(text.find("refused      packet_oversized"), std::string::npos) << text;
  EXPECT_TRUE(std::regex_search(text, std::regex("\n +packet_empty +1  empty datagrams, dropped\n")))
      << text;
  std::string after = Scrape("after the datagrams");
  EXPECT_EQ(Value(after, "flowmesh_mesh_refusals_total{reason=\"packet_empty\"}"), 1) << after;
  EXPECT_EQ(Value(after, "flowmesh_mesh_refusals_total{reason=\"packet_oversized\"}"), 1) << after;
  EXPECT_EQ(meshd_.Stop(), 0) << meshd_.Log();
}

TEST_F(MetricsEndpoint, AddressInUseIsAStartUpErrorNamingTheFlag) {
  if (IsSkipped() || HasFatalFailure()) return;
  // Hold the port with a listener of our own.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string addr = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  std::string err;
  bool started = meshd_.Start({"--probe-mode", "polling", "--metrics-listen", addr}, &err);
  close(fd);
  ASSERT_FALSE(started) << "meshd started although " << addr << " was taken";
  EXPECT_NE(err.find("meshd: --metrics-listen " + addr + ": cannot bind " + addr),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("in use"), std::string::npos) << err;
}

}  // namespace
}  // namespace flowmesh::testing
