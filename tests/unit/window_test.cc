// The window rule, end to end through the aggregator and a real store: a flow
// belongs to a window when one of its connections was open at some moment
// inside it, whether it opened before the window, closed after it, or never
// closed; the connections opened in it, those open when it began, and the
// bytes moved in it, across minute, 10-minute and hour buckets. Open
// connections are carried only at checkpoints (start-up, then hourly), so
// these tests also check what a window rebuilds from the checkpoint before it.
#include <gtest/gtest.h>

#include <map>

#include "node/flow/aggregator.h"
#include "node/flow/conn_table.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using testing::kMin;
using testing::kSec;
using testing::kT0;

const IpAddr kHost = IpAddr::V4(10, 213, 0, 3);
const IpAddr kDb = IpAddr::V4(10, 213, 0, 5);

class WindowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = testing::MustOpen(testing::TestOptions(dir_.path()));
    ASSERT_NE(store_, nullptr);
  }

  // A connection of pid `pid` to kDb:`rport`, from local port `lport`.
  ConnEvent Ev(EventKind kind, int64_t ts, uint16_t lport, uint16_t rport, uint32_t pid,
               EventSource source = EventSource::kKernel) {
    ConnEvent e;
    e.kind = kind;
    e.source = source;
    e.direction = Direction::kActive;
    e.ts_ns = ts;
    e.key = ConnKey{1, kHost, kDb, lport, rport};
    e.proc.pid = pid;
    e.proc.start_ticks = 1;
    return e;
  }
  void Feed(ConnEvent ev) {
    table_->Apply(ev);
    agg_->Add(ev);
  }
  // The probe thread ticks every drain; here every 20 s up to `until`, then
  // what the aggregator made goes to the store.
  void RunUntil(int64_t until) {
    for (; now_ <= until; now_ += 20 * kSec) agg_->Tick(now_);
    Flush();
  }
  void Flush() {
    Batch b = agg_->TakeBatch();
    deltas_written_ += b.flows.size();
    Status s = store_->Write(b);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  // What meshd does once its start-up seed is in.
  void StartUp() { agg_->Checkpoint(now_); }
  // The window's flows by remote port.
  std::map<uint16_t, FlowStats> Window(int64_t since, int64_t until) {
    auto flows = store_->ReadFlows(TimeWindow{since, until});
    EXPECT_TRUE(flows.ok()) << flows.status().message();
    std::map<uint16_t, FlowStats> out;
    if (flows.ok())
      for (const Flow& f : *flows) out[f.key.rport].Merge(f.stats);
    return out;
  }

  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ConnTable> table_ = std::make_unique<ConnTable>();
  std::unique_ptr<Aggregator> agg_ = std::make_unique<Aggregator>(nullptr);
  size_t deltas_written_ = 0;
  int64_t now_ = kT0;
};

