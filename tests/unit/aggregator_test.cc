// The aggregator: ephemeral-port collapse, active/passive flows, one count per
// real connection across probes, counter deltas, pid reuse, buckets,
// listeners and process details. Events go through ConnTable::Apply first,
// as in meshd.
#include "node/flow/aggregator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <thread>

#include "node/flow/conn_table.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;  // 2023-11-14, Unix ns
constexpr int64_t kSec = 1'000'000'000;
const IpAddr kWeb = IpAddr::V4(10, 213, 0, 2);
const IpAddr kApp = IpAddr::V4(10, 213, 0, 3);
const IpAddr kClient = IpAddr::V4(10, 213, 0, 1);

ProcessRef Proc(uint32_t pid, uint64_t start, const char* comm) {
  ProcessRef p;
  p.pid = pid;
  p.start_ticks = start;
  p.set_comm(comm);
  return p;
}

ConnEvent Ev(EventKind kind, EventSource src, Direction dir, int64_t ts, ConnKey key,
             ProcessRef proc = {}) {
  ConnEvent e;
  e.kind = kind;
  e.source = src;
  e.direction = dir;
  e.ts_ns = ts;
  e.key = key;
  e.proc = proc;
  return e;
}

// An active connection from kWeb:lport to kApp:8000.
ConnKey Active(uint16_t lport) { return ConnKey{1, kWeb, kApp, lport, 8000}; }
// A passive connection accepted on kWeb:80 from kClient:rport.
ConnKey Passive(uint16_t rport) { return ConnKey{1, kWeb, kClient, 80, rport}; }

TcpCounters Bytes(uint64_t tx, uint64_t rx, uint32_t rtt = 0) {
  TcpCounters c;
  c.bytes_tx = tx;
  c.bytes_rx = rx;
  c.segs_out = static_cast<uint32_t>(tx / 100);
  c.segs_in = static_cast<uint32_t>(rx / 100);
  c.rtt_us = rtt;
  return c;
}

// Runs events through a ConnTable and an Aggregator, as the pipeline does.
class AggregatorTest : public ::testing::Test {
 protected:
  void Feed(ConnEvent ev) {
    table_.Apply(ev);
    agg_.Add(ev);
  }
  // Flow stats of the taken batch summed per key (over buckets).
  static std::map<std::pair<uint32_t, uint16_t>, FlowStats> ByPidAndPort(const Batch& b) {
    std::map<std::pair<uint32_t, uint16_t>, FlowStats> out;
    for (const FlowDelta& d : b.flows)
      out[{d.key.pid, static_cast<uint16_t>(d.key.lport + d.key.rport)}].Merge(d.stats);
    return out;
  }

  ConnTable table_;
  Aggregator agg_{nullptr};
  const ProcessRef nginx_ = Proc(4656, 9000, "nginx");
};

TEST_F(AggregatorTest, ActiveConnectionsCollapseTheLocalEphemeralPort) {
  for (uint16_t lport : {40001, 40002, 40003}) {
    Feed(
        Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(lport), nginx_));
    ConnEvent close =
        Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + kSec, Active(lport));
    close.counters = Bytes(1000, 2000, 150);
    Feed(close);
  }
  Batch b = agg_.TakeBatch();
  EXPECT_THAT(b.records, SizeIs(3));
  ASSERT_THAT(b.flows, SizeIs(1));  // same bucket, same key
  const FlowDelta& d = b.flows[0];
  EXPECT_EQ(d.key.direction, Direction::kActive);
  EXPECT_EQ(d.key.pid, 4656u);
  EXPECT_EQ(d.key.start_ticks, 9000u);
  EXPECT_EQ(d.key.laddr, kWeb);
  EXPECT_EQ(d.key.lport, 0);
  EXPECT_EQ(d.key.raddr, kApp);
  EXPECT_EQ(d.key.rport, 8000);
  EXPECT_EQ(d.stats.connections, 3u);
  // ConnTable::Apply removed the active opener's SYN from bytes_tx (no FIN flags).
  EXPECT_EQ(d.stats.bytes_tx, 3u * 999);
  EXPECT_EQ(d.stats.bytes_rx, 3u * 2000);
  EXPECT_EQ(d.stats.rtt_samples, 3u);
  EXPECT_EQ(d.stats.rtt_mean_us(), 150u);
  EXPECT_EQ(d.stats.first_seen_ns, kT0);
  EXPECT_EQ(d.stats.last_seen_ns, kT0 + kSec);
}

