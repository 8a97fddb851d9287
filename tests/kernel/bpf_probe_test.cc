// The streaming probe against the real kernel: exact events for real
// loopback connections made by known child processes, and only the network
// namespaces a --netns list names.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <memory>

#include "node/common/clock.h"
#include "node/probe/bpf_probe.h"
#include "node/probe/netns.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh {
namespace {

using testing::RunTraffic;
using testing::TrafficResult;
using testing::TrafficSpec;

class Collector : public EventSink {
 public:
  void OnEvent(const ConnEvent& e) override { events.push_back(e); }
  std::vector<ConnEvent> events;
};

// Drains the probe until `done` holds or two seconds pass.
template <typename Pred>
void PumpUntil(BpfProbe& probe, Collector& c, Pred done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    Result<int> n = probe.TransferData(c, 50);
    ASSERT_TRUE(n.ok()) << n.status().message();
  }
}

const ConnEvent* Find(const Collector& c, EventKind kind, uint16_t lport, uint16_t rport) {
  for (const ConnEvent& e : c.events)
    if (e.kind == kind && e.key.lport == lport && e.key.rport == rport) return &e;
  return nullptr;
}

class BpfProbeTest : public ::testing::TestWithParam<std::tuple<int, BpfAttach>> {};

TEST_P(BpfProbeTest, ExactEventsForBothSidesOfALoopbackConnection) {
  FM_REQUIRE_ROOT();
  auto [family, attach] = GetParam();
  BpfProbeOptions opts;
  opts.attach = attach;
  opts.filter.family = static_cast<uint16_t>(family);
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(probe.AttachKind(), attach == BpfAttach::kRaw ? "raw_tp" : "tp_btf");

  TrafficSpec spec;
  spec.family = family;
  int64_t before = RealtimeNs();
  TrafficResult t = RunTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;

  Collector c;
  PumpUntil(probe, c, [&] {
    return Find(c, EventKind::kClose, t.client_port, t.server_port) &&
           Find(c, EventKind::kClose, t.server_port, t.client_port);
  });

  const ConnEvent* listen = nullptr;
  for (const ConnEvent& e : c.events)
    if (e.kind == EventKind::kListen && e.key.lport == t.server_port) listen = &e;
  ASSERT_NE(listen, nullptr);
  EXPECT_EQ(listen->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(listen->proc.comm_view(), "fm-server");

  const ConnEvent* a_open = Find(c, EventKind::kOpen, t.client_port, t.server_port);
  const ConnEvent* p_open = Find(c, EventKind::kOpen, t.server_port, t.client_port);
  const ConnEvent* a_close = Find(c, EventKind::kClose, t.client_port, t.server_port);
  const ConnEvent* p_close = Find(c, EventKind::kClose, t.server_port, t.client_port);
  ASSERT_NE(a_open, nullptr);
  ASSERT_NE(p_open, nullptr);
  ASSERT_NE(a_close, nullptr);
  ASSERT_NE(p_close, nullptr);

  IpAddr lo = family == AF_INET ? IpAddr::V4(127, 0, 0, 1) : *IpAddr::Parse("::1");
  for (const ConnEvent* e : {a_open, p_open, a_close, p_close}) {
    EXPECT_EQ(e->key.laddr, lo);
    EXPECT_EQ(e->key.raddr, lo);
    EXPECT_GE(e->ts_ns, before - 1'000'000'000);
    EXPECT_NE(e->key.netns, 0u);
  }
  // The connecting side is the client process, active.
  EXPECT_EQ(a_open->direction, Direction::kActive);
  EXPECT_EQ(a_open->proc.pid, static_cast<uint32_t>(t.client_pid));
  EXPECT_EQ(a_open->proc.comm_view(), "fm-client");
  EXPECT_EQ(a_close->direction, Direction::kActive);
  EXPECT_EQ(a_close->proc.pid, static_cast<uint32_t>(t.client_pid));
  EXPECT_EQ(a_close->proc.start_ticks, a_open->proc.start_ticks);
  // The accepting side is attributed to the listener's process, passive.
  EXPECT_EQ(p_open->direction, Direction::kPassive);
  EXPECT_EQ(p_open->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(p_open->proc.comm_view(), "fm-server");
  EXPECT_EQ(p_close->direction, Direction::kPassive);
  EXPECT_EQ(p_close->proc.pid, static_cast<uint32_t>(t.server_pid));

  // The kernel counts sequence space: the client's SYN, and both FINs (each
  // side's FIN was acknowledged and the peer's received in this exchange).
  EXPECT_EQ(a_close->counters.bytes_tx, spec.client_sends + 2);
  EXPECT_EQ(a_close->counters.bytes_rx, spec.server_sends + 1);
  EXPECT_EQ(p_close->counters.bytes_tx, spec.server_sends + 1);
  EXPECT_EQ(p_close->counters.bytes_rx, spec.client_sends + 1);
  EXPECT_EQ(a_close->tcp_flags, FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);
  EXPECT_EQ(p_close->tcp_flags, FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);
  // Which payload bytes, exactly, in each direction, seen from both ends.
  TcpCounters a = PayloadCounters(a_close->counters, a_close->direction, a_close->tcp_flags);
  TcpCounters p = PayloadCounters(p_close->counters, p_close->direction, p_close->tcp_flags);
  EXPECT_EQ(a.bytes_tx, spec.client_sends);
  EXPECT_EQ(a.bytes_rx, spec.server_sends);
  EXPECT_EQ(p.bytes_tx, spec.server_sends);
  EXPECT_EQ(p.bytes_rx, spec.client_sends);
  EXPECT_GT(a_close->counters.segs_out, 0u);
  EXPECT_GT(p_close->counters.segs_in, 0u);
  EXPECT_GT(a_close->duration_ns, 0u);
  EXPECT_GT(p_close->duration_ns, 0u);
  EXPECT_GT(a_close->counters.rtt_us, 0u);

  ProbeStats st = probe.Stats();
  EXPECT_EQ(st.lost, 0u);
  EXPECT_EQ(st.malformed, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    FamiliesAndAttachTypes, BpfProbeTest,
    ::testing::Values(std::make_tuple(AF_INET, BpfAttach::kBtf),
                      std::make_tuple(AF_INET6, BpfAttach::kBtf),
                      std::make_tuple(AF_INET, BpfAttach::kRaw),
                      std::make_tuple(AF_INET6, BpfAttach::kRaw)),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == AF_INET ? "IPv4" : "IPv6") +
             (std::get<1>(info.param) == BpfAttach::kRaw ? "RawTp" : "TpBtf");
    });

TEST(BpfProbePortFilter, RecordsOnlySelectedPorts) {
  FM_REQUIRE_ROOT();
  TrafficSpec spec;
  spec.port = testing::FreePort(AF_INET);
  BpfProbeOptions opts;
  opts.filter.ports = {spec.port};
  BpfProbe probe(opts);
  ASSERT_TRUE(probe.Init().ok());

  TrafficSpec other;  // a different, unselected port
  TrafficResult o = RunTraffic(other);
  ASSERT_TRUE(o.ok) << o.error;
  TrafficResult t = RunTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;

  Collector c;
  PumpUntil(probe, c, [&] { return Find(c, EventKind::kClose, t.server_port, t.client_port); });
  EXPECT_NE(Find(c, EventKind::kClose, t.server_port, t.client_port), nullptr);
  for (const ConnEvent& e : c.events)
    EXPECT_TRUE(e.key.lport == spec.port || e.key.rport == spec.port)
        << "unselected event on " << e.key.lport << "->" << e.key.rport;
}

uint64_t Detail(const ProbeStats& s, const std::string& name) {
  for (const auto& [n, v] : s.detail)
    if (n == name) return v;
  ADD_FAILURE() << "no " << name << " in the probe's detail";
  return 0;
}

// What the kernel says, read here independently of BpfProbe.
uint64_t KernelRecursionMisses(uint32_t prog_id) {
  int fd = bpf_prog_get_fd_by_id(prog_id);
  if (fd < 0) {
    ADD_FAILURE() << "no BPF program with id " << prog_id;
    return 0;
  }
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  close(fd);
  EXPECT_EQ(rc, 0);
  return info.recursion_misses;
}

class BpfProbeLoss : public ::testing::TestWithParam<BpfAttach> {};

// The kernel skips the program when inet_sock_set_state fires in a softirq
// that interrupted it on the same CPU, and counts that only in the program's
// run statistics. Under churn this happens now and then (not on demand): the
// churn is bounded, and whatever the kernel counted must be what Stats()
// reports as lost, by name.
TEST_P(BpfProbeLoss, RecursionMissesOfTheKernelAreLostEvents) {
  FM_REQUIRE_ROOT();
  testing::Loopback net;
  BpfProbeOptions opts;
  opts.attach = GetParam();
  opts.filter.ports = {net.port()};  // skips are counted before any filter
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();
  const uint32_t id = probe.ProgramId();
  ASSERT_NE(id, 0u);

  std::atomic<bool> stop{false};
  std::atomic<int> connections{0};
  std::vector<std::thread> churn;
  for (int i = 0; i < 2; i++)
    churn.emplace_back([&] {
      while (!stop.load() && net.Churn(1)) connections++;
    });
  Collector c;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  while (std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(probe.TransferData(c, 50).ok());
    c.events.clear();
  }
  stop = true;
  for (std::thread& t : churn) t.join();

  // Other programs' traffic keeps running the program: the kernel's count
  // may move between reads, never backwards.
  const uint64_t before = KernelRecursionMisses(id);
  ProbeStats st = probe.Stats();
  const uint64_t after = KernelRecursionMisses(id);
  const uint64_t reported = Detail(st, "lost_recursion");
  std::cout << "[          ] " << connections.load() << " connections, " << before
            << " recursion misses (bpftool prog show id " << id << ")\n";
  EXPECT_GE(reported, before);
  EXPECT_LE(reported, after);
  EXPECT_EQ(st.lost, Detail(st, "lost_ringbuf") + reported) << "lost is the sum of its causes";
  ASSERT_EQ(st.lost_causes.size(), 2u);
  EXPECT_EQ(st.lost_causes[1], std::make_pair(std::string("recursion"), reported));
  EXPECT_GT(connections.load(), 100);
}

INSTANTIATE_TEST_SUITE_P(AttachTypes, BpfProbeLoss,
                         ::testing::Values(BpfAttach::kBtf, BpfAttach::kRaw),
                         [](const auto& info) {
                           return info.param == BpfAttach::kRaw ? "RawTp" : "TpBtf";
                         });

// A ring buffer that fills while nobody drains it: every event that did not
// fit is counted lost, and the rest arrive.
// A probe of `net`'s port with a 64 KB ring (about 430 events).
std::unique_ptr<BpfProbe> SmallRingProbe(const testing::Loopback& net) {
  BpfProbeOptions opts;
  opts.filter.ports = {net.port()};
  opts.ring_bytes = 64 << 10;
  auto probe = std::make_unique<BpfProbe>(opts);
  Status s = probe->Init();
  EXPECT_TRUE(s.ok()) << s.message();
  return s.ok() ? std::move(probe) : nullptr;
}

// A loopback listener and a probe of its port with a 64 KB ring.
class BpfProbeRingBuffer : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    probe_ = SmallRingProbe(net);
    ASSERT_NE(probe_, nullptr);
  }
  testing::Loopback net;
  std::unique_ptr<BpfProbe> probe_;
};