// Minutes 0..9. Port 5432: opened in minute 0, idle, closed in minute 8.
// Port 6379: open before meshd (the seed), never closes. Port 11211: opened
// and closed in minute 0. The window is minutes 3 to 5.
TEST_F(WindowTest, ConnectionsOpenBeforeAndAfterTheWindowBelongToIt) {
  Feed(Ev(EventKind::kOpen, kT0, 40001, 6379, 7, EventSource::kSeed));
  StartUp();
  Feed(Ev(EventKind::kOpen, kT0 + 5 * kSec, 40002, 5432, 8));
  Feed(Ev(EventKind::kOpen, kT0 + 6 * kSec, 40003, 11211, 9));
  ConnEvent close = Ev(EventKind::kClose, kT0 + 7 * kSec, 40003, 11211, 9);
  close.counters.bytes_tx = 101;
  Feed(close);
  RunUntil(kT0 + 8 * kMin);
  ConnEvent late = Ev(EventKind::kClose, kT0 + 8 * kMin + 30 * kSec, 40002, 5432, 8);
  late.counters.bytes_tx = 1001;
  Feed(late);
  RunUntil(kT0 + 10 * kMin);

  auto w = Window(kT0 + 3 * kMin, kT0 + 5 * kMin + 59 * kSec);
  ASSERT_EQ(w.size(), 2u) << "the flow that closed before the window is not in it";
  EXPECT_EQ(w[5432].active(), 1u);
  EXPECT_EQ(w[5432].connections, 0u) << "opened before the window";
  EXPECT_EQ(w[5432].bytes_tx, 0u) << "its bytes moved at its close, after the window";
  EXPECT_EQ(w[6379].active(), 1u);
  EXPECT_EQ(w[6379].connections, 0u);

  // From the start: each counted once, opened where they opened.
  auto all = Window(kT0, kT0 + 10 * kMin);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[5432].active(), 1u);
  EXPECT_EQ(all[5432].connections, 1u);
  EXPECT_EQ(all[5432].bytes_tx, 1000u);
  EXPECT_EQ(all[6379].active(), 1u);
  EXPECT_EQ(all[6379].connections, 0u) << "the seed opened before meshd looked";
  EXPECT_EQ(all[11211].active(), 1u);
  EXPECT_EQ(all[11211].bytes_tx, 100u);

  // After its close: only the one that never closes.
  auto after = Window(kT0 + 9 * kMin, kT0 + 10 * kMin);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[6379].active(), 1u);
}

// Three hours of a pool of two connections and one that comes and goes:
// windows that read 10-minute and hour buckets count each connection once.
TEST_F(WindowTest, LongWindowsOverRolledUpBucketsCountEachConnectionOnce) {
  StartUp();
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40001, 5432, 8));
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40002, 5432, 8));
  RunUntil(kT0 + 90 * kMin);
  Feed(Ev(EventKind::kOpen, now_, 40003, 5432, 8));
  RunUntil(kT0 + 100 * kMin);
  Feed(Ev(EventKind::kClose, now_, 40003, 5432, 8));
  RunUntil(kT0 + 180 * kMin);

  EXPECT_EQ(Window(kT0, kT0 + 180 * kMin)[5432].active(), 3u);
  EXPECT_EQ(Window(kT0, kT0 + 180 * kMin)[5432].connections, 3u);
  // An hour and more that starts after the pool opened: two carried, one opened.
  FlowStats mid = Window(kT0 + 60 * kMin, kT0 + 150 * kMin - 1)[5432];
  EXPECT_EQ(mid.carried, 2u);
  EXPECT_EQ(mid.connections, 1u);
  EXPECT_EQ(mid.active(), 3u);
  // After the third closed: the pool only.
  FlowStats late = Window(kT0 + 120 * kMin, kT0 + 180 * kMin - 1)[5432];
  EXPECT_EQ(late.active(), 2u);
  EXPECT_EQ(late.connections, 0u);
  // Windows of a minute anywhere: before the first hourly checkpoint (from
  // the start-up one), at it, and between it and the next, over 10-minute
  // buckets.
  for (int64_t m : {5, 20, 45, 46, 47, 80, 95, 125, 179}) {
    FlowStats one = Window(kT0 + m * kMin, kT0 + m * kMin + 59 * kSec)[5432];
    const uint64_t want = m >= 90 && m < 100 ? 3 : 2;
    EXPECT_EQ(one.active(), want) << "minute " << m;
    EXPECT_EQ(one.connections, m == 90 ? 1u : 0u) << "minute " << m;
    // Open to its end, or to meshd's last write (the last minute's batch).
    const int64_t end = m == 179 ? kT0 + m * kMin : kT0 + m * kMin + 59 * kSec;
    EXPECT_EQ(one.last_seen_ns, end) << "minute " << m;
  }
  // A store reopened after a compaction sums the same.
  ASSERT_TRUE(store_->CompactAll().ok());
  store_.reset();
  store_ = testing::MustOpen(testing::TestOptions(dir_.path()));
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Window(kT0 + 60 * kMin, kT0 + 150 * kMin - 1)[5432], mid);
}