// meshd --records off: the same closes in the same flows, and no records.
TEST(AggregatorRecordsOff, ClosesGoIntoFlowsOnly) {
  AggregatorOptions o;
  o.keep_records = false;
  Aggregator agg(nullptr, o);
  ConnTable table;
  const ProcessRef nginx = Proc(4656, 9000, "nginx");
  for (uint16_t lport : {40001, 40002}) {
    for (ConnEvent ev :
         {Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(lport), nginx),
          Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + kSec,
             Active(lport))}) {
      ev.counters = Bytes(1000, 2000);
      table.Apply(ev);
      agg.Add(ev);
    }
  }
  EXPECT_EQ(agg.Stats().records, 2u) << "closes are still counted";
  Batch b = agg.TakeBatch();
  EXPECT_THAT(b.records, IsEmpty());
  ASSERT_THAT(b.flows, SizeIs(1));
  EXPECT_EQ(b.flows[0].stats.connections, 2u);
  EXPECT_EQ(b.flows[0].stats.bytes_rx, 2u * 2000);
  EXPECT_EQ(b.flows[0].key.pid, 4656u);
}

// Once the threshold's records are pending the flusher is told, once per
// batch: however heavy the churn, a batch stays that size.
TEST_F(AggregatorTest, TellsOnceWhenABatchWorthOfRecordsIsPending) {
  int told = 0;
  agg_.set_on_pending_full(3, [&] { ++told; });
  auto close = [&](uint16_t lport) {
    Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(lport),
            nginx_));
  };
  close(40001);
  close(40002);
  EXPECT_EQ(told, 0);
  close(40003);
  EXPECT_EQ(told, 1);
  close(40004);
  EXPECT_EQ(told, 1) << "told once per batch";
  EXPECT_THAT(agg_.TakeBatch().records, SizeIs(4));
  close(40005);
  close(40006);
  close(40007);
  EXPECT_EQ(told, 2) << "and again for the next batch";
}

// A written batch handed back (Recycle) is where the next batch after the
// one filling now goes: two buffers take turns, warm, instead of a fresh one
// per batch. One grown past a few batches' worth is not kept.
TEST_F(AggregatorTest, WrittenBatchesRecordsMemoryIsReused) {
  agg_.set_on_pending_full(3, [] {});
  uint16_t port = 40000;
  auto close = [&] {
    Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(++port),
            nginx_));
  };
  close();
  agg_.TakeBatch();  // the next batch gets room for the threshold and half again
  close();
  Batch first = agg_.TakeBatch();
  ASSERT_THAT(first.records, SizeIs(1));
  const ConnRecord* first_buffer = first.records.data();
  agg_.Recycle(std::move(first));
  close();
  Batch second = agg_.TakeBatch();  // was filling when the first came back
  ASSERT_THAT(second.records, SizeIs(1));
  EXPECT_NE(second.records.data(), first_buffer);
  close();
  close();
  Batch third = agg_.TakeBatch();
  ASSERT_THAT(third.records, SizeIs(2));
  EXPECT_EQ(third.records.data(), first_buffer) << "the first batch's buffer, filled again";
  EXPECT_EQ(third.records[0].key, Active(port - 1));

  Batch huge;
  huge.records.reserve(1'000'000);
  const ConnRecord* huge_buffer = huge.records.data();
  agg_.Recycle(std::move(huge));
  close();
  agg_.TakeBatch();
  close();
  EXPECT_NE(agg_.TakeBatch().records.data(), huge_buffer);
}

TEST_F(AggregatorTest, PassiveConnectionsCollapseThePeerPort) {
  Feed(Ev(EventKind::kListen, EventSource::kKernel, Direction::kUnknown, kT0,
          ConnKey{1, IpAddr::V4(0, 0, 0, 0), {}, 80, 0}, nginx_));
  for (uint16_t rport : {50001, 50002}) {
    Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kPassive, kT0, Passive(rport),
            nginx_));
    Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kPassive, kT0, Passive(rport)));
  }
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(1));
  EXPECT_EQ(b.flows[0].key.direction, Direction::kPassive);
  EXPECT_EQ(b.flows[0].key.laddr, kWeb);  // the accepted socket's address, not 0.0.0.0
  EXPECT_EQ(b.flows[0].key.lport, 80);
  EXPECT_EQ(b.flows[0].key.raddr, kClient);
  EXPECT_EQ(b.flows[0].key.rport, 0);
  EXPECT_EQ(b.flows[0].stats.connections, 2u);
  ASSERT_THAT(b.records, SizeIs(2));
  EXPECT_EQ(b.records[1].key.rport, 50002);  // records keep the full 4-tuple
  EXPECT_EQ(b.records[1].proc.pid, 4656u);
}

