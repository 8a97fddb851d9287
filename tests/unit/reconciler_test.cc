// Reconciliation of the open-connection table with sock_diag dumps (fake
// ones here): a close the probe missed is made up and marked, and nothing
// that is open, just opened, or whose real close is on its way is closed
// by it, nor closed twice.
#include "node/flow/reconciler.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include "node/flow/pipeline.h"
#include "node/flow/aggregator.h"
#include "node/flow/conn_table.h"

namespace flowmesh {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000'000'000;
constexpr int64_t kSec = 1'000'000'000;

ConnKey Key(uint16_t lport, uint16_t rport, uint32_t netns = 1) {
  ConnKey k;
  k.netns = netns;
  k.laddr = IpAddr::V4(127, 0, 0, 1);
  k.raddr = IpAddr::V4(127, 0, 0, 1);
  k.lport = lport;
  k.rport = rport;
  return k;
}

ConnEvent Ev(EventKind kind, const ConnKey& key, int64_t ts_ns) {
  ConnEvent e;
  e.kind = kind;
  e.source = EventSource::kKernel;
  e.direction = Direction::kActive;
  e.ts_ns = ts_ns;
  e.key = key;
  e.proc.pid = 42;
  e.proc.start_ticks = 7;
  e.proc.set_comm("curl");
  return e;
}

// A dump that finds `present`, taken at kT0 + at_s seconds, with the table's
// sequence read just before it began.
KernelView Dump(const ConnTable& t, std::initializer_list<ConnKey> present, int at_s,
                std::initializer_list<ConnKey> listeners = {}) {
  KernelView v;
  v.taken_ns = kT0 + at_s * kSec;
  v.table_seq = t.Sequence();
  v.netns = {1};
  for (const ConnKey& k : present) v.connections.insert(k);
  for (const ConnKey& k : listeners) v.listeners.insert(ListenKey(k));
  return v;
}

class ReconcilerTest : public ::testing::Test {
 protected:
  void Open(const ConnKey& k, int at_s = 0) {
    ConnEvent e = Ev(EventKind::kOpen, k, kT0 + at_s * kSec);
    table.Apply(e);
  }
  bool Close(const ConnKey& k, int at_s) {
    ConnEvent e = Ev(EventKind::kClose, k, kT0 + at_s * kSec);
    return table.Apply(e);
  }
  bool IsOpen(const ConnKey& k) const {
    for (const OpenConnection& c : table.Connections())
      if (c.key == k) return true;
    return false;
  }

