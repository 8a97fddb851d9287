// The poller's logic without a kernel: snapshot classification (states,
// direction, owners, filter) and the diff between consecutive snapshots.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <vector>

#include "node/probe/poll_probe.h"
#include "node/probe/snapshot.h"

namespace flowmesh {
namespace {

constexpr uint32_t kNs = 4026531840u;
constexpr int64_t kSec = 1'000'000'000;
const IpAddr kLocal = IpAddr::V4(10, 0, 0, 1);
const IpAddr kPeer = IpAddr::V4(10, 0, 0, 2);

ProcessRef Proc(uint32_t pid, const char* comm, uint64_t start = 100) {
  ProcessRef p;
  p.pid = pid;
  p.start_ticks = start;
  p.set_comm(comm);
  return p;
}

ConnEvent Conn(uint16_t lport, uint16_t rport, uint64_t tx = 0, uint32_t pid = 10) {
  ConnEvent e;
  e.kind = EventKind::kOpen;
  e.direction = Direction::kActive;
  e.key = {kNs, kLocal, kPeer, lport, rport};
  e.proc = Proc(pid, "client");
  e.counters.bytes_tx = tx;
  e.counters.segs_out = static_cast<uint32_t>(tx / 1000);
  return e;
}

ConnEvent Listener(uint16_t port, uint32_t pid = 20, uint64_t start = 100) {
  ConnEvent e;
  e.kind = EventKind::kListen;
  e.key.netns = kNs;
  e.key.laddr = IpAddr::V4(0, 0, 0, 0);
  e.key.lport = port;
  e.proc = Proc(pid, "server", start);
  return e;
}

Snapshot Snap(std::vector<ConnEvent> listeners, std::vector<ConnEvent> conns,
              std::vector<uint64_t> cookies = {}) {
  Snapshot s;
  s.listeners = std::move(listeners);
  s.connections = std::move(conns);
  s.cookies = std::move(cookies);
  return s;
}

std::vector<ConnEvent> Apply(PollDiff& diff, const Snapshot& s, int64_t now) {
  std::vector<ConnEvent> out;
  diff.Apply(s, now, &out);
  return out;
}

TEST(PollDiff, FirstSnapshotSeedsEverything) {
  PollDiff diff;
  auto ev = Apply(diff, Snap({Listener(80)}, {Conn(5000, 443, 10)}), 1 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, EventKind::kListen);
  EXPECT_EQ(ev[0].source, EventSource::kSeed);
  EXPECT_EQ(ev[0].key.lport, 80);
  EXPECT_EQ(ev[0].proc.pid, 20u);
  EXPECT_EQ(ev[1].kind, EventKind::kOpen);
  EXPECT_EQ(ev[1].source, EventSource::kSeed);
  EXPECT_EQ(ev[1].ts_ns, 1 * kSec);
  EXPECT_EQ(ev[1].counters.bytes_tx, 10u);
  EXPECT_EQ(diff.connections(), 1u);
  EXPECT_EQ(diff.listeners(), 1u);

  // Nothing changed: nothing to say.
  EXPECT_TRUE(Apply(diff, Snap({Listener(80)}, {Conn(5000, 443, 10)}), 2 * kSec).empty());
}

TEST(PollDiff, OpenUpdateCloseWithCountersAndDuration) {
  PollDiff diff;
  Apply(diff, Snap({}, {Conn(5000, 443, 10)}), 1 * kSec);

  // A new connection appears: OPEN from the poll, the seeded one is unchanged.
  auto ev = Apply(diff, Snap({}, {Conn(5000, 443, 10), Conn(5001, 443, 100)}), 2 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kOpen);
  EXPECT_EQ(ev[0].source, EventSource::kPoll);
  EXPECT_EQ(ev[0].key.lport, 5001);
  EXPECT_EQ(ev[0].ts_ns, 2 * kSec);

  // Counters move: UPDATE with the new ones.
  ev = Apply(diff, Snap({}, {Conn(5000, 443, 10), Conn(5001, 443, 5000)}), 3 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kUpdate);
  EXPECT_EQ(ev[0].key.lport, 5001);
  EXPECT_EQ(ev[0].counters.bytes_tx, 5000u);
  EXPECT_EQ(ev[0].counters.segs_out, 5u);
  EXPECT_EQ(ev[0].proc.pid, 10u);

  // Both vanish: CLOSE with the last counters seen; the seeded one's real
  // start is unknown so its duration is 0, the other lived from 2 s to 4 s.
  ev = Apply(diff, Snap({}, {}), 4 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, EventKind::kClose);
  EXPECT_EQ(ev[0].key.lport, 5000);
  EXPECT_EQ(ev[0].counters.bytes_tx, 10u);
  EXPECT_EQ(ev[0].duration_ns, 0u);
  EXPECT_EQ(ev[0].source, EventSource::kPoll);
  EXPECT_EQ(ev[0].proc.pid, 10u);
  EXPECT_EQ(ev[1].kind, EventKind::kClose);
  EXPECT_EQ(ev[1].key.lport, 5001);
  EXPECT_EQ(ev[1].counters.bytes_tx, 5000u);
  EXPECT_EQ(ev[1].duration_ns, static_cast<uint64_t>(2 * kSec));
  EXPECT_EQ(ev[1].ts_ns, 4 * kSec);
  EXPECT_EQ(diff.connections(), 0u);
}

TEST(PollDiff, ListenAndUnlisten) {
  PollDiff diff;
  Apply(diff, Snap({Listener(80)}, {}), 1 * kSec);
  auto ev = Apply(diff, Snap({Listener(80), Listener(8080)}, {}), 2 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kListen);
  EXPECT_EQ(ev[0].source, EventSource::kPoll);
  EXPECT_EQ(ev[0].key.lport, 8080);

  ev = Apply(diff, Snap({Listener(8080)}, {}), 3 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kUnlisten);
  EXPECT_EQ(ev[0].key.lport, 80);
  EXPECT_EQ(ev[0].proc.pid, 20u);
  EXPECT_EQ(ev[0].ts_ns, 3 * kSec);

  // Another process took the port between polls: it is a new listener.
  ev = Apply(diff, Snap({Listener(8080, 21)}, {}), 4 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, EventKind::kListen);
  EXPECT_EQ(ev[0].proc.pid, 21u);
  EXPECT_EQ(ev[1].kind, EventKind::kUnlisten);
  EXPECT_EQ(ev[1].proc.pid, 20u);

  // A failed owner lookup is not a change of owner.
  ConnEvent anonymous = Listener(8080);
  anonymous.proc = {};
  EXPECT_TRUE(Apply(diff, Snap({anonymous}, {}), 5 * kSec).empty());
  EXPECT_TRUE(Apply(diff, Snap({Listener(8080, 21)}, {}), 6 * kSec).empty());
}

TEST(PollDiff, ClosingStateIsAnUpdateAndItsFlagsReachTheClose) {
  PollDiff diff;
  Apply(diff, Snap({}, {Conn(5000, 443, 101)}), 1 * kSec);
  ConnEvent closing = Conn(5000, 443, 101);
  closing.tcp_flags = FM_TCP_FIN_RECEIVED;  // CLOSE_WAIT: the peer's FIN, same bytes
  auto ev = Apply(diff, Snap({}, {closing}), 2 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kUpdate);
  EXPECT_EQ(ev[0].tcp_flags, FM_TCP_FIN_RECEIVED);
  ev = Apply(diff, Snap({}, {}), 3 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kClose);
  EXPECT_EQ(ev[0].tcp_flags, FM_TCP_FIN_RECEIVED);
}

TEST(PollDiff, ReusedFourTupleIsANewConnection) {
  PollDiff diff;
  Apply(diff, Snap({}, {}), 1 * kSec);
  Apply(diff, Snap({}, {Conn(5000, 443, 900)}, {111}), 2 * kSec);
  auto ev = Apply(diff, Snap({}, {Conn(5000, 443, 50)}, {222}), 3 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].kind, EventKind::kOpen);
  EXPECT_EQ(ev[0].counters.bytes_tx, 50u);
  EXPECT_EQ(ev[1].kind, EventKind::kClose);
  EXPECT_EQ(ev[1].counters.bytes_tx, 900u);
  EXPECT_EQ(ev[1].duration_ns, static_cast<uint64_t>(1 * kSec));
}

TEST(PollDiff, ProcessLearnedLaterIsAnUpdate) {
  PollDiff diff;
  ConnEvent c = Conn(5000, 443, 10);
  c.proc = {};
  Apply(diff, Snap({}, {c}), 1 * kSec);
  auto ev = Apply(diff, Snap({}, {Conn(5000, 443, 10, 33)}), 2 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, EventKind::kUpdate);
  EXPECT_EQ(ev[0].proc.pid, 33u);
  // ...and a later failed lookup does not forget it.
  c.counters.bytes_tx = 20;
  ev = Apply(diff, Snap({}, {c}), 3 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].proc.pid, 33u);
  ev = Apply(diff, Snap({}, {}), 4 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].proc.pid, 33u);
  EXPECT_EQ(ev[0].counters.bytes_tx, 20u);
}