// Open before meshd looked: carried into the start-up bucket, not opened
// there, and its bytes so far are a baseline (a previous meshd accounted
// them, or they moved before any window meshd can speak for).
TEST_F(AggregatorTest, SeedIsCarriedNotOpenedAndCountsOnceWithTheKernelsOpen) {
  ConnEvent seed =
      Ev(EventKind::kOpen, EventSource::kSeed, Direction::kActive, kT0, Active(40001), nginx_);
  seed.counters = Bytes(500, 700);
  Feed(seed);
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001), nginx_));
  ConnEvent close =
      Ev(EventKind::kClose, EventSource::kKernel, Direction::kUnknown, kT0 + kSec, Active(40001));
  close.counters = Bytes(1001, 1200);
  Feed(close);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.records, SizeIs(1));
  EXPECT_EQ(b.records[0].proc.pid, 4656u);
  EXPECT_EQ(b.records[0].direction, Direction::kActive);
  auto flows = ByPidAndPort(b);
  ASSERT_EQ(flows.size(), 1u);
  FlowStats s = flows.begin()->second;
  EXPECT_EQ(s.connections, 0u);
  EXPECT_EQ(s.carried, 1u);
  EXPECT_EQ(s.active(), 1u);
  EXPECT_EQ(s.bytes_tx, 501u);  // since the seed: 1000 payload bytes at close, 499 at the seed
  EXPECT_EQ(s.bytes_rx, 500u);
  AggregatorStats st = agg_.Stats();
  EXPECT_EQ(st.duplicate_opens, 1u);
  EXPECT_EQ(st.records, 1u);
  EXPECT_EQ(st.tracked, 0u);
}

// Streaming mode after the seed: kernel closes are not remembered (nothing
// else reports opens or closes any more), closes from other sources still are.
TEST_F(AggregatorTest, KernelOnlyModeRemembersOnlyOtherSourcesCloses) {
  agg_.set_remember_kernel_closes(false);
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001), nginx_));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + kSec, Active(40001)));
  // Not remembered: a (hypothetical) second report would count again.
  Feed(Ev(EventKind::kClose, EventSource::kPoll, Direction::kActive, kT0 + 2 * kSec, Active(40001),
          nginx_));
  EXPECT_EQ(agg_.Stats().duplicates_ignored, 0u);
  // A poll close is remembered, so its duplicate is still ignored.
  Feed(Ev(EventKind::kClose, EventSource::kPoll, Direction::kActive, kT0 + 3 * kSec, Active(40002),
          nginx_));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + 3 * kSec,
          Active(40002)));
  EXPECT_EQ(agg_.Stats().duplicates_ignored, 1u);
  EXPECT_THAT(agg_.TakeBatch().records, SizeIs(3));
}

TEST_F(AggregatorTest, PollAndKernelCloseOfOneConnectionMakeOneRecord) {
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001), nginx_));
  ConnEvent kclose =
      Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + kSec, Active(40001));
  kclose.counters = Bytes(1001, 300);
  Feed(kclose);
  // The poller notices the socket is gone a moment later, with its last counters.
  ConnEvent pclose = Ev(EventKind::kClose, EventSource::kPoll, Direction::kActive, kT0 + 2 * kSec,
                        Active(40001), nginx_);
  pclose.counters = Bytes(801, 300);
  Feed(pclose);
  Batch b = agg_.TakeBatch();
  EXPECT_THAT(b.records, SizeIs(1));
  auto flows = ByPidAndPort(b);
  EXPECT_EQ(flows.begin()->second.connections, 1u);
  EXPECT_EQ(flows.begin()->second.bytes_tx, 1000u);
  EXPECT_EQ(agg_.Stats().duplicates_ignored, 1u);

  // Past the window, the same 4-tuple closing is a new connection (its open unseen).
  ConnEvent later = Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + 40 * kSec,
                       Active(40001), nginx_);
  Feed(later);
  b = agg_.TakeBatch();
  EXPECT_THAT(b.records, SizeIs(1));
  EXPECT_EQ(ByPidAndPort(b).begin()->second.connections, 1u);
}

TEST_F(AggregatorTest, AnOpenBetweenTwoClosesMakesTheSecondReal) {
  for (int i = 0; i < 2; i++) {
    Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0 + i, Active(40001),
            nginx_));
    Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + i, Active(40001)));
  }
  Batch b = agg_.TakeBatch();
  EXPECT_THAT(b.records, SizeIs(2));
  EXPECT_EQ(ByPidAndPort(b).begin()->second.connections, 2u);
}