// An idle connection costs a row per hour, not per minute: three hours of
// one idle connection write its open and its three hourly carries, and it
// is in the window of every one of those minutes.
TEST_F(WindowTest, AnIdleConnectionWritesOneRowAnHour) {
  StartUp();
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40001, 5432, 8));
  RunUntil(kT0 + 180 * kMin);
  EXPECT_EQ(deltas_written_, 4u) << "the open, then kT0 + 46, 106 and 166 minutes";
  size_t in_windows = 0;
  for (int64_t m = 0; m < 180; ++m)
    in_windows += Window(kT0 + m * kMin, kT0 + m * kMin + 59 * kSec).size();
  EXPECT_EQ(in_windows, 180u) << "in every minute's window";
  auto flows = store_->ReadFlows(TimeWindow{kT0, kT0 + 180 * kMin});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 1u);
  EXPECT_EQ((*flows)[0].stats.active(), 1u);
}

// A restart is a checkpoint: a connection that closed while meshd was down
// (its close never seen) is not counted after the restart, and one the new
// meshd's seed finds is.
TEST_F(WindowTest, ARestartCountsOnlyWhatItsSeedFound) {
  StartUp();
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40001, 5432, 8));
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40002, 6379, 8));
  RunUntil(kT0 + 70 * kMin);  // through the first hourly checkpoint

  // meshd stops; 5432's connection closes unseen; a new meshd starts.
  agg_ = std::make_unique<Aggregator>(nullptr);
  table_ = std::make_unique<ConnTable>();
  now_ = kT0 + 75 * kMin;
  Feed(Ev(EventKind::kOpen, now_, 40002, 6379, 8, EventSource::kSeed));
  StartUp();
  RunUntil(kT0 + 80 * kMin);

  auto before = Window(kT0 + 72 * kMin, kT0 + 72 * kMin + 59 * kSec);
  EXPECT_EQ(before[5432].active(), 1u) << "open when meshd last looked";
  EXPECT_EQ(before[6379].active(), 1u);
  auto after = Window(kT0 + 77 * kMin, kT0 + 77 * kMin + 59 * kSec);
  EXPECT_EQ(after.count(5432), 0u) << "not found by the new meshd's seed";
  EXPECT_EQ(after[6379].active(), 1u);
  EXPECT_EQ(after[6379].connections, 0u);
}

// Retention cuts at the checkpoint before its age cut (keeping up to an hour
// more), so a window just after the cut still counts what was open.
TEST_F(WindowTest, RetentionKeepsTheCheckpointBeforeItsCut) {
  store_.reset();
  StoreOptions o = testing::TestOptions(dir_.path());
  o.retention_ns = 60 * kMin;
  store_ = testing::MustOpen(o);
  ASSERT_NE(store_, nullptr);
  StartUp();
  Feed(Ev(EventKind::kOpen, kT0 + kSec, 40001, 5432, 8));
  RunUntil(kT0 + 130 * kMin);
  const int64_t first_hour = FlowCheckpointOf(kT0) + kFlowCheckpointNs;  // kT0 + 46 min
  // Age cut at kT0 + 70 min: the data goes up to the checkpoint before it.
  ASSERT_TRUE(store_->EnforceRetention(kT0 + 130 * kMin).ok());
  auto gone = Window(kT0, kT0 + 10 * kMin);
  EXPECT_TRUE(gone.empty()) << "before the cut";
  for (int64_t m : {46, 71, 100}) {
    auto w = Window(kT0 + m * kMin, kT0 + m * kMin + 59 * kSec);
    EXPECT_EQ(w[5432].active(), 1u) << "minute " << m << ", cut at " << (first_hour - kT0) / kMin;
  }
}

}  // namespace
}  // namespace flowmesh