TEST_F(BpfProbeRingBuffer, FullRingCountsEveryDroppedEvent) {
  BpfProbe& probe = *probe_;
  ASSERT_TRUE(net.Churn(300));  // 1200 events; the ring holds about 430
  Collector c;
  for (int i = 0; i < 5; i++) ASSERT_TRUE(probe.TransferData(c, 50).ok());
  ProbeStats st = probe.Stats();
  EXPECT_GT(st.lost, 0u);
  EXPECT_EQ(Detail(st, "lost_ringbuf") + c.events.size(), 1200u)
      << "every event of the 300 connections either arrived or is counted lost";
  EXPECT_EQ(Detail(st, "kernel_events"), c.events.size());
}

// meshd reads the ring with its data mapped once (RingReader): a record that
// wraps past the end is reassembled from its two pieces. A 64 KB ring,
// drained after every 100 connections (about 60 KB of events), wraps every
// round, at a different offset each time: every event arrives whole.
TEST_F(BpfProbeRingBuffer, RecordsThatWrapArriveWhole) {
  BpfProbe& probe = *probe_;
  Collector c;
  constexpr int kRounds = 20, kPerRound = 100;
  for (int round = 0; round < kRounds; round++) {
    ASSERT_TRUE(net.Churn(kPerRound));
    PumpUntil(probe, c, [&] { return c.events.size() == 4u * kPerRound * (round + 1); });
  }
  ProbeStats st = probe.Stats();
  EXPECT_EQ(st.lost, 0u);
  EXPECT_EQ(st.malformed, 0u);
  ASSERT_EQ(c.events.size(), 4u * kPerRound * kRounds);
  int opens = 0, closes = 0;
  for (const ConnEvent& e : c.events) {
    // Both ends of each connection: the listener's port on one side.
    EXPECT_TRUE(e.key.lport == net.port() || e.key.rport == net.port())
        << e.key.lport << " " << e.key.rport;
    EXPECT_EQ(e.key.laddr, IpAddr::V4(127, 0, 0, 1));
    opens += e.kind == EventKind::kOpen;
    closes += e.kind == EventKind::kClose;
  }
  EXPECT_EQ(opens, 2 * kPerRound * kRounds);
  EXPECT_EQ(closes, 2 * kPerRound * kRounds);
}