TEST_F(AggregatorTest, UpdatesAddDeltasAndTheCloseOnlyTheRest) {
  const int64_t t = FlowBucketOf(kT0);
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40001), nginx_));
  // One update per minute bucket; the second changed nothing and adds no delta.
  const uint64_t tx[] = {100, 100, 400};
  for (int i = 0; i < 3; i++) {
    ConnEvent up = Ev(EventKind::kUpdate, EventSource::kPoll, Direction::kActive,
                      t + i * kFlowBucketNs, Active(40001), nginx_);
    up.counters = Bytes(tx[i] + 1, 2 * tx[i]);  // +1: the SYN in sequence space
    Feed(up);
  }
  ConnEvent close = Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive,
                       t + 2 * kFlowBucketNs, Active(40001));
  close.counters = Bytes(1001, 2000, 80);
  Feed(close);
  Batch b = agg_.TakeBatch();
  // The middle bucket moved nothing and is no checkpoint: no row. A window
  // of it alone finds the connection open from its open and no close yet.
  ASSERT_THAT(b.flows, SizeIs(2));
  EXPECT_EQ(b.flows[0].bucket_ns, t);
  EXPECT_EQ(b.flows[0].stats.bytes_tx, 100u);
  EXPECT_EQ(b.flows[0].stats.closed, 0u);
  EXPECT_EQ(b.flows[1].bucket_ns, t + 2 * kFlowBucketNs);
  EXPECT_EQ(b.flows[1].stats.bytes_tx, 900u);
  EXPECT_EQ(b.flows[1].stats.closed, 1u);
  FlowStats s = ByPidAndPort(b).begin()->second;
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.closed, 1u);
  EXPECT_EQ(s.active(), 1u);  // summed over time, one connection
  EXPECT_EQ(s.bytes_tx, 1000u);
  EXPECT_EQ(s.bytes_rx, 2000u);
  EXPECT_EQ(s.segs_out, 10u);
  EXPECT_EQ(s.rtt_samples, 1u);  // only the close samples RTT
  EXPECT_EQ(s.rtt_max_us, 80u);
}

TEST_F(AggregatorTest, UpdateOfAnUntrackedConnectionCreatesNothing) {
  ConnEvent up =
      Ev(EventKind::kUpdate, EventSource::kPoll, Direction::kActive, kT0, Active(40001), nginx_);
  up.counters = Bytes(100, 100);
  agg_.Add(up);  // straight in: ConnTable would drop it too
  EXPECT_TRUE(agg_.TakeBatch().empty());
  EXPECT_EQ(agg_.Stats().untracked_updates, 1u);
}

TEST_F(AggregatorTest, PidReuseMakesADifferentFlow) {
  ProcessRef first = Proc(777, 100, "worker");
  ProcessRef second = Proc(777, 5000, "worker");  // same pid, later start
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001), first));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(40001)));
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40002), second));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(40002)));
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(2));
  EXPECT_EQ(b.flows[0].key.start_ticks, 100u);
  EXPECT_EQ(b.flows[1].key.start_ticks, 5000u);
  EXPECT_EQ(b.flows[0].stats.connections, 1u);
  EXPECT_EQ(b.flows[1].stats.connections, 1u);
  EXPECT_THAT(b.processes, SizeIs(2));
}

TEST_F(AggregatorTest, OpenedInTheBucketOfItsOpenClosedWithItsBytesInTheBucketOfItsClose) {
  const int64_t t = FlowBucketOf(kT0) + 30 * kSec;
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40001), nginx_));
  ConnEvent close =
      Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, t + 90 * kSec, Active(40001));
  close.counters = Bytes(101, 200);
  Feed(close);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(2));
  EXPECT_EQ(b.flows[0].bucket_ns, FlowBucketOf(t));
  EXPECT_EQ(b.flows[0].stats.connections, 1u);
  EXPECT_EQ(b.flows[0].stats.carried, 0u);
  EXPECT_EQ(b.flows[0].stats.closed, 0u);
  EXPECT_EQ(b.flows[0].stats.bytes_tx, 0u);
  EXPECT_EQ(b.flows[1].bucket_ns, FlowBucketOf(t) + 2 * kFlowBucketNs);
  EXPECT_EQ(b.flows[1].stats.connections, 0u);
  EXPECT_EQ(b.flows[1].stats.carried, 0u);
  EXPECT_EQ(b.flows[1].stats.closed, 1u);
  EXPECT_EQ(b.flows[1].stats.bytes_tx, 100u);
  EXPECT_EQ(b.flows[1].stats.last_seen_ns, t + 90 * kSec);
  EXPECT_THAT(b.checkpoints, SizeIs(0));
}

