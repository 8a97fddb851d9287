// The open-connection table: merging reports, attribution at close, payload bytes.
#include <sys/socket.h>

#include <gtest/gtest.h>

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