// 1,000 connections, 4,000 events, in rounds of 200 events (30 KB) 50 ms
// apart: a holder (woken by the kernel, or every 10 ms) empties a 64 KB ring
// between rounds.
constexpr int kHeldEvents = 4000;
bool ChurnWithPauses(testing::Loopback& net) {
  for (int round = 0; round < 20; round++) {
    if (!net.Churn(50)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// meshd's start (BpfProbe::HoldEvents): until the first TransferData the
// ring's records are copied into memory as they come, so a 64 KB ring
// (about 430 events) loses none of 4,000, and each connection's events
// arrive in the order the kernel made them.
TEST_F(BpfProbeRingBuffer, EventsHeldWhileNothingDeliversArriveInOrderNoneLost) {
  BpfProbe& probe = *probe_;
  ASSERT_TRUE(probe.HoldEvents(64 << 20).ok());
  ASSERT_TRUE(ChurnWithPauses(net));
  Collector c;
  PumpUntil(probe, c, [&] { return c.events.size() >= kHeldEvents; });
  ProbeStats st = probe.Stats();
  EXPECT_EQ(st.lost, 0u);
  EXPECT_EQ(c.events.size(), static_cast<size_t>(kHeldEvents));
  EXPECT_GT(Detail(st, "held_at_start"), 0u);
  EXPECT_GT(Detail(st, "held_peak_bytes"), size_t{64 << 10}) << "more than the ring held";
  // Each socket: OPEN before CLOSE, each once.
  std::map<std::pair<uint16_t, uint16_t>, std::string> seen;
  for (const ConnEvent& e : c.events) {
    std::string& kinds = seen[{e.key.lport, e.key.rport}];
    kinds += e.kind == EventKind::kOpen ? "O" : e.kind == EventKind::kClose ? "C" : "?";
  }
  EXPECT_EQ(seen.size(), 2u * kHeldEvents / 4);
  for (const auto& [ports, kinds] : seen)
    EXPECT_EQ(kinds, "OC") << ports.first << " -> " << ports.second;
  // Caught up: from here the ring is read directly again.
  ASSERT_TRUE(net.Churn(10));
  PumpUntil(probe, c, [&] { return c.events.size() >= kHeldEvents + 40; });
  EXPECT_EQ(c.events.size(), static_cast<size_t>(kHeldEvents + 40));
}

// Past its bound the holder leaves the ring to fill: what it drops is
// counted lost, and every event either arrives or is counted.
TEST_F(BpfProbeRingBuffer, HoldingStopsAtItsBoundAndTheRingCountsWhatItDrops) {
  BpfProbe& probe = *probe_;
  ASSERT_TRUE(probe.HoldEvents(32 << 10).ok());
  EXPECT_FALSE(probe.HoldEvents(32 << 10).ok()) << "once";
  ASSERT_TRUE(ChurnWithPauses(net));
  Collector c;
  for (int i = 0; i < 20; i++) ASSERT_TRUE(probe.TransferData(c, 50).ok());
  ProbeStats st = probe.Stats();
  EXPECT_GT(st.lost, 0u);
  EXPECT_EQ(Detail(st, "lost_ringbuf") + c.events.size(), static_cast<size_t>(kHeldEvents));
  // The bound, plus at most the one ring's worth read past it.
  EXPECT_LE(Detail(st, "held_peak_bytes"), size_t{(32 << 10) + (64 << 10)});
}

// A listener on 127.0.0.1 made by this thread inside the namespace at
// `path` (ip netns add): its port, the socket left open in *fd.
uint16_t ListenInNetns(const std::string& path, int* fd) {
  uint16_t port = 0;
  Status s = RunInNetns(path, 0, [&] {
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (*fd < 0 || bind(*fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        listen(*fd, 1) != 0 || getsockname(*fd, reinterpret_cast<sockaddr*>(&sin), &len) != 0)
      return Status::FromErrno(errno, "listen in " + path);
    port = ntohs(sin.sin_port);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return port;
}

TEST(BpfProbeNetnsFilter, RecordsOnlyTheListedNamespaces) {
  FM_REQUIRE_ROOT();
  const std::string tag = std::to_string(getpid());
  const std::string a = "fm-kb-a-" + tag, b = "fm-kb-b-" + tag;
  ASSERT_EQ(std::system(("ip netns add " + a + " && ip -n " + a + " link set lo up && ip netns add " +
                         b + " && ip -n " + b + " link set lo up")
                            .c_str()),
            0);
  struct Cleanup {
    std::string a, b;
    ~Cleanup() { (void)!std::system(("ip netns del " + a + "; ip netns del " + b).c_str()); }
  } cleanup{a, b};
  Result<uint32_t> ino_a = NetnsInodeOfPath("/run/netns/" + a);
  Result<uint32_t> self = SelfNetnsInode();
  ASSERT_TRUE(ino_a.ok() && self.ok());

  BpfProbeOptions opts;
  opts.filter.netns = {NetnsRef{*self, 0, ""}, NetnsRef{*ino_a, 0, "/run/netns/" + a}};
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();
  int fd_a = -1, fd_b = -1;
  const uint16_t port_a = ListenInNetns("/run/netns/" + a, &fd_a);
  const uint16_t port_b = ListenInNetns("/run/netns/" + b, &fd_b);
  close(fd_a);
  close(fd_b);
  Collector c;
  PumpUntil(probe, c, [&] { return Find(c, EventKind::kUnlisten, port_a, 0) != nullptr; });
  probe.Stop();
  const ConnEvent* listen = Find(c, EventKind::kListen, port_a, 0);
  ASSERT_NE(listen, nullptr);
  EXPECT_EQ(listen->key.netns, *ino_a);
  EXPECT_NE(Find(c, EventKind::kUnlisten, port_a, 0), nullptr);
  for (const ConnEvent& e : c.events)
    EXPECT_TRUE(e.key.netns == *ino_a || e.key.netns == *self)
        << "an event from network namespace " << e.key.netns << " (port " << e.key.lport
        << "; b's listener was on " << port_b << ")";
}

}  // namespace
}  // namespace flowmesh