// An idle pooled connection: nothing reports it, yet every hourly checkpoint
// it stays open through counts it once, however often Tick runs, and the
// batch marks the checkpoint.
TEST_F(AggregatorTest, TickCarriesEveryOpenConnectionIntoEachHourlyCheckpointOnce) {
  const int64_t t = FlowBucketOf(kT0) + 10 * kSec;
  const int64_t hour = FlowCheckpointOf(t) + kFlowCheckpointNs;
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40001), nginx_));
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40002), nginx_));
  agg_.Tick(t + kSec);  // the first call only notes the hour
  agg_.Tick(t + 5 * kFlowBucketNs);  // same hour, later minutes: nothing to carry
  Batch first = agg_.TakeBatch();
  EXPECT_THAT(first.flows, SizeIs(1));
  EXPECT_THAT(first.checkpoints, SizeIs(0));
  for (int64_t at : {hour - kSec, hour, hour + kSec, hour + 59 * kFlowBucketNs}) agg_.Tick(at);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(1));  // one row for the flow of both
  EXPECT_EQ(b.flows[0].bucket_ns, hour);
  EXPECT_EQ(b.flows[0].stats.carried, 2u);
  EXPECT_EQ(b.flows[0].stats.carried_from_ns, hour);
  EXPECT_EQ(b.flows[0].stats.connections, 0u);
  EXPECT_THAT(b.checkpoints, ElementsAre(hour));
  EXPECT_EQ(agg_.Stats().carried, 2u);
  EXPECT_EQ(agg_.Stats().checkpoints, 1u);
  // Closed: no longer carried, but the next hour is still a checkpoint.
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, hour + 70 * kSec,
          Active(40001)));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, hour + 70 * kSec,
          Active(40002)));
  EXPECT_EQ(agg_.TakeBatch().flows[0].stats.closed, 2u);
  agg_.Tick(hour + kFlowCheckpointNs);
  Batch after = agg_.TakeBatch();
  EXPECT_THAT(after.flows, SizeIs(0));
  EXPECT_THAT(after.checkpoints, ElementsAre(hour + kFlowCheckpointNs));
}

// An event in a new hour before Tick ran carries its connection there
// itself; Tick then does not carry it twice.
TEST_F(AggregatorTest, AnEventPastTheHourCarriesItsConnectionOnceBeforeTick) {
  const int64_t t = FlowBucketOf(kT0);
  const int64_t hour = FlowCheckpointOf(t) + kFlowCheckpointNs;
  agg_.Tick(t);
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40001), nginx_));
  agg_.TakeBatch();
  ConnEvent up = Ev(EventKind::kUpdate, EventSource::kPoll, Direction::kActive, hour + 2 * kSec,
                    Active(40001), nginx_);
  up.counters = Bytes(51, 0);
  Feed(up);
  agg_.Tick(hour + 3 * kSec);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(1));
  EXPECT_EQ(b.flows[0].bucket_ns, hour);
  EXPECT_EQ(b.flows[0].stats.carried, 1u);
  EXPECT_EQ(b.flows[0].stats.bytes_tx, 50u);
  EXPECT_THAT(b.checkpoints, ElementsAre(hour));
}

// At start-up, once the seed is in: every tracked connection is carried into
// the start-up minute (a seed already is) and that minute is a checkpoint.
TEST_F(AggregatorTest, CheckpointAtStartUpCarriesWhatIsNotCountedThereYet) {
  const int64_t t = FlowBucketOf(kT0);
  Feed(Ev(EventKind::kOpen, EventSource::kSeed, Direction::kActive, t + kSec, Active(40001),
          nginx_));
  // Opened by the kernel a minute before (delivered late): counted there.
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t - kFlowBucketNs,
          Active(40002), nginx_));
  agg_.Checkpoint(t + 2 * kSec);
  Batch b = agg_.TakeBatch();
  EXPECT_THAT(b.checkpoints, ElementsAre(t));
  ASSERT_THAT(b.flows, SizeIs(2));
  EXPECT_EQ(b.flows[0].bucket_ns, t);  // the seed's carry and the checkpoint's, one row
  EXPECT_EQ(b.flows[0].stats.carried, 2u);
  EXPECT_EQ(b.flows[1].bucket_ns, t - kFlowBucketNs);
  EXPECT_EQ(b.flows[1].stats.connections, 1u);
  // The hour of the checkpoint is not marked again by Tick.
  agg_.Tick(t + 3 * kSec);
  EXPECT_TRUE(agg_.TakeBatch().empty());
}

