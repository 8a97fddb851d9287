// Store flows: sums over the minute buckets a window overlaps, the same key
// merged across batches, reopen and compaction, and the 10-minute and hour
// roll-ups giving exactly the minute sums for any window.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <random>

#include "node/store/store_impl.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

TEST(StoreFlows, ReadFlowsSumsTheBucketsThatOverlapTheWindow) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  FlowKey a = MakeFlowKey(100, 6379), b = MakeFlowKey(200, 5432);
  Batch batch;
  for (int m : {0, 1, 2, 5}) {
    const int64_t t = kT0 + m * kMin + 7 * kSec;
    batch.flows.push_back({FlowBucketOf(t), a, MakeStats(1, 10 << m, t)});
  }
  batch.flows.push_back({kT0 + kMin, b, MakeStats(4, 1, kT0 + kMin)});
  ASSERT_TRUE(store->Write(batch).ok());

  // 00:30 .. 02:10 overlaps buckets 0, 1 and 2, not 5.
  auto flows = store->ReadFlows({kT0 + 30 * kSec, kT0 + 2 * kMin + 10 * kSec});
  ASSERT_TRUE(flows.ok()) << flows.status().message();
  ASSERT_EQ(flows->size(), 2u);
  auto fa = std::find_if(flows->begin(), flows->end(), [&](const Flow& f) { return f.key == a; });
  ASSERT_NE(fa, flows->end());
  EXPECT_EQ(fa->stats.connections, 3u);
  EXPECT_EQ(fa->stats.bytes_tx, 10u + 20 + 40);
  EXPECT_EQ(fa->stats.first_seen_ns, kT0 + 7 * kSec);
  EXPECT_EQ(fa->stats.last_seen_ns, kT0 + 2 * kMin + 7 * kSec);

  // A window inside one bucket reads that whole bucket.
  flows = store->ReadFlows({kT0 + 5 * kMin + 59 * kSec, kT0 + 5 * kMin + 59 * kSec});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.bytes_tx, 10u << 5);

  flows = store->ReadFlows({kT0 + 3 * kMin, kT0 + 4 * kMin + 59 * kSec});
  ASSERT_TRUE(flows.ok());
  EXPECT_TRUE(flows->empty());

  // `keep` sees keys before they are summed.
  flows = store->ReadFlows({}, [&](const FlowKey& k) { return k.pid == 200; });
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 4u);
}

TEST(StoreFlows, FlowSpansCoverTheWindowWithTheFewestBuckets) {
  const int64_t hour = 60 * kMin, t = (kT0 / hour + 1) * hour;
  // An hour from minute 7: minutes to the next 10, five 10-minute buckets,
  // then minutes again (no whole hour fits).
  EXPECT_EQ(PlanFlowSpans(t + 7 * kMin, t + 67 * kMin),
            (std::vector<FlowSpan>{{0, t + 7 * kMin, t + 10 * kMin},
                                   {1, t + 10 * kMin, t + 60 * kMin},
                                   {0, t + 60 * kMin, t + 67 * kMin}}));
  EXPECT_EQ(PlanFlowSpans(t, t + 3 * hour), (std::vector<FlowSpan>{{2, t, t + 3 * hour}}));
  // Coarse buckets only for what has been rolled up (here up to 01:35).
  EXPECT_EQ(PlanFlowSpans(t, t + 3 * hour, t + 95 * kMin),
            (std::vector<FlowSpan>{
                {2, t, t + hour}, {1, t + hour, t + 90 * kMin}, {0, t + 90 * kMin, t + 3 * hour}}));
  EXPECT_EQ(PlanFlowSpans(t + 3 * kMin, t + 4 * kMin),
            (std::vector<FlowSpan>{{0, t + 3 * kMin, t + 4 * kMin}}));
  EXPECT_TRUE(PlanFlowSpans(t, t).empty());
  // All of time is a handful of spans, not a loop over every hour.
  const int64_t end_of_time = FlowBucketOf(std::numeric_limits<int64_t>::max());
  for (int64_t from : {int64_t{0}, t + 7 * kMin, end_of_time - 61 * kMin}) {
    auto all = PlanFlowSpans(from, end_of_time);
    ASSERT_FALSE(all.empty());
    EXPECT_LE(all.size(), 6u);
    EXPECT_EQ(all.front().begin_ns, from);
    EXPECT_EQ(all.back().end_ns, end_of_time);
    for (size_t i = 1; i < all.size(); ++i) EXPECT_EQ(all[i - 1].end_ns, all[i].begin_ns);
  }
}