  ConnTable table;
  Reconciler rec{table, ReconcilerOptions{30 * kSec, 2 * kSec}};
};

TEST_F(ReconcilerTest, AfterTheStartUpSnapshotTheFirstDumpWaitsAnInterval) {
  EXPECT_TRUE(rec.Due(0));  // not started: due at once
  rec.StartAfter(5 * kSec);
  EXPECT_FALSE(rec.Due(5 * kSec));
  EXPECT_FALSE(rec.Due(35 * kSec - 1));
  EXPECT_TRUE(rec.Due(35 * kSec));
}

TEST_F(ReconcilerTest, MissedCloseIsMadeUpAfterTwoDumpsMissItAndIsMarked) {
  const ConnKey a = Key(40000, 80), b = Key(40001, 80);
  Open(a);
  Open(b);
  EXPECT_TRUE(rec.Apply(Dump(table, {b}, 10), 0).empty()) << "one dump alone proves nothing";
  EXPECT_EQ(rec.Stats().candidates, 1u);
  EXPECT_TRUE(IsOpen(a));

  std::vector<ConnEvent> out = rec.Apply(Dump(table, {b}, 12), 2 * kSec);
  ASSERT_EQ(out.size(), 1u);
  const ConnEvent& c = out[0];
  EXPECT_EQ(c.kind, EventKind::kClose);
  EXPECT_TRUE(c.reconstructed);
  EXPECT_EQ(c.key, a);
  EXPECT_EQ(c.proc.pid, 42u);
  EXPECT_EQ(c.proc.comm_view(), "curl");
  EXPECT_EQ(c.direction, Direction::kActive);
  EXPECT_EQ(c.ts_ns, kT0 + 10 * kSec) << "closed when first found gone";
  EXPECT_EQ(c.duration_ns, static_cast<uint64_t>(10 * kSec));
  EXPECT_FALSE(IsOpen(a));
  EXPECT_TRUE(IsOpen(b));
  ConnTableStats s = table.Stats();
  EXPECT_EQ(s.reconstructed_closes, 1u);
  EXPECT_EQ(s.closes, 1u);
  EXPECT_EQ(s.open, 1u);
}

TEST_F(ReconcilerTest, ADumpThatUpdatedTheTableIsJudgedBySequenceAlone) {
  // meshd's dumps send each connection they find through the table as an
  // UPDATE and keep no set of keys (found_in_table).
  const ConnKey a = Key(40000, 80), b = Key(40001, 80), c = Key(40002, 80);
  const ConnKey elsewhere = Key(40003, 80, /*netns=*/2);  // a namespace not dumped
  Open(a);
  Open(b);
  Open(c);
  Open(elsewhere);
  auto dump = [&](std::initializer_list<ConnKey> found, int at_s) {
    KernelView v = Dump(table, {}, at_s);  // the sequence read before it began
    for (const ConnKey& k : found) {
      ConnEvent e = Ev(EventKind::kUpdate, k, kT0 + at_s * kSec);
      EXPECT_TRUE(table.Apply(e));
    }
    v.found_in_table = true;
    return v;
  };
  EXPECT_TRUE(rec.Apply(dump({b}, 10), 0).empty());
  EXPECT_EQ(rec.Stats().candidates, 2u) << "a and c; not b, found; not elsewhere, not dumped";
  // The confirming dump finds c after all: only a is closed.
  std::vector<ConnEvent> out = rec.Apply(dump({b, c}, 12), 2 * kSec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].key, a);
  EXPECT_TRUE(out[0].reconstructed);
  EXPECT_EQ(out[0].ts_ns, kT0 + 10 * kSec);
  EXPECT_FALSE(IsOpen(a));
  EXPECT_TRUE(IsOpen(b));
  EXPECT_TRUE(IsOpen(c));
  EXPECT_TRUE(IsOpen(elsewhere));
  EXPECT_EQ(rec.Stats().candidates, 0u);
}

TEST_F(ReconcilerTest, ConnectionOpenedWhileTheDumpRanIsNotJudged) {
  const ConnKey a = Key(40000, 80);
  KernelView first = Dump(table, {}, 10);  // began before a opened; did not see it
  Open(a, 10);
  EXPECT_TRUE(rec.Apply(first, 0).empty());
  EXPECT_EQ(rec.Stats().candidates, 0u);
  EXPECT_TRUE(rec.Apply(Dump(table, {a}, 40), 30 * kSec).empty());
  EXPECT_TRUE(IsOpen(a));
  EXPECT_EQ(table.Stats().reconstructed_closes, 0u);
}

TEST_F(ReconcilerTest, RealCloseStillInTheRingBufferWinsAndIsNotDoubled) {
  const ConnKey a = Key(40000, 80);
  Open(a);
  EXPECT_TRUE(rec.Apply(Dump(table, {}, 10), 0).empty());
  EXPECT_TRUE(Close(a, 9)) << "the kernel's CLOSE, drained after the first dump";
  EXPECT_TRUE(rec.Apply(Dump(table, {}, 12), 2 * kSec).empty());
  ConnTableStats s = table.Stats();
  EXPECT_EQ(s.closes, 1u);
  EXPECT_EQ(s.reconstructed_closes, 0u);
}

TEST_F(ReconcilerTest, LateRealCloseAfterAMadeUpOneIsDropped) {
  const ConnKey a = Key(40000, 80);
  Open(a);
  rec.Apply(Dump(table, {}, 10), 0);
  ASSERT_EQ(rec.Apply(Dump(table, {}, 12), 2 * kSec).size(), 1u);
  EXPECT_FALSE(Close(a, 9)) << "dropped: the connection is already closed";
  ConnTableStats s = table.Stats();
  EXPECT_EQ(s.closes, 1u);
  EXPECT_EQ(s.late_closes_dropped, 1u);
  EXPECT_EQ(s.close_without_open, 0u);

  // A new connection on the same 4-tuple closes normally.
  Open(a, 20);
  EXPECT_TRUE(Close(a, 21));
  EXPECT_EQ(table.Stats().closes, 2u);
}