// A probe thread that did not run for hours (a suspended meshd) carries
// into the hour it resumes in and counts the hours it missed.
TEST_F(AggregatorTest, ALongStallCarriesIntoTheCurrentHourAndCountsTheMissedOnes) {
  const int64_t t = FlowBucketOf(kT0);
  const int64_t hour = FlowCheckpointOf(t);
  agg_.Tick(t);
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t, Active(40001), nginx_));
  agg_.TakeBatch();
  agg_.Tick(hour + 5 * kFlowCheckpointNs + kSec);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(1));
  EXPECT_EQ(b.flows[0].bucket_ns, hour + 5 * kFlowCheckpointNs);
  EXPECT_THAT(b.checkpoints, ElementsAre(hour + 5 * kFlowCheckpointNs));
  EXPECT_EQ(agg_.Stats().checkpoints_missed, 4u);  // hours 1 to 4
}

TEST_F(AggregatorTest, CloseWithoutOpenIsCountedAtClose) {
  ConnEvent close =
      Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(40001), nginx_);
  close.counters = Bytes(51, 60);
  Feed(close);
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.flows, SizeIs(1));
  EXPECT_EQ(b.flows[0].stats.connections, 1u);
  EXPECT_EQ(b.flows[0].stats.closed, 1u);  // opened and closed: open at no bucket's start
  EXPECT_EQ(b.flows[0].stats.bytes_tx, 50u);
  EXPECT_THAT(b.records, SizeIs(1));
}

TEST_F(AggregatorTest, UnknownProcessAndDirection) {
  Feed(Ev(EventKind::kListen, EventSource::kSeed, Direction::kUnknown, kT0,
          ConnKey{1, IpAddr::V4(0, 0, 0, 0), {}, 80, 0}, nginx_));
  // A passive close with no process: its listener's owner. An unknown-direction
  // close whose local port has a listener: passive. One with no listener: active,
  // owner unknown (pid 0).
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kPassive, kT0, Passive(50001)));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kUnknown, kT0, Passive(50002)));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kUnknown, kT0, Active(40001)));
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.records, SizeIs(3));
  EXPECT_EQ(b.records[0].proc.pid, 4656u);
  EXPECT_EQ(b.records[1].direction, Direction::kUnknown);  // the record stays honest
  EXPECT_EQ(b.records[2].proc.pid, 0u);
  ASSERT_THAT(b.flows, SizeIs(2));
  EXPECT_EQ(b.flows[0].key.direction, Direction::kPassive);
  EXPECT_EQ(b.flows[0].key.pid, 4656u);
  EXPECT_EQ(b.flows[0].stats.connections, 2u);
  EXPECT_EQ(b.flows[1].key.direction, Direction::kActive);
  EXPECT_EQ(b.flows[1].key.pid, 0u);
  EXPECT_EQ(b.flows[1].key.rport, 8000);
  AggregatorStats st = agg_.Stats();
  EXPECT_EQ(st.direction_inferred, 2u);
  EXPECT_EQ(st.unattributed, 1u);
}

TEST_F(AggregatorTest, StaleSnapshotOpenAfterAKernelCloseIsIgnored) {
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001), nginx_));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(40001)));
  // A poll dumped before the close and delivered after it, then its own close.
  Feed(Ev(EventKind::kOpen, EventSource::kPoll, Direction::kActive, kT0 + kSec, Active(40001),
          nginx_));
  Feed(
      Ev(EventKind::kClose, EventSource::kPoll, Direction::kActive, kT0 + 2 * kSec, Active(40001)));
  Batch b = agg_.TakeBatch();
  EXPECT_THAT(b.records, SizeIs(1));
  EXPECT_EQ(ByPidAndPort(b).begin()->second.connections, 1u);
  EXPECT_EQ(agg_.Stats().stale_opens_ignored, 1u);
  EXPECT_EQ(agg_.Stats().duplicates_ignored, 1u);
}

