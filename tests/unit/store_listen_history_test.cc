// Store listen history: periods opened and closed by batches (re-listen, a
// port changing hands, a listener that came and went in one flush), the
// window and wildcard query, a restart closing what is gone, retention,
// malformed values, and stores from before the history.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <filesystem>

#include "node/common/clock.h"
#include "node/store/codec.h"
#include "node/store/keys.h"
#include "node/store/merge_operators.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

constexpr uint32_t kNetns = 4026531840u;
const IpAddr kAny4 = IpAddr::V4(0, 0, 0, 0);
const IpAddr kHost = IpAddr::V4(10, 213, 0, 1);

EndpointRecord Listen(uint16_t port, uint32_t pid, int64_t since, IpAddr addr = kAny4) {
  return MakeListener(port, pid, since, addr);
}

EndpointRecord Unlisten(EndpointRecord e, int64_t until) {
  e.until_ns = until;
  return e;
}

Status Write(Store& s, std::vector<EndpointRecord> added, std::vector<EndpointRecord> removed) {
  Batch b;
  b.endpoints_added = std::move(added);
  b.endpoints_removed = std::move(removed);
  return s.Write(b);
}

// "pid:since-until" per period, in the order the store returns them; until
// "open" while listening.
std::string Periods(const Store& s, TimeWindow w, std::optional<Endpoint> at = std::nullopt) {
  auto got = s.ListenHistory(w, at);
  EXPECT_TRUE(got.ok()) << got.status().message();
  std::string out;
  for (const ListenPeriod& p : got.ok() ? *got : std::vector<ListenPeriod>{}) {
    if (!out.empty()) out += " ";
    out += std::to_string(p.endpoint.proc.pid) + ":" +
           std::to_string((p.endpoint.since_ns - kT0) / kSec) + "-" +
           (p.open() ? "open" : std::to_string((p.until_ns - kT0) / kSec));
  }
  return out;
}

TimeWindow Secs(int64_t from, int64_t to) { return {kT0 + from * kSec, kT0 + to * kSec}; }

TEST(StoreListenHistory, ListenStopAndListenAgainAreSeparatePeriods) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0)}, {}).ok());
  EXPECT_EQ(Periods(*store, {}), "1:0-open");
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(80, 1, kT0), kT0 + 10 * kSec)}).ok());
  ASSERT_TRUE(Write(*store, {Listen(80, 2, kT0 + 20 * kSec)}, {}).ok());
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(80, 2, kT0 + 20 * kSec), kT0 + 30 * kSec)}).ok());
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0 + 40 * kSec)}, {}).ok());

  EXPECT_EQ(Periods(*store, {}), "1:40-open 2:20-30 1:0-10") << "the latest start first";
  EXPECT_EQ(Periods(*store, Secs(2, 5)), "1:0-10");
  EXPECT_EQ(Periods(*store, Secs(10, 20)), "2:20-30 1:0-10") << "both ends count";
  EXPECT_EQ(Periods(*store, Secs(12, 18)), "") << "nobody listened then";
  EXPECT_EQ(Periods(*store, Secs(25, 3600)), "1:40-open 2:20-30");
  // The endpoints table still says only who listens now.
  auto eps = store->Endpoints();
  ASSERT_TRUE(eps.ok());
  ASSERT_EQ(eps->size(), 1u);
  EXPECT_EQ((*eps)[0].proc.pid, 1u);
}

TEST(StoreListenHistory, OneBatchKeepsTheOrderOfWhatHappened) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  // Came and went within one flush: a closed period, nothing current.
  ASSERT_TRUE(
      Write(*store, {Listen(8080, 6, kT0)}, {Unlisten(Listen(8080, 6, kT0), kT0 + 2 * kSec)}).ok());
  // The same, as the aggregator sends it: the removal alone, with its start.
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(8081, 7, kT0 + kSec), kT0 + 3 * kSec)}).ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 8081}), "7:1-3");
  // A removal of a listener from before this meshd, unknown to the history,
  // invents no period (its start is not known).
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(8082, 8, 0), kT0 + 3 * kSec)}).ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 8082}), "");
  // Restarted within one flush: the old one closes, the new one is open.
  ASSERT_TRUE(Write(*store, {Listen(6379, 4, kT0)}, {}).ok());
  ASSERT_TRUE(Write(*store, {Listen(6379, 5, kT0 + 5 * kSec)},
                    {Unlisten(Listen(6379, 4, kT0), kT0 + 4 * kSec)})
                  .ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 8080}), "6:0-2");
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 6379}), "5:5-open 4:0-4");
  // A removal without a time (an older aggregator) ends at the batch's time.
  Batch b;
  b.endpoints_removed = {Listen(6379, 5, kT0 + 5 * kSec)};
  b.records = {MakeRecord(kT0 + 9 * kSec, 1, 40000, 80)};
  ASSERT_TRUE(store->Write(b).ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 6379}), "5:5-9 4:0-4");
}