TEST_F(ReconcilerTest, ReportedBetweenTheDumpsIsNotClosed) {
  const ConnKey a = Key(40000, 80), b = Key(40001, 80);
  Open(a);
  Open(b);
  rec.Apply(Dump(table, {}, 10), 0);
  EXPECT_EQ(rec.Stats().candidates, 2u);
  // a: a live counter refresh saw it; b: closed and a new connection took
  // its 4-tuple. The second dump, under churn, misses both.
  ConnEvent update = Ev(EventKind::kUpdate, a, kT0 + 11 * kSec);
  update.source = EventSource::kPoll;
  table.Apply(update);
  Open(b, 11);
  EXPECT_TRUE(rec.Apply(Dump(table, {}, 12), 2 * kSec).empty());
  EXPECT_TRUE(IsOpen(a));
  EXPECT_TRUE(IsOpen(b));
}

TEST_F(ReconcilerTest, NamespaceTheDumpDidNotCoverIsNotJudged) {
  const ConnKey a = Key(40000, 80, /*netns=*/2);
  Open(a);
  rec.Apply(Dump(table, {}, 10), 0);
  EXPECT_TRUE(rec.Apply(Dump(table, {}, 12), 2 * kSec).empty());
  EXPECT_TRUE(IsOpen(a));
}

TEST_F(ReconcilerTest, MissedUnlistenIsMadeUp) {
  ConnKey l = Key(8080, 0);
  l.raddr = IpAddr{};
  ConnEvent listen = Ev(EventKind::kListen, l, kT0);
  table.Apply(listen);
  ConnKey other = Key(9090, 0);
  other.raddr = IpAddr{};
  ConnEvent listen2 = Ev(EventKind::kListen, other, kT0);
  table.Apply(listen2);
  rec.Apply(Dump(table, {}, 10, {other}), 0);
  std::vector<ConnEvent> out = rec.Apply(Dump(table, {}, 12, {other}), 2 * kSec);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, EventKind::kUnlisten);
  EXPECT_TRUE(out[0].reconstructed);
  EXPECT_EQ(out[0].key.lport, 8080);
  EXPECT_EQ(out[0].proc.pid, 42u);
  ASSERT_EQ(table.Listeners().size(), 1u);
  EXPECT_EQ(table.Listeners()[0].key.lport, 9090);
  EXPECT_EQ(table.Stats().reconstructed_unlistens, 1u);
}

TEST_F(ReconcilerTest, ConfirmsSoonAfterFindingSomethingElseEveryInterval) {
  EXPECT_TRUE(rec.Due(0));
  Open(Key(40000, 80));
  rec.Apply(Dump(table, {Key(40000, 80)}, 0), 0);
  EXPECT_FALSE(rec.Due(29 * kSec));
  EXPECT_TRUE(rec.Due(30 * kSec));
  rec.Apply(Dump(table, {}, 30), 30 * kSec);
  EXPECT_FALSE(rec.Due(31 * kSec));
  EXPECT_TRUE(rec.Due(32 * kSec)) << "a candidate is confirmed after 2 s, not 30";
  rec.Failed(32 * kSec);
  EXPECT_FALSE(rec.Due(61 * kSec));
  EXPECT_TRUE(rec.Due(62 * kSec));
  EXPECT_EQ(rec.Stats().dump_failures, 1u);
}