TEST_F(AggregatorTest, ListenAndUnlistenKeepTheEndpointTable) {
  ConnKey l80{1, IpAddr::V4(0, 0, 0, 0), {}, 80, 0};
  ConnKey l6379{1, IpAddr::V4(127, 0, 0, 1), {}, 6379, 0};
  Feed(Ev(EventKind::kListen, EventSource::kSeed, Direction::kUnknown, kT0, l80, nginx_));
  Feed(Ev(EventKind::kListen, EventSource::kKernel, Direction::kUnknown, kT0 + 1, l80, nginx_));
  Feed(Ev(EventKind::kListen, EventSource::kKernel, Direction::kUnknown, kT0, l6379,
          Proc(2127, 1, "redis-server")));
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.endpoints_added, SizeIs(2));  // the second report of :80 adds nothing
  EXPECT_EQ(b.endpoints_added[0].port, 80);
  EXPECT_EQ(b.endpoints_added[0].proc.pid, 4656u);
  EXPECT_EQ(b.endpoints_added[0].since_ns, kT0);
  EXPECT_EQ(b.endpoints_added[1].addr, IpAddr::V4(127, 0, 0, 1));
  EXPECT_THAT(b.endpoints_removed, IsEmpty());

  Feed(Ev(EventKind::kUnlisten, EventSource::kKernel, Direction::kUnknown, kT0 + 5, l6379));
  b = agg_.TakeBatch();
  EXPECT_THAT(b.endpoints_added, IsEmpty());
  ASSERT_THAT(b.endpoints_removed, SizeIs(1));
  EXPECT_EQ(b.endpoints_removed[0].port, 6379);
  EXPECT_EQ(b.endpoints_removed[0].proc.pid, 2127u);
  EXPECT_EQ(b.endpoints_removed[0].since_ns, kT0);
  EXPECT_EQ(b.endpoints_removed[0].until_ns, kT0 + 5) << "when it stopped, for the history";
  EXPECT_EQ(agg_.Stats().listeners, 1u);

  // Listen then unlisten within one batch leaves only the removal.
  Feed(Ev(EventKind::kListen, EventSource::kKernel, Direction::kUnknown, kT0 + 6, l6379,
          Proc(2127, 1, "redis-server")));
  Feed(Ev(EventKind::kUnlisten, EventSource::kKernel, Direction::kUnknown, kT0 + 7, l6379));
  b = agg_.TakeBatch();
  EXPECT_THAT(b.endpoints_added, IsEmpty());
  ASSERT_THAT(b.endpoints_removed, SizeIs(1));
  // The removal alone still says when it listened, so the store keeps the period.
  EXPECT_EQ(b.endpoints_removed[0].since_ns, kT0 + 6);
  EXPECT_EQ(b.endpoints_removed[0].until_ns, kT0 + 7);
}

TEST_F(AggregatorTest, ProcessDetailsOncePerProcessAndAgainAfterAWhile) {
  for (uint16_t lport = 40001; lport < 40011; lport++) {
    Feed(
        Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(lport), nginx_));
    Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(lport)));
  }
  Batch b = agg_.TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].pid, 4656u);
  EXPECT_EQ(b.processes[0].start_ticks, 9000u);
  EXPECT_EQ(b.processes[0].comm, "nginx");  // no cache: what the ref had

  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0 + 10 * kSec,
          Active(50000), nginx_));
  EXPECT_THAT(agg_.TakeBatch().processes, IsEmpty());
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0 + 2 * 3600 * kSec,
          Active(50001), nginx_));
  EXPECT_THAT(agg_.TakeBatch().processes, SizeIs(1));
}

TEST(Aggregator, ProcessDetailsComeFromTheCache) {
  ProcessCache cache(ProcReader(std::string(FLOWMESH_TESTDATA) + "/proc"));
  Aggregator agg(&cache);
  ConnEvent ev = Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0, Active(40001),
                    Proc(101, 1010, "nginx"));
  agg.Add(ev);
  Batch b = agg.TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].pgid, 100u);
  EXPECT_EQ(b.processes[0].ppid, 100u);
  EXPECT_EQ(b.processes[0].exe, "/usr/sbin/nginx");
}

TEST(Aggregator, ForgetsTheLeastRecentlyTouchedWhenOverTheBound) {
  AggregatorOptions opt;
  opt.max_tracked = 100;
  Aggregator agg(nullptr, opt);
  for (uint16_t i = 0; i < 101; i++)
    agg.Add(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0 + i,
               Active(static_cast<uint16_t>(40000 + i)), Proc(1, 1, "x")));
  AggregatorStats st = agg.Stats();
  EXPECT_EQ(st.tracked_evicted, 11u);  // the tenth oldest and everything older
  EXPECT_EQ(st.tracked, 90u);
  // The oldest is gone: its close counts it again; the newest is still tracked.
  agg.TakeBatch();
  agg.Add(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + 200, Active(40000),
             Proc(1, 1, "x")));
  agg.Add(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + 200, Active(40100),
             Proc(1, 1, "x")));
  EXPECT_EQ(agg.TakeBatch().flows.at(0).stats.connections, 1u);
}