TEST(StoreFlows, ReadFlowsOfAnyWindowEqualsTheSumOfItsMinuteBuckets) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  std::mt19937_64 rng(99);
  const FlowKey keys[] = {MakeFlowKey(1, 80), MakeFlowKey(2, 443)};
  std::map<std::pair<int, int64_t>, FlowStats> truth;  // (key, minute bucket) -> sum
  const int minutes = 5 * 60 + 17;
  // First in time order, as the aggregator writes (each batch rolls up the
  // minutes before it), then late deltas anywhere in the past.
  for (int batch = 0; batch < 60; ++batch) {
    Batch b;
    for (int i = 0; i < 50; ++i) {
      const int k = static_cast<int>(rng() % 2);
      const int64_t t = batch < 30 ? kT0 + (batch * minutes / 30) * kMin +
                                         static_cast<int64_t>(rng() % 600) * kSec
                                   : kT0 + static_cast<int64_t>(rng() % (minutes * 60)) * kSec;
      FlowStats s = MakeStats(1 + rng() % 3, rng() % 1000, t);
      b.flows.push_back({FlowBucketOf(t), keys[k], s});
      truth[{k, FlowBucketOf(t)}].Merge(s);
    }
    ASSERT_TRUE(store->Write(b).ok());
  }
  auto check = [&](const TimeWindow& w) {
    FlowStats want[2];
    for (const auto& [kb, s] : truth)
      if (kb.second >= FlowBucketOf(w.since_ns) && kb.second <= FlowBucketOf(w.until_ns))
        want[kb.first].Merge(s);
    auto got = store->ReadFlows(w);
    ASSERT_TRUE(got.ok());
    FlowStats have[2];
    for (const Flow& f : *got) have[f.key == keys[1]].Merge(f.stats);
    for (int k = 0; k < 2; ++k)
      EXPECT_EQ(have[k], want[k]) << "key " << k << " window +" << (w.since_ns - kT0) / kSec
                                  << "s .. +" << (w.until_ns - kT0) / kSec << "s";
  };
  for (int i = 0; i < 150; ++i) {
    const int64_t a = kT0 - 30 * kMin + static_cast<int64_t>(rng() % ((minutes + 60) * 60)) * kSec;
    const int64_t len = static_cast<int64_t>(rng() % (4 * 3600)) * kSec;
    check({a, a + len});
    if (i == 75) {
      ASSERT_TRUE(store->CompactAll().ok());
    }
  }
  check({});
}

TEST(StoreFlows, SameFlowKeyMergesAcrossBatchesReopenAndCompaction) {
  TempDir dir;
  FlowKey a = MakeFlowKey(100, 6379);
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    Batch b1;
    b1.flows = {{kT0, a, MakeStats(1, 100, kT0 + 1)}, {kT0, a, MakeStats(2, 200, kT0 + 2)}};
    ASSERT_TRUE(store->Write(b1).ok());
    Batch b2;
    b2.flows = {{kT0, a, MakeStats(3, 300, kT0 + 3)}};
    ASSERT_TRUE(store->Write(b2).ok());
    auto flows = store->ReadFlows({kT0, kT0});
    ASSERT_TRUE(flows.ok());
    ASSERT_EQ(flows->size(), 1u);
    EXPECT_EQ((*flows)[0].stats.connections, 6u);
  }
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  Batch b3;
  b3.flows = {{kT0, a, MakeStats(4, 400, kT0 + 4)}};
  ASSERT_TRUE(store->Write(b3).ok());
  ASSERT_TRUE(store->CompactAll().ok());
  auto flows = store->ReadFlows({});
  ASSERT_TRUE(flows.ok());
  ASSERT_EQ(flows->size(), 1u);
  EXPECT_EQ((*flows)[0].stats.connections, 10u);
  EXPECT_EQ((*flows)[0].stats.bytes_tx, 1000u);
  EXPECT_EQ((*flows)[0].stats.first_seen_ns, kT0 + 1);
  EXPECT_EQ((*flows)[0].stats.last_seen_ns, kT0 + 4);
}

}  // namespace
}  // namespace flowmesh
