// The window rule, end to end through the aggregator and a real store: a flow
// belongs to a window when one of its connections was open at some moment
// inside it, whether it opened before the window, closed after it, or never
// closed; the connections opened in it, those open when it began, and the
// bytes moved in it, across minute, 10-minute and hour buckets.
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
    table_.Apply(ev);
    agg_.Add(ev);
  }
  // The probe thread ticks every drain; here every 20 s up to `until`, then
  // what the aggregator made goes to the store.
  void RunUntil(int64_t until) {
    for (; now_ <= until; now_ += 20 * kSec) agg_.Tick(now_);
    Status s = store_->Write(agg_.TakeBatch());
    ASSERT_TRUE(s.ok()) << s.message();
  }
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
  ConnTable table_;
  Aggregator agg_{nullptr};
  int64_t now_ = kT0;
};

// Minutes 0..9. Port 5432: opened in minute 0, idle, closed in minute 8.
// Port 6379: open before meshd (the seed), never closes. Port 11211: opened
// and closed in minute 0. The window is minutes 3 to 5.
TEST_F(WindowTest, ConnectionsOpenBeforeAndAfterTheWindowBelongToIt) {
  Feed(Ev(EventKind::kOpen, kT0, 40001, 6379, 7, EventSource::kSeed));
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
  // A store reopened after a compaction sums the same.
  ASSERT_TRUE(store_->CompactAll().ok());
  store_.reset();
  store_ = testing::MustOpen(testing::TestOptions(dir_.path()));
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(Window(kT0 + 60 * kMin, kT0 + 150 * kMin - 1)[5432], mid);
}

}  // namespace
}  // namespace flowmesh