TEST(Aggregator, RemembersAtMostMaxClosedCloses) {
  AggregatorOptions opt;
  opt.max_closed = 2;
  Aggregator agg(nullptr, opt);
  for (uint16_t lport : {40001, 40002, 40003})
    agg.Add(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0, Active(lport),
               Proc(1, 1, "x")));
  // 40001 was forgotten (its duplicate now counts); 40003 is still known.
  for (uint16_t lport : {40001, 40003})
    agg.Add(Ev(EventKind::kClose, EventSource::kPoll, Direction::kActive, kT0, Active(lport),
               Proc(1, 1, "x")));
  EXPECT_EQ(agg.Stats().duplicates_ignored, 1u);
  EXPECT_THAT(agg.TakeBatch().records, SizeIs(4));
}

TEST(Aggregator, AddsFromTwoThreadsWhileAThirdTakesBatches) {
  Aggregator agg(nullptr);
  constexpr int kPerThread = 20000;
  std::atomic<bool> done{false};
  uint64_t connections = 0, records = 0;
  std::thread flusher([&] {
    while (true) {
      bool last = done.load();
      Batch b = agg.TakeBatch();
      records += b.records.size();
      for (const FlowDelta& d : b.flows) connections += d.stats.connections;
      if (last) break;
    }
  });
  auto probe = [&](uint32_t netns) {
    for (int i = 0; i < kPerThread; i++) {
      ConnKey k = Active(static_cast<uint16_t>(1024 + i % 60000));
      k.netns = netns;
      k.raddr = IpAddr::V4(10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i));
      agg.Add(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, kT0 + i, k,
                 Proc(netns, 1, "x")));
      agg.Add(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, kT0 + i, k));
    }
  };
  std::thread a(probe, 1), b(probe, 2);
  a.join();
  b.join();
  done.store(true);
  flusher.join();
  EXPECT_EQ(connections, 2u * kPerThread);
  EXPECT_EQ(records, 2u * kPerThread);
  EXPECT_EQ(agg.Stats().tracked, 0u);
}

// Connections of one flow share one FlowKey (interned): one of them learning
// its process moves only it to the process's flow, and a flow all of whose
// connections closed leaves nothing behind for the next one to inherit.
TEST_F(AggregatorTest, ConnectionsSharingAFlowKeepTheirOwnKeys) {
  const int64_t t = FlowBucketOf(kT0) + 10 * kSec;
  const int64_t hour = FlowCheckpointOf(t) + kFlowCheckpointNs;
  // Two seeded without a process: one flow, pid 0.
  Feed(Ev(EventKind::kOpen, EventSource::kSeed, Direction::kActive, t, Active(40001)));
  Feed(Ev(EventKind::kOpen, EventSource::kSeed, Direction::kActive, t, Active(40002)));
  // One is named (a poll's UPDATE with its owner), the other stays unknown.
  Feed(Ev(EventKind::kUpdate, EventSource::kPoll, Direction::kActive, t + kSec, Active(40002),
          nginx_));
  // A third flow comes and goes entirely before the checkpoint.
  ProcessRef curl = Proc(900, 5, "curl");
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t + 2 * kSec, Active(40003),
          curl));
  Feed(
      Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, t + 3 * kSec, Active(40003)));
  // And a fourth opens after it, to a port of its own.
  ConnKey other = ConnKey{1, kWeb, kApp, 40004, 9000};
  Feed(Ev(EventKind::kOpen, EventSource::kKernel, Direction::kActive, t + 4 * kSec, other, curl));
  agg_.TakeBatch();
  agg_.Tick(t + 5 * kSec);
  agg_.Tick(hour);
  Batch b = agg_.TakeBatch();
  std::map<std::pair<uint32_t, uint16_t>, uint64_t> carried;
  for (const FlowDelta& d : b.flows) carried[{d.key.pid, d.key.rport}] += d.stats.carried;
  EXPECT_EQ(carried, (std::map<std::pair<uint32_t, uint16_t>, uint64_t>{
                         {{0, 8000}, 1}, {{4656, 8000}, 1}, {{900, 9000}, 1}}));
  // Their closes land in the flows they are in now.
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, hour + kSec, Active(40001)));
  Feed(Ev(EventKind::kClose, EventSource::kKernel, Direction::kActive, hour + kSec, Active(40002)));
  Batch closes = agg_.TakeBatch();
  ASSERT_THAT(closes.flows, SizeIs(2));
  EXPECT_EQ(closes.flows[0].key.pid, 0u);
  EXPECT_EQ(closes.flows[1].key.pid, 4656u);
  EXPECT_EQ(closes.flows[1].key.start_ticks, 9000u);
}

}  // namespace
}  // namespace flowmesh