// Under churn every dump misses connections whose CLOSE is still in the
// ring: once the ring has reported them there is nothing to confirm, and the
// next dump is an interval away, not confirm_after_ns (each dump reads every
// open socket). A candidate still unreported keeps the confirming dump.
TEST_F(ReconcilerTest, CandidatesTheRingReportedNeedNoConfirmingDump) {
  const ConnKey a = Key(40000, 80), b = Key(40001, 80), c = Key(40002, 80);
  Open(a);
  Open(b);
  Open(c);
  rec.Apply(Dump(table, {c}, 0), 0);
  EXPECT_EQ(rec.Stats().candidates, 2u);
  EXPECT_TRUE(rec.Due(2 * kSec));
  EXPECT_TRUE(Close(a, 0));
  rec.DropReported(1 * kSec);
  EXPECT_EQ(rec.Stats().candidates, 1u) << "b is still unreported";
  EXPECT_TRUE(rec.Due(2 * kSec));
  ConnEvent update = Ev(EventKind::kUpdate, b, kT0 + kSec);
  table.Apply(update);  // reported since: not what the dump judged
  rec.DropReported(1 * kSec);
  EXPECT_EQ(rec.Stats().candidates, 0u);
  EXPECT_FALSE(rec.Due(2 * kSec));
  EXPECT_FALSE(rec.Due(29 * kSec));
  EXPECT_TRUE(rec.Due(30 * kSec));
  EXPECT_TRUE(IsOpen(b));
  EXPECT_EQ(table.Stats().reconstructed_closes, 0u);

  // A listener's candidate the same way.
  const ConnKey l = Key(8080, 0);
  ConnEvent listen = Ev(EventKind::kListen, l, kT0);
  table.Apply(listen);
  rec.Apply(Dump(table, {b, c}, 30), 30 * kSec);
  EXPECT_EQ(rec.Stats().candidates, 1u);
  ConnEvent unlisten = Ev(EventKind::kUnlisten, l, kT0 + 30 * kSec);
  table.Apply(unlisten);
  rec.DropReported(31 * kSec);
  EXPECT_EQ(rec.Stats().candidates, 0u);
  EXPECT_FALSE(rec.Due(32 * kSec));
  EXPECT_TRUE(rec.Due(60 * kSec));
}

// Through the pipeline to the store's batch: one record, marked, even when
// the real CLOSE turns up afterwards.
TEST(ReconcilerPipeline, OneReconstructedRecordForAMissedClose) {
  Pipeline p;
  Aggregator agg(nullptr);
  agg.set_remember_kernel_closes(false);  // as meshd runs streaming
  p.set_aggregator(&agg);
  Reconciler rec(p.table(), ReconcilerOptions{30 * kSec, 2 * kSec});
  const ConnKey a = Key(40000, 80);
  p.OnEvent(Ev(EventKind::kOpen, a, kT0));

  auto dump = [&](int at_s) {
    KernelView v;
    v.taken_ns = kT0 + at_s * kSec;
    v.table_seq = p.table().Sequence();
    v.netns = {1};
    return v;
  };
  for (const ConnEvent& e : rec.Apply(dump(10), 0)) p.Forward(e);
  for (const ConnEvent& e : rec.Apply(dump(12), 2 * kSec)) p.Forward(e);
  p.OnEvent(Ev(EventKind::kClose, a, kT0 + 9 * kSec));  // late, not lost

  Batch b = agg.TakeBatch();
  ASSERT_EQ(b.records.size(), 1u);
  EXPECT_TRUE(b.records[0].reconstructed);
  EXPECT_EQ(b.records[0].ts_ns, kT0 + 10 * kSec);
  EXPECT_EQ(b.records[0].proc.pid, 42u);
}

// The dump's keys as one sorted array: duplicates and both families, found
// exactly, and a key that differs in any one field is not.
TEST(ConnKeySet, FindsExactlyTheKeysInsertedOnceSealed) {
  ConnKeySet set;
  ConnKey v6 = Key(40000, 80);
  v6.laddr = *IpAddr::Parse("fd00::1");
  v6.raddr = *IpAddr::Parse("fd00::2");
  for (int i = 0; i < 3; i++) {
    set.insert(Key(40002, 80));
    set.insert(v6);
    set.insert(Key(40001, 80, 2));
  }
  set.Seal();
  EXPECT_EQ(set.size(), 3u);
  EXPECT_TRUE(set.contains(Key(40002, 80)));
  EXPECT_TRUE(set.contains(v6));
  EXPECT_TRUE(set.contains(Key(40001, 80, 2)));
  EXPECT_FALSE(set.contains(Key(40001, 80)));  // another namespace
  EXPECT_FALSE(set.contains(Key(40002, 81)));  // another remote port
  ConnKey v4 = v6;
  v4.laddr.family = AF_INET;
  EXPECT_FALSE(set.contains(v4));  // another family
  EXPECT_FALSE(ConnKeySet().contains(Key(40002, 80)));
}

}  // namespace
}  // namespace flowmesh
