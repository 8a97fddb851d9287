// Events lost in the kernel, for real: meshd is stopped (SIGSTOP) while more
// events happen than its ring buffer holds. The loss must show in status,
// and the connections whose CLOSE was lost must not stay open: the
// reconciliation with sock_diag closes them, marked reconstructed.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh::testing {
namespace {

JsonLine Status(const MeshdProcess& meshd) {
  JsonLine s;
  ParseFlatJson(meshd.Meshctl({"status", "--json"}).out, &s);
  return s;
}

uint64_t Num(const JsonLine& l, const std::string& key) {
  auto it = l.find(key);
  return it == l.end() || it->second.empty() ? 0 : std::stoull(it->second);
}

template <typename Pred>
bool WaitUntil(Pred done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// Resumes a stopped meshd whatever happens in the test.
struct ContinueOnExit {
  pid_t pid;
  ~ContinueOnExit() { kill(pid, SIGCONT); }
};

TEST(LostEvents, RingBufferOverflowIsCountedAndMissedClosesAreReconstructed) {
  FM_REQUIRE_ROOT();
  constexpr int kHeld = 10;
  Loopback net;
  MeshdProcess meshd;
  std::string err;
  // Only this test's port reaches the ring buffer, and the smallest ring
  // (64K, about 450 events) overflows with a few hundred connections.
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--ports", std::to_string(net.port()),
                           "--ring-buffer-size", "64K", "--reconcile-interval", "1s"},
                          &err))
      << err;

  ASSERT_TRUE(net.Hold(kHeld));
  ASSERT_TRUE(WaitUntil([&] { return Num(Status(meshd), "open_connections") == 2 * kHeld; },
                        std::chrono::seconds(10)))
      << "meshd did not see the " << 2 * kHeld << " held connection ends open:\n"
      << meshd.Meshctl({"status"}).out;
  const std::set<uint16_t> held_ports = net.HeldClientPorts();

  {
    ContinueOnExit resume{meshd.pid()};
    ASSERT_EQ(kill(meshd.pid(), SIGSTOP), 0);
    // 600 connections are 2400 events, over five times what the ring holds;
    // then the held connections close, and their CLOSE events find it full.
    ASSERT_TRUE(net.Churn(600));
    net.CloseHeld();
  }

  JsonLine s = Status(meshd);
  EXPECT_GT(Num(s, "lost"), 0u) << meshd.Meshctl({"status"}).out;
  EXPECT_NE(s["detail"].find("\"lost_ringbuf\":"), std::string::npos) << s["detail"];
  // Said where an operator looks, with the flag that makes room.
  const std::string text = meshd.Meshctl({"status"}).out;
  EXPECT_NE(text.find("ring full"), std::string::npos) << text;
  EXPECT_NE(text.find("raise --ring-buffer-size (now 64"), std::string::npos) << text;
  EXPECT_TRUE(
      WaitUntil([&] { return meshd.Log().find("raise --ring-buffer-size") != std::string::npos; },
                std::chrono::seconds(5)))
      << meshd.Log();

  // Two dumps a second or two apart find them gone; nothing stays open.
  EXPECT_TRUE(WaitUntil([&] { return Num(Status(meshd), "open_connections") == 0; },
                        std::chrono::seconds(15)))
      << "connections whose CLOSE was lost stayed open:\n"
      << meshd.Meshctl({"top", "--once"}).out << meshd.Meshctl({"status"}).out;
  s = Status(meshd);
  EXPECT_GE(Num(s, "reconstructed_closes"), 2u * kHeld) << meshd.Meshctl({"status"}).out;
  EXPECT_NE(meshd.Meshctl({"status"}).out.find("reconciled"), std::string::npos);

  // Each held connection, both ends, is in the history once, marked.
  CommandResult flows = meshd.Meshctl({"flows", "--json"});
  ASSERT_EQ(flows.exit_code, 0) << flows.err;
  std::map<std::pair<uint16_t, uint16_t>, int> records;  // (lport, rport) -> count
  std::map<std::pair<uint16_t, uint16_t>, std::string> marked;
  std::istringstream lines(flows.out);
  for (std::string line; std::getline(lines, line);) {
    JsonLine l;
    if (!ParseFlatJson(line, &l)) continue;
    auto key = std::make_pair(static_cast<uint16_t>(Num(l, "lport")),
                              static_cast<uint16_t>(Num(l, "rport")));
    records[key]++;
    marked[key] = l["reconstructed"];
  }
  for (uint16_t client : held_ports) {
    for (auto key : {std::make_pair(client, net.port()), std::make_pair(net.port(), client)}) {
      EXPECT_EQ(records[key], 1) << key.first << " -> " << key.second << "\n" << flows.out;
      EXPECT_EQ(marked[key], "true") << key.first << " -> " << key.second;
    }
  }
  CommandResult listed = meshd.Meshctl({"flows"});
  EXPECT_NE(listed.out.find("[reconstructed]"), std::string::npos) << listed.out;
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

