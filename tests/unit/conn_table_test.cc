// The open-connection table: merging reports, attribution at close, payload bytes.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <map>

#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"

namespace flowmesh {
namespace {

ConnEvent Ev(EventKind kind, EventSource source, uint32_t pid, Direction dir) {
  ConnEvent e;
  e.kind = kind;
  e.source = source;
  e.direction = dir;
  e.ts_ns = 1'000'000'000;
  e.key.netns = 1;
  e.key.laddr = IpAddr::V4(10, 0, 0, 1);
  e.key.raddr = IpAddr::V4(10, 0, 0, 2);
  e.key.lport = 40000;
  e.key.rport = 80;
  e.proc.pid = pid;
  e.proc.start_ticks = pid ? 77 : 0;
  if (pid) e.proc.set_comm("curl");
  return e;
}

TEST(ConnTable, CloseFromKernelGetsProcessOfSeededConnection) {
  ConnTable t;
  ConnEvent seed = Ev(EventKind::kOpen, EventSource::kSeed, 42, Direction::kActive);
  EXPECT_TRUE(t.Apply(seed));
  EXPECT_EQ(t.Stats().open, 1u);

  // BPF never saw this socket open: no pid, no direction.
  ConnEvent close = Ev(EventKind::kClose, EventSource::kKernel, 0, Direction::kUnknown);
  close.counters.bytes_tx = 1002;
  close.counters.bytes_rx = 5001;
  close.tcp_flags = FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED;
  EXPECT_TRUE(t.Apply(close));
  EXPECT_EQ(close.proc.pid, 42u);
  EXPECT_EQ(close.proc.comm_view(), "curl");
  EXPECT_EQ(close.direction, Direction::kActive);
  EXPECT_EQ(close.counters.bytes_tx, 1000u);  // SYN and FIN removed
  EXPECT_EQ(close.counters.bytes_rx, 5000u);
  ConnTableStats s = t.Stats();
  EXPECT_EQ(s.open, 0u);
  EXPECT_EQ(s.closes, 1u);
  EXPECT_EQ(s.close_without_open, 0u);
  EXPECT_EQ(s.close_unattributed, 0u);
}

TEST(ConnTable, DuplicateOpenMergesAndCountsOnce) {
  ConnTable t;
  ConnEvent seed = Ev(EventKind::kOpen, EventSource::kSeed, 0, Direction::kUnknown);
  ConnEvent kern = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
  EXPECT_TRUE(t.Apply(seed));
  EXPECT_FALSE(t.Apply(kern));
  ConnTableStats s = t.Stats();
  EXPECT_EQ(s.opens, 1u);
  auto conns = t.Connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].proc.pid, 42u);
  EXPECT_EQ(conns[0].direction, Direction::kActive);
}

TEST(ConnTable, UpdateNeverResurrectsAClosedConnection) {
  ConnTable t;
  ConnEvent open = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
  ConnEvent close = Ev(EventKind::kClose, EventSource::kKernel, 42, Direction::kActive);
  ConnEvent update = Ev(EventKind::kUpdate, EventSource::kPoll, 42, Direction::kUnknown);
  t.Apply(open);
  t.Apply(close);
  EXPECT_FALSE(t.Apply(update));
  EXPECT_TRUE(t.Connections().empty());
}

TEST(ConnTable, UpdateRefreshesLiveCountersAsPayload) {
  ConnTable t;
  ConnEvent open = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
  t.Apply(open);
  ConnEvent update = Ev(EventKind::kUpdate, EventSource::kPoll, 42, Direction::kUnknown);
  update.counters.bytes_tx = 301;  // SYN + 300
  update.counters.bytes_rx = 9000;
  update.counters.segs_out = 4;
  EXPECT_TRUE(t.Apply(update));
  auto conns = t.Connections();
  ASSERT_EQ(conns.size(), 1u);
  EXPECT_EQ(conns[0].counters.bytes_tx, 300u);
  EXPECT_EQ(conns[0].counters.bytes_rx, 9000u);
}

TEST(ConnTable, CloseOfUnknownConnectionIsCountedNotDropped) {
  ConnTable t;
  ConnEvent close = Ev(EventKind::kClose, EventSource::kKernel, 0, Direction::kUnknown);
  EXPECT_TRUE(t.Apply(close));
  ConnTableStats s = t.Stats();
  EXPECT_EQ(s.close_without_open, 1u);
  EXPECT_EQ(s.close_unattributed, 1u);
}

TEST(ConnTable, ListenersComeAndGo) {
  ConnTable t;
  ConnEvent l = Ev(EventKind::kListen, EventSource::kKernel, 7, Direction::kUnknown);
  l.key.raddr = {};
  l.key.rport = 0;
  t.Apply(l);
  EXPECT_EQ(t.Listeners().size(), 1u);
  ConnEvent u = l;
  u.kind = EventKind::kUnlisten;
  u.proc = {};
  t.Apply(u);
  EXPECT_EQ(u.proc.pid, 7u);  // attributed from the listen
  EXPECT_TRUE(t.Listeners().empty());
}