// --- Snapshot classification ------------------------------------------------

DiagSocket Sock(uint8_t state, IpAddr laddr, uint16_t lport, IpAddr raddr, uint16_t rport,
                uint32_t inode) {
  DiagSocket s;
  s.state = state;
  s.key = {kNs, laddr, state == kTcpListen ? IpAddr{} : raddr, lport,
           state == kTcpListen ? uint16_t{0} : rport};
  s.inode = inode;
  s.cookie = inode;
  s.has_info = true;
  s.counters.bytes_tx = inode;
  return s;
}

ProcessRef OwnerOf(uint32_t inode) {
  switch (inode) {
    case 1: return Proc(1000, "nginx", 50);
    case 2: return Proc(1001, "nginx", 40);
    case 3: return Proc(2000, "api");
    case 4: return Proc(3000, "client");
    default: return {};
  }
}

const ConnEvent* FindConn(const Snapshot& s, uint16_t lport) {
  for (const ConnEvent& e : s.connections)
    if (e.key.lport == lport) return &e;
  return nullptr;
}

TEST(Snapshot, ConnectedStates) {
  for (uint8_t st :
       {kTcpEstablished, kTcpFinWait1, kTcpFinWait2, kTcpCloseWait, kTcpLastAck, kTcpClosing})
    EXPECT_TRUE(IsConnectedState(st)) << TcpStateName(st);
  for (uint8_t st : {kTcpSynSent, kTcpSynRecv, kTcpTimeWait, kTcpClose, kTcpListen, kTcpNewSynRecv})
    EXPECT_FALSE(IsConnectedState(st)) << TcpStateName(st);
  EXPECT_FALSE(IsConnectedState(0));
}