// A counter of status's detail object.
uint64_t DetailNum(const JsonLine& s, const std::string& key) {
  std::smatch m;
  auto it = s.find("detail");
  if (it == s.end() || !std::regex_search(it->second, m, std::regex("\"" + key + "\":([0-9]+)")))
    return 0;
  return std::stoull(m[1]);
}

// Status once meshd has delivered every event the kernel submitted (a
// failed expectation after 10 s if it does not).
JsonLine StatusOnceAllDelivered(const MeshdProcess& meshd) {
  JsonLine s;
  EXPECT_TRUE(WaitUntil(
      [&] {
        s = Status(meshd);
        return Num(s, "events") >= DetailNum(s, "kernel_events");
      },
      std::chrono::seconds(10)))
      << meshd.Meshctl({"status"}).out;
  return s;
}

// Nothing reads the ring while meshd starts: its start-up snapshot (here of
// 8,000 open sockets, their owners looked up in /proc) and the rest of its
// start come first, and churn fills a 256K ring in about 400 connections.
// The events that come meanwhile are held in memory (BpfProbe::HoldEvents;
// at most 16 rings' worth, 4 MB, about 27,000 events: the churn stops at
// 1,000 connections, 4,000 events) and delivered first: none is lost.
TEST(LostEvents, NoneLostWhileMeshdStartsUnderChurn) {
  FM_REQUIRE_ROOT();
  Loopback net;
  ASSERT_TRUE(net.Hold(4000));
  MeshdProcess meshd;
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    // From the attach, when the kernel starts filling the ring.
    while (!stop.load() && meshd.Log().find("streaming probe attached") == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int n = 0; n < 1000 && !stop.load() && net.Churn(50); n += 50) {
    }
  });
  std::string err;
  const bool started = meshd.Start({"--probe-mode", "streaming", "--ports",
                                    std::to_string(net.port()), "--ring-buffer-size", "256K"},
                                   &err);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  churn.join();
  ASSERT_TRUE(started) << err;
  // Delivered: every event the kernel submitted.
  JsonLine s = StatusOnceAllDelivered(meshd);
  EXPECT_EQ(Num(s, "lost"), 0u) << meshd.Meshctl({"status"}).out;
  EXPECT_EQ(DetailNum(s, "lost_ringbuf"), 0u);
  EXPECT_GT(DetailNum(s, "held_at_start"), 0u) << s["detail"];
  EXPECT_GT(DetailNum(s, "held_peak_bytes"), uint64_t{256} << 10)
      << "more than the ring holds came while meshd started: " << s["detail"];
  EXPECT_NE(meshd.Log().find("caught up with the"), std::string::npos) << meshd.Log();
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

TEST(LostEvents, NoneLostWhileADumpReadsEveryOpenSocketUnderChurn) {
  FM_REQUIRE_ROOT();
  constexpr int kHeld = 4000;
  Loopback net;
  ASSERT_TRUE(net.Hold(kHeld));
  MeshdProcess meshd;
  std::string err;
  // A dump every second reads the 8,000 held ends on the probe's thread;
  // the churn fills a ring this small while one runs. Without the hold
  // during dumps 5-11% of the events were lost here (8,001-16,870 of
  // ~156k); with it none in 7 of 8 runs and 507 (0.3%) in one: the test
  // allows 1% (a 256K ring is a sixteenth of the default, and a
  // loaded machine can delay the holding thread past it).
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--ports", std::to_string(net.port()),
                           "--ring-buffer-size", "256K", "--reconcile-interval", "1s",
                           "--account-interval", "1s"},
                          &err))
      << err;
  ASSERT_TRUE(WaitUntil([&] { return Num(Status(meshd), "open_connections") == 2 * kHeld; },
                        std::chrono::seconds(10)))
      << meshd.Meshctl({"status"}).out;
  const uint64_t dumps_before = DetailNum(Status(meshd), "account_dumps");
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3500);
  while (std::chrono::steady_clock::now() < until) ASSERT_TRUE(net.Churn(50));
  JsonLine s = StatusOnceAllDelivered(meshd);
  EXPECT_GE(DetailNum(s, "account_dumps") - dumps_before, 2u) << s["detail"];
  EXPECT_LE(Num(s, "lost") * 100, DetailNum(s, "kernel_events")) << meshd.Meshctl({"status"}).out;
  EXPECT_GT(DetailNum(s, "held_in_dumps"), 0u) << s["detail"];
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

}  // namespace
}  // namespace flowmesh::testing