// Connections share one copy of what they hold of a process (ConnTable
// interns it): each still gives back exactly its own, across pid reuse and
// an attribution that changes for one of them only.
TEST(ConnTable, EachConnectionKeepsItsOwnProcessAcrossPidReuse) {
  ConnTable t;
  auto open = [&](uint16_t lport, uint64_t start_ticks, const char* comm) {
    ConnEvent e = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
    e.key.lport = lport;
    e.proc.start_ticks = start_ticks;
    e.proc.set_comm(comm);
    t.Apply(e);
  };
  auto close = [&](uint16_t lport) {
    ConnEvent e = Ev(EventKind::kClose, EventSource::kKernel, 0, Direction::kUnknown);
    e.key.lport = lport;
    t.Apply(e);
    return e.proc;
  };
  open(40001, 77, "curl");
  open(40002, 77, "curl");
  open(40003, 900, "wget");  // pid 42 again, a later process
  // Seeded without a process, then the kernel's report names one.
  ConnEvent seed = Ev(EventKind::kOpen, EventSource::kSeed, 0, Direction::kActive);
  seed.key.lport = 40004;
  t.Apply(seed);
  ConnEvent named = Ev(EventKind::kUpdate, EventSource::kPoll, 42, Direction::kActive);
  named.key.lport = 40004;
  named.proc.start_ticks = 900;
  named.proc.set_comm("wget");
  t.Apply(named);

  ProcessRef first = close(40001);
  EXPECT_EQ(first.start_ticks, 77u);
  EXPECT_EQ(first.comm_view(), "curl");
  ProcessRef reused = close(40003);
  EXPECT_EQ(reused.pid, 42u);
  EXPECT_EQ(reused.start_ticks, 900u);
  EXPECT_EQ(reused.comm_view(), "wget");
  // Its sibling's process is still there after the first's close.
  auto conns = t.Connections();
  ASSERT_EQ(conns.size(), 2u);
  for (const OpenConnection& c : conns) {
    EXPECT_EQ(c.proc.pid, 42u);
    EXPECT_EQ(c.proc.start_ticks, c.key.lport == 40002 ? 77u : 900u) << c.key.lport;
  }
  // A freed entry taken by another process does not leak into the rest.
  open(40005, 1234, "psql");
  EXPECT_EQ(close(40002).comm_view(), "curl");
  EXPECT_EQ(close(40004).comm_view(), "wget");
  EXPECT_EQ(close(40005).comm_view(), "psql");
  EXPECT_EQ(t.Stats().close_unattributed, 0u);
}

// The kernel's attribution wins over a snapshot's for one connection only.
TEST(ConnTable, KernelAttributionChangesOnlyItsOwnConnection) {
  ConnTable t;
  for (uint16_t lport : {40001, 40002}) {
    ConnEvent seed = Ev(EventKind::kOpen, EventSource::kSeed, 42, Direction::kActive);
    seed.key.lport = lport;
    t.Apply(seed);
  }
  ConnEvent kern = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
  kern.key.lport = 40002;
  kern.proc.set_comm("curl-worker");  // renamed since the snapshot read it
  t.Apply(kern);
  for (const OpenConnection& c : t.Connections())
    EXPECT_EQ(c.proc.comm_view(), c.key.lport == 40002 ? "curl-worker" : "curl") << c.key.lport;
}

TEST(ConnTable, ForEachConnectionGivesEveryKeyAndItsSequence) {
  ConnTable t;
  for (uint16_t lport : {40001, 40002, 40003}) {
    ConnEvent e = Ev(EventKind::kOpen, EventSource::kKernel, 42, Direction::kActive);
    e.key.lport = lport;
    t.Apply(e);
  }
  std::map<uint16_t, uint64_t> seen;
  t.ForEachConnection([&](const ConnKey& k, uint64_t seq) { seen[k.lport] = seq; });
  EXPECT_EQ(seen, (std::map<uint16_t, uint64_t>{{40001, 1}, {40002, 2}, {40003, 3}}));
}

TEST(EventHub, SlowWatcherLosesOnlyItsOwnEventsAndIsTold) {
  EventHub hub;
  auto fast = hub.Subscribe(100);
  auto slow = hub.Subscribe(2);
  int notified = 0;
  slow->SetNotify([&] { notified++; });
  ConnEvent e = Ev(EventKind::kOpen, EventSource::kKernel, 1, Direction::kActive);
  for (int i = 0; i < 5; i++) hub.Publish(e);
  std::vector<ConnEvent> got;
  EXPECT_EQ(fast->Drain(&got, 100), 5u);
  got.clear();
  EXPECT_EQ(slow->Drain(&got, 100), 2u);
  EXPECT_EQ(slow->dropped(), 3u);
  EXPECT_EQ(notified, 1);  // only on empty -> non-empty
  slow->Close();
  hub.Publish(e);
  EXPECT_EQ(hub.subscriber_count(), 1u);
}

}  // namespace
}  // namespace flowmesh