TEST(Snapshot, DirectionOwnersAndStates) {
  const IpAddr any4 = IpAddr::V4(0, 0, 0, 0);
  const IpAddr any6 = *IpAddr::Parse("::");
  const IpAddr lo = IpAddr::V4(127, 0, 0, 1);
  std::vector<DiagSocket> socks = {
      // SO_REUSEPORT siblings on :80; the older process is reported.
      Sock(kTcpListen, any4, 80, {}, 0, 1),
      Sock(kTcpListen, any4, 80, {}, 0, 2),
      Sock(kTcpListen, any6, 8080, {}, 0, 3),  // dual-stack
      Sock(kTcpListen, lo, 9000, {}, 0, 3),    // loopback only
      Sock(kTcpEstablished, kLocal, 80, kPeer, 40000, 4),
      Sock(kTcpEstablished, kLocal, 80, kPeer, 40001, 0),  // in the accept queue
      Sock(kTcpCloseWait, kLocal, 8080, kPeer, 40002, 3),  // v4 via the v6 wildcard
      Sock(kTcpFinWait2, kLocal, 9000, kPeer, 443, 4),     // port matches, address not
      Sock(kTcpEstablished, kLocal, 50000, kPeer, 80, 4),
      Sock(kTcpTimeWait, kLocal, 50001, kPeer, 80, 0),
      Sock(kTcpSynSent, kLocal, 50002, kPeer, 80, 4),
  };
  Snapshot snap;
  AddNetnsSockets(socks, ProbeFilter{}, EventSource::kSeed, 7 * kSec, OwnerOf, &snap);

  ASSERT_EQ(snap.listeners.size(), 3u);
  EXPECT_EQ(snap.listeners[0].key.lport, 80);
  EXPECT_EQ(snap.listeners[0].proc.pid, 1001u);  // started at tick 40, before 1000
  EXPECT_EQ(snap.listeners[0].kind, EventKind::kListen);
  EXPECT_EQ(snap.listeners[0].source, EventSource::kSeed);
  EXPECT_EQ(snap.listeners[0].ts_ns, 7 * kSec);

  ASSERT_EQ(snap.connections.size(), 5u);
  ASSERT_EQ(snap.cookies.size(), 5u);
  const ConnEvent* accepted = FindConn(snap, 80);
  ASSERT_NE(accepted, nullptr);
  EXPECT_EQ(accepted->direction, Direction::kPassive);
  EXPECT_EQ(accepted->proc.pid, 3000u);
  EXPECT_EQ(accepted->kind, EventKind::kOpen);
  EXPECT_EQ(accepted->counters.bytes_tx, 4u);
  EXPECT_EQ(snap.cookies[0], 4u);
  // Not accepted yet: no file, so the listener's owner stands in.
  EXPECT_EQ(snap.connections[1].key.rport, 40001);
  EXPECT_EQ(snap.connections[1].direction, Direction::kPassive);
  EXPECT_EQ(snap.connections[1].proc.pid, 1001u);
  EXPECT_EQ(FindConn(snap, 8080)->direction, Direction::kPassive);
  EXPECT_EQ(FindConn(snap, 9000)->direction, Direction::kActive);
  // Which FINs the counters include, from the state.
  EXPECT_EQ(accepted->tcp_flags, 0);
  EXPECT_EQ(FindConn(snap, 8080)->tcp_flags, FM_TCP_FIN_RECEIVED);  // CLOSE_WAIT
  EXPECT_EQ(FindConn(snap, 9000)->tcp_flags, FM_TCP_FIN_ACKED);     // FIN_WAIT2
  EXPECT_EQ(FindConn(snap, 50000)->direction, Direction::kActive);
  EXPECT_EQ(FindConn(snap, 50001), nullptr);  // TIME_WAIT is history
  EXPECT_EQ(FindConn(snap, 50002), nullptr);  // SYN_SENT is not open yet
}