TEST(StoreListenHistory, APortThatChangedHandsAndAnOwnerReportedAgain) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0)}, {}).ok());
  // The same process reported again later (a probe's second report): one period.
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0 + 5 * kSec)}, {}).ok());
  EXPECT_EQ(Periods(*store, {}), "1:0-open");
  // Another owner without the first one's removal: the first ends there.
  ASSERT_TRUE(Write(*store, {Listen(80, 2, kT0 + 7 * kSec)}, {}).ok());
  EXPECT_EQ(Periods(*store, {}), "2:7-open 1:0-7");
  // Another owner reported with the first one's start (the aggregator keeps
  // it when a port changes hands between two reports): it begins at the batch.
  ASSERT_TRUE(Write(*store, {Listen(90, 1, kT0)}, {}).ok());
  Batch changed;
  changed.endpoints_added = {Listen(90, 2, kT0)};
  changed.records = {MakeRecord(kT0 + 8 * kSec, 1, 40000, 80)};  // the batch's time
  ASSERT_TRUE(store->Write(changed).ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 90}), "2:8-open 1:0-8");
  // The same listen with its owner learned later: rewritten, not a new period.
  EndpointRecord unknown = Listen(443, 0, kT0);
  unknown.proc = ProcessRef{};
  ASSERT_TRUE(Write(*store, {unknown}, {}).ok());
  ASSERT_TRUE(Write(*store, {Listen(443, 3, kT0)}, {}).ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 443}), "3:0-open");
}

TEST(StoreListenHistory, TheQueryFollowsWildcardsAndDualStack) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  uint8_t any6[16] = {};
  uint8_t host6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  ASSERT_TRUE(Write(*store,
                    {Listen(80, 1, kT0), Listen(6379, 2, kT0, IpAddr::V4(127, 0, 0, 1)),
                     Listen(8443, 3, kT0, IpAddr::V6(any6)), Listen(9000, 4, kT0, kHost)},
                    {})
                  .ok());
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 80}), "1:0-open") << "0.0.0.0 takes IPv4";
  EXPECT_EQ(Periods(*store, {}, Endpoint{IpAddr::V6(host6), 80}), "") << "but not IPv6";
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 8443}), "3:0-open") << ":: takes both";
  EXPECT_EQ(Periods(*store, {}, Endpoint{IpAddr::V6(host6), 8443}), "3:0-open");
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 6379}), "") << "loopback only";
  EXPECT_EQ(Periods(*store, {}, Endpoint{IpAddr::V4(127, 0, 0, 1), 6379}), "2:0-open");
  EXPECT_EQ(Periods(*store, {}, Endpoint{kHost, 9000}), "4:0-open");
  EXPECT_EQ(Periods(*store, {}, Endpoint{IpAddr::V4(10, 213, 0, 2), 9000}), "");
  EXPECT_EQ(Periods(*store, {}, Endpoint{IpAddr{}, 9000}), "4:0-open") << "any address";
  EXPECT_EQ(Periods(*store, Secs(-20, -10), Endpoint{kHost, 80}), "") << "before it listened";
}

// Copies the store's directory while it is open: what kill -9 would leave
// (the WAL is written on every batch; nothing runs at shutdown).
void CopyAsCrashed(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

TEST(StoreListenHistory, ARestartClosesWhatTheSnapshotLacksAtTheLastWrite) {
  TempDir dir;
  {
    auto store = MustOpen(TestOptions(dir.sub("live")));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->ReplaceEndpoints({Listen(80, 1, kT0), Listen(22, 2, kT0)}).ok());
    ASSERT_TRUE(Write(*store, {Listen(443, 3, kT0 + 5 * kSec)}, {}).ok());
    Batch last;  // the last thing written before the crash
    last.records = {MakeRecord(kT0 + 30 * kSec, 1, 40000, 80)};
    ASSERT_TRUE(store->Write(last).ok());
    CopyAsCrashed(dir.sub("live"), dir.sub("crashed"));
  }
  {  // After kill -9: :80 and :443 are gone; sshd still listens, and :8080 is new.
    auto store = MustOpen(TestOptions(dir.sub("crashed")));
    ASSERT_TRUE(store);
    ASSERT_TRUE(
        store->ReplaceEndpoints({Listen(22, 2, kT0 + 60 * kSec), Listen(8080, 5, kT0 + 60 * kSec)})
            .ok());
    EXPECT_EQ(Periods(*store, {}), "5:60-open 3:5-30 2:0-open 1:0-30")
        << "closed at the last batch; sshd's period goes on across the restart";
    EXPECT_EQ(Periods(*store, Secs(40, 50)), "2:0-open") << "unseen between crash and restart";
  }
  {  // A clean stop vouches for the time it stopped.
    const int64_t before_stop = RealtimeNs();
    {
      auto store = MustOpen(TestOptions(dir.sub("live")));  // the original, stopped cleanly
      ASSERT_TRUE(store);
    }
    auto store = MustOpen(TestOptions(dir.sub("live")));
    ASSERT_TRUE(store);
    ASSERT_TRUE(store->ReplaceEndpoints({}).ok());
    auto got = store->ListenHistory({});
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 3u);
    for (const ListenPeriod& p : *got) {
      EXPECT_GE(p.until_ns, before_stop) << p.endpoint.port;
      EXPECT_LE(p.until_ns, RealtimeNs()) << p.endpoint.port;
    }
  }
}