TEST(Snapshot, PortFilterKeepsListenersForDirection) {
  std::vector<DiagSocket> socks = {
      Sock(kTcpListen, IpAddr::V4(0, 0, 0, 0), 80, {}, 0, 1),
      Sock(kTcpEstablished, kLocal, 80, kPeer, 5432, 4),
      Sock(kTcpEstablished, kLocal, 41000, kPeer, 5432, 4),
      Sock(kTcpEstablished, kLocal, 41001, kPeer, 6379, 4),
  };
  ProbeFilter filter;
  filter.ports = {5432};
  Snapshot snap;
  AddNetnsSockets(socks, filter, EventSource::kPoll, 0, OwnerOf, &snap);
  EXPECT_TRUE(snap.listeners.empty());
  ASSERT_EQ(snap.connections.size(), 2u);
  EXPECT_EQ(snap.connections[0].direction, Direction::kPassive);  // :80's listener still counts
  EXPECT_EQ(snap.connections[1].direction, Direction::kActive);

  filter = {};
  filter.family = AF_INET6;
  snap = {};
  AddNetnsSockets(socks, filter, EventSource::kPoll, 0, OwnerOf, &snap);
  EXPECT_TRUE(snap.connections.empty());
  EXPECT_TRUE(snap.listeners.empty());
}

// With a sink, the same events arrive a run at a time, a namespace's
// listeners first, and the snapshot keeps only the listeners.
TEST(Snapshot, SinkTakesTheSameEventsInRuns) {
  std::vector<DiagSocket> socks = {Sock(kTcpListen, IpAddr::V4(0, 0, 0, 0), 80, {}, 0, 1)};
  const size_t n = kSnapshotRun * 2 + 3;
  for (size_t i = 0; i < n; i++)
    socks.push_back(Sock(kTcpEstablished, kLocal, static_cast<uint16_t>(i % 2 ? 80 : 30000 + i),
                         kPeer, static_cast<uint16_t>(1000 + i), 4));
  Snapshot whole;
  AddNetnsSockets(socks, ProbeFilter{}, EventSource::kPoll, 5 * kSec, OwnerOf, &whole);

  Snapshot streamed;
  std::vector<size_t> runs;
  std::vector<ConnEvent> got;
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    runs.push_back(events.size());
    got.insert(got.end(), events.begin(), events.end());
  };
  AddNetnsSockets(socks, ProbeFilter{}, EventSource::kPoll, 5 * kSec, OwnerOf, &streamed, &sink);
  EXPECT_EQ(runs, (std::vector<size_t>{1, kSnapshotRun, kSnapshotRun, 3}));
  EXPECT_TRUE(streamed.connections.empty());
  EXPECT_TRUE(streamed.cookies.empty());
  ASSERT_EQ(streamed.listeners.size(), 1u);
  ASSERT_EQ(got.size(), n + 1);
  EXPECT_EQ(got[0].kind, EventKind::kListen);
  EXPECT_EQ(got[0].key, whole.listeners[0].key);
  ASSERT_EQ(whole.connections.size(), n);
  for (size_t i = 0; i < n; i++) {
    const ConnEvent& a = whole.connections[i];
    const ConnEvent& b = got[i + 1];
    EXPECT_EQ(b.kind, EventKind::kOpen);
    EXPECT_EQ(a.key, b.key) << i;
    EXPECT_EQ(a.direction, b.direction) << i;
    EXPECT_EQ(a.proc.pid, b.proc.pid) << i;
    EXPECT_EQ(a.counters, b.counters) << i;
  }
}

}  // namespace
}  // namespace flowmesh