TEST(StoreListenHistory, RetentionDropsPeriodsThatEndedBeforeTheCut) {
  TempDir dir;
  StoreOptions o = TestOptions(dir.path());
  o.retention_ns = 10 * kMin;
  auto store = MustOpen(o);
  ASSERT_TRUE(store);
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0), Listen(81, 2, kT0), Listen(82, 3, kT0)}, {}).ok());
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(80, 1, kT0), kT0 + 5 * kMin)}).ok());
  ASSERT_TRUE(Write(*store, {}, {Unlisten(Listen(81, 2, kT0), kT0 + 25 * kMin)}).ok());
  ASSERT_TRUE(store->EnforceRetention(kT0 + 30 * kMin + kSec).ok());  // cut: kT0 + 20 min
  EXPECT_EQ(Periods(*store, {}), "2:0-1500 3:0-open")
      << "ended after the cut, or still listening: kept";
}

TEST(StoreListenHistory, MalformedPeriodsAreSkippedAndCounted) {
  TempDir dir;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0)}, {}).ok());
  }
  {
    RawStore raw(dir.path());
    auto* h = raw.cf("listen_history");
    ASSERT_NE(h, nullptr);
    ListenPeriod ended{Listen(81, 2, kT0 + kMin), kT0};  // ends before it began
    ASSERT_TRUE(raw.db()
                    .Put({}, h, ListenPeriodKey(kNetns, kAny4, 81, kT0 + kMin),
                         EncodeListenPeriodValue(ended))
                    .ok());
    ASSERT_TRUE(raw.db().Put({}, h, ListenPeriodKey(kNetns, kAny4, 82, kT0), "\x09garbage").ok());
    ASSERT_TRUE(raw.db().Put({}, h, "short", "\x01").ok());
  }
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  EXPECT_EQ(Periods(*store, {}), "1:0-open");
  EXPECT_EQ(store->Stats().corrupt_values, 3u);
  // Retention drops what cannot be read; the good period stays.
  ASSERT_TRUE(store->EnforceRetention(kT0 + kMin).ok());
  EXPECT_EQ(Periods(*store, {}), "1:0-open");
  EXPECT_EQ(store->Stats().corrupt_values, 3u) << "nothing unreadable is left";
}

TEST(StoreListenHistory, AStoreFromBeforeTheHistoryOpensAndKeepsWorking) {
  TempDir dir;
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    Batch b;
    b.records = {MakeRecord(kT0, 1, 40000, 80)};
    ASSERT_TRUE(store->Write(b).ok());
  }
  {  // As an older meshd left it: no listen_history column family.
    RawStore raw(dir.path());
    ASSERT_TRUE(raw.db().DropColumnFamily(raw.cf("listen_history")).ok());
  }
  {  // Read-only (say the disk is full): an empty history, the rest as it was.
    StoreOptions o = TestOptions(dir.path());
    o.read_only = true;
    auto store = MustOpen(o);
    ASSERT_TRUE(store);
    EXPECT_EQ(Periods(*store, {}), "");
    EXPECT_EQ(ScanAll(*store).size(), 1u);
  }
  auto store = MustOpen(TestOptions(dir.path()));
  ASSERT_TRUE(store);
  EXPECT_EQ(ScanAll(*store).size(), 1u) << "nothing wiped";
  ASSERT_TRUE(Write(*store, {Listen(80, 1, kT0)}, {}).ok());
  EXPECT_EQ(Periods(*store, {}), "1:0-open");
}

TEST(StoreListenHistory, CodecRoundTripsAndRefusesWhatItDoesNotKnow) {
  ListenPeriod p{Listen(80, 7, kT0), kT0 + kSec};
  const std::string key = ListenPeriodKey(kNetns, kAny4, 80, kT0);
  auto parts = DecodeListenPeriodKey(key);
  ASSERT_TRUE(parts.ok());
  EXPECT_EQ(parts->since_ns, kT0);
  EXPECT_EQ(parts->endpoint.port, 80);
  const std::string value = EncodeListenPeriodValue(p);
  auto back = DecodeListenPeriodValue(*parts, value);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->endpoint, p.endpoint);
  EXPECT_EQ(back->until_ns, p.until_ns);
  EXPECT_EQ(back->endpoint.proc.comm_view(), "srv7");
  EXPECT_FALSE(DecodeListenPeriodValue(*parts, value + "x").ok()) << "trailing bytes";
  EXPECT_FALSE(DecodeListenPeriodValue(*parts, "\x03" + value.substr(1)).ok()) << "a newer format";
  EXPECT_FALSE(DecodeListenPeriodValue(*parts, value.substr(0, value.size() - 1)).ok());
  EXPECT_FALSE(DecodeListenPeriodKey(key.substr(0, key.size() - 1)).ok());
  EXPECT_FALSE(DecodeListenPeriodKey(key + "x").ok());
}

}  // namespace
}  // namespace flowmesh
