// The aggregator with connection tracking: a client's translated connection
// keeps the backend beside the VIP it dialled, a server's keeps the
// published port its client dialled (and announces the alias), a balancer's
// forwarded connections become flows of their own, lost events are read
// again whole. conntrack is a fake reader here; tests/kernel/conntrack_test
// reads the real one.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <utility>

#include "node/flow/aggregator.h"

namespace flowmesh {
namespace {

constexpr int64_t kT0 = 1'700'000'040'000'000'000;  // minute-aligned Unix ns
constexpr int64_t kSec = 1'000'000'000;

IpAddr A(const char* s) { return *IpAddr::Parse(s); }
Endpoint E(const char* s) { return *Endpoint::Parse(s); }

class FakeReader : public ConntrackReader {
 public:
  std::deque<CtEvent> pending;
  std::vector<CtEntry> table;  // what a dump returns
  bool lose_next = false;
  int dumps = 0;
  int fd() const override { return -1; }
  Status Drain(std::vector<CtEvent>* out, size_t max, bool* lost) override {
    *lost = std::exchange(lose_next, false);
    while (!pending.empty() && out->size() < max) {
      out->push_back(pending.front());
      pending.pop_front();
    }
    return Status::Ok();
  }
  Status Dump(std::vector<CtEntry>* out) override {
    dumps++;
    *out = table;
    return Status::Ok();
  }
  Result<std::optional<CtEntry>> Get(const CtTuple& t) override {
    gets++;
    for (const CtEntry& e : table)
      if (e.original == t) return std::optional<CtEntry>(e);
    return std::optional<CtEntry>();
  }
  int gets = 0;
  ConntrackStats Stats() const override { return {}; }
};

constexpr uint32_t kAssured = 1u << 2;  // IPS_ASSURED: the handshake completed

CtEntry Entry(const char* osrc, const char* odst, const char* rsrc, const char* rdst) {
  CtEntry e;
  e.netns = 7;
  e.id = 1;
  e.original = CtTuple{E(osrc), E(odst)};
  e.reply = CtTuple{E(rsrc), E(rdst)};
  return e;
}

ProcessRef Proc(uint32_t pid, const char* comm) {
  ProcessRef p;
  p.pid = pid;
  p.start_ticks = pid * 10;
  p.set_comm(comm);
  return p;
}

ConnEvent Ev(EventKind kind, Direction dir, int64_t ts, const char* local, const char* remote,
             ProcessRef proc) {
  ConnEvent e;
  e.kind = kind;
  e.direction = dir;
  e.ts_ns = ts;
  Endpoint l = E(local), r = E(remote);
  e.key = ConnKey{1, l.addr, r.addr, l.port, r.port};
  e.proc = proc;
  return e;
}

class AggregatorNatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reader = std::make_unique<FakeReader>();
    reader_ = reader.get();
    feed_ = std::make_unique<NatFeed>(std::move(reader));
    ASSERT_TRUE(feed_->Seed(kT0).ok());
    agg_.set_nat(feed_.get(), kT0);
  }
  std::vector<FlowDelta> Flows() { return agg_.TakeBatch().flows; }

  FakeReader* reader_ = nullptr;
  std::unique_ptr<NatFeed> feed_;
  Aggregator agg_{nullptr};
};

TEST_F(AggregatorNatTest, AClientsFlowToAVipKeepsWhereItReallyWent) {
  reader_->pending.push_back(
      {CtEventKind::kNew, Entry("10.0.0.1:40000", "10.0.250.1:80", "10.0.0.2:8080", "10.0.0.1:40000")});
  agg_.Add(Ev(EventKind::kOpen, Direction::kActive, kT0 + kSec, "10.0.0.1:40000", "10.0.250.1:80",
              Proc(10, "curl")));
  std::vector<FlowDelta> f = Flows();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(Endpoint({f[0].key.raddr, f[0].key.rport}), E("10.0.250.1:80"));  // as dialled
  EXPECT_EQ(Endpoint({f[0].key.xaddr, f[0].key.xport}), E("10.0.0.2:8080"));
  EXPECT_EQ(agg_.Stats().translated, 1u);
  EXPECT_TRUE(agg_.Aliases(kT0 + kSec).empty());  // a client's VIP is no alias of this node
  // Claimed by its socket: never a forwarded connection.
  agg_.Tick(kT0 + 10 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_opened, 0u);
}

TEST_F(AggregatorNatTest, AnUntranslatedConnectionIsKeyedAsBefore) {
  agg_.Add(Ev(EventKind::kOpen, Direction::kActive, kT0 + kSec, "10.0.0.1:40001", "10.0.0.2:8080",
              Proc(10, "curl")));
  std::vector<FlowDelta> f = Flows();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_FALSE(f[0].key.translated());
}

TEST_F(AggregatorNatTest, AServersFlowKeepsThePublishedPortAndAnnouncesTheAlias) {
  reader_->pending.push_back({CtEventKind::kNew, Entry("10.0.0.1:40000", "10.0.0.3:9090",
                                                       "172.18.0.2:80", "10.0.0.1:40000")});
  agg_.Add(Ev(EventKind::kOpen, Direction::kPassive, kT0 + kSec, "172.18.0.2:80", "10.0.0.1:40000",
              Proc(30, "nginx")));
  std::vector<FlowDelta> f = Flows();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(Endpoint({f[0].key.laddr, f[0].key.lport}), E("172.18.0.2:80"));
  EXPECT_EQ(Endpoint({f[0].key.xaddr, f[0].key.xport}), E("10.0.0.3:9090"));
  std::vector<NatAlias> aliases = agg_.Aliases(kT0 + kSec);
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_EQ(aliases[0].front, E("10.0.0.3:9090"));
  EXPECT_EQ(aliases[0].target, E("172.18.0.2:80"));
  EXPECT_FALSE(aliases[0].balancer);
  EXPECT_EQ(aliases[0].owner.pid, 30u);
  EXPECT_EQ(aliases[0].netns, 7u);
  // Still open at the next checkpoint: still announced an hour later.
  agg_.Tick(kT0 + 2 * kSec);  // the first tick only notes the hour
  agg_.Tick(kT0 + 3600 * kSec);
  EXPECT_EQ(agg_.Aliases(kT0 + 3700 * kSec).size(), 1u);
  // Closed, and an hour without a connection through it: no longer announced.
  agg_.Add(Ev(EventKind::kClose, Direction::kPassive, kT0 + 3601 * kSec, "172.18.0.2:80",
              "10.0.0.1:40000", Proc(30, "nginx")));
  EXPECT_EQ(agg_.Aliases(kT0 + 7199 * kSec).size(), 1u);
  EXPECT_TRUE(agg_.Aliases(kT0 + 7300 * kSec).empty());
}

TEST_F(AggregatorNatTest, ABalancersForwardedConnectionsAreFlowsOfTheirOwn) {
  CtEntry e = Entry("10.0.0.1:40000", "10.0.0.9:8000", "10.0.0.4:8000", "10.0.0.9:50000");
  e.status = kAssured;
  reader_->pending.push_back({CtEventKind::kNew, e});
  agg_.Tick(kT0 + kSec);  // seen; no socket of ours claims it ...
  EXPECT_EQ(agg_.Stats().forwarded_opened, 0u);
  agg_.Tick(kT0 + 4 * kSec);  // ... past the grace: forwarded
  EXPECT_EQ(agg_.Stats().forwarded_opened, 1u);
  e.bytes_orig = 300;
  e.bytes_reply = 5000;
  reader_->pending.push_back({CtEventKind::kDestroy, e});
  agg_.Tick(kT0 + 5 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_closed, 1u);
  std::vector<FlowDelta> f = Flows();
  FlowStats total;
  for (const FlowDelta& d : f) {
    EXPECT_EQ(d.key.direction, Direction::kForwarded);
    EXPECT_EQ(Endpoint({d.key.laddr, d.key.lport}), E("10.0.0.9:8000"));
    EXPECT_EQ(d.key.raddr, A("10.0.0.1"));
    EXPECT_EQ(Endpoint({d.key.xaddr, d.key.xport}), E("10.0.0.4:8000"));
    EXPECT_EQ(d.key.pid, 0u);
    total.Merge(d.stats);
  }
  EXPECT_EQ(total.connections, 1u);
  EXPECT_EQ(total.closed, 1u);
  EXPECT_EQ(total.bytes_rx, 300u);
  EXPECT_EQ(total.bytes_tx, 5000u);
  EXPECT_EQ(agg_.Stats().unattributed, 0u);
  std::vector<NatAlias> aliases = agg_.Aliases(kT0 + 5 * kSec);
  ASSERT_EQ(aliases.size(), 1u);
  EXPECT_TRUE(aliases[0].balancer);
  EXPECT_EQ(aliases[0].front, E("10.0.0.9:8000"));
  EXPECT_EQ(aliases[0].target, E("10.0.0.4:8000"));
}

TEST_F(AggregatorNatTest, AnUnclaimedEntryOfThisNodesOwnAddressesIsNoForwardedConnection) {
  // A client connection of this host that closed before meshd started is in
  // conntrack (TIME_WAIT) with no socket left to claim it.
  agg_.set_nat(feed_.get(), kT0, [](const IpAddr& a) { return a == A("10.0.0.1"); });
  CtEntry e = Entry("10.0.0.1:40009", "10.0.250.1:80", "10.0.0.2:8080", "10.0.0.1:40009");
  e.status = kAssured;
  reader_->pending.push_back({CtEventKind::kNew, e});
  agg_.Tick(kT0 + kSec);
  agg_.Tick(kT0 + 4 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_opened, 0u);
  EXPECT_EQ(agg_.Stats().forwarded_local_ignored, 1u);
  EXPECT_TRUE(agg_.Aliases(kT0 + 4 * kSec).empty());
  EXPECT_TRUE(Flows().empty());
}

TEST_F(AggregatorNatTest, SpoofedSynsThroughAVipAreNoConnections) {
  // A flood of SYNs from made-up sources: conntrack makes entries, the
  // handshake never completes.
  for (int i = 0; i < 100; i++) {
    CtEntry e = Entry("198.51.100.1:1000", "10.0.0.9:8000", "10.0.0.4:8000", "10.0.0.9:50000");
    e.original.src.addr.bytes[3] = static_cast<uint8_t>(i);
    e.reply.dst.port = static_cast<uint16_t>(50000 + i);
    reader_->pending.push_back({CtEventKind::kNew, e});
  }
  agg_.Tick(kT0 + kSec);
  agg_.Tick(kT0 + 4 * kSec);  // unclaimed past the grace; not assured, asked again
  agg_.Tick(kT0 + 10 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_opened, 0u);
  EXPECT_EQ(feed_->Stats().forwarded_waiting, 0u);  // the kernel no longer has them
  EXPECT_GE(reader_->gets, 100);
  EXPECT_TRUE(Flows().empty());
  EXPECT_TRUE(agg_.Aliases(kT0 + 10 * kSec).empty());
}

TEST_F(AggregatorNatTest, AForwardedConnectionCountsOnceItsHandshakeCompletes) {
  CtEntry e = Entry("10.0.0.1:40010", "10.0.0.9:8000", "10.0.0.4:8000", "10.0.0.9:50010");
  reader_->pending.push_back({CtEventKind::kNew, e});  // the SYN: not assured
  reader_->table = {e};
  agg_.Tick(kT0 + kSec);
  agg_.Tick(kT0 + 4 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_opened, 0u);  // waiting
  reader_->table[0].status = kAssured;            // the handshake completed
  agg_.Tick(kT0 + 10 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_opened, 1u);
  e.status = kAssured;
  reader_->pending.push_back({CtEventKind::kDestroy, e});
  agg_.Tick(kT0 + 11 * kSec);
  EXPECT_EQ(agg_.Stats().forwarded_closed, 1u);
  FlowStats total;
  for (const FlowDelta& d : Flows()) total.Merge(d.stats);
  EXPECT_EQ(total.connections, 1u);
  EXPECT_EQ(total.closed, 1u);
  EXPECT_EQ(total.first_seen_ns, kT0 + kSec);  // counted when it began
}

TEST_F(AggregatorNatTest, ForwardedConnectionsOpenAtStartUpAreCarriedNotOpened) {
  reader_->table = {Entry("10.0.0.1:40000", "10.0.0.9:8000", "10.0.0.5:8000", "10.0.0.9:50001")};
  reader_->table[0].status = kAssured;
  auto reader = std::make_unique<FakeReader>();
  reader->table = reader_->table;
  reader_ = reader.get();
  feed_ = std::make_unique<NatFeed>(std::move(reader));
  ASSERT_TRUE(feed_->Seed(kT0).ok());
  agg_.set_nat(feed_.get(), kT0);
  agg_.Tick(kT0 + 4 * kSec);
  FlowStats total;
  for (const FlowDelta& d : Flows()) total.Merge(d.stats);
  EXPECT_EQ(total.connections, 0u);
  EXPECT_EQ(total.carried, 1u);
}

TEST_F(AggregatorNatTest, ConnectionsThatClosedBeforeStartUpAreNotCarriedIn) {
  auto reader = std::make_unique<FakeReader>();
  reader->table = {Entry("10.0.0.1:40000", "10.0.0.9:8000", "10.0.0.5:8000", "10.0.0.9:50001")};
  reader->table[0].status = kAssured;
  reader->table[0].tcp_state = 7;  // TIME_WAIT: over, lingering
  reader_ = reader.get();
  feed_ = std::make_unique<NatFeed>(std::move(reader));
  ASSERT_TRUE(feed_->Seed(kT0).ok());
  agg_.set_nat(feed_.get(), kT0);
  agg_.Tick(kT0 + 4 * kSec);
  EXPECT_TRUE(Flows().empty());
  EXPECT_EQ(feed_->Stats().closed_at_start, 1u);
}

TEST_F(AggregatorNatTest, LostEventsAreReadAgainWhole) {
  reader_->lose_next = true;
  reader_->table = {Entry("10.0.0.1:40002", "10.0.250.1:80", "10.0.0.2:8080", "10.0.0.1:40002")};
  agg_.Add(Ev(EventKind::kOpen, Direction::kActive, kT0 + kSec, "10.0.0.1:40002", "10.0.250.1:80",
              Proc(10, "curl")));
  EXPECT_EQ(reader_->dumps, 2);  // the seed's and the resync's
  agg_.Tick(kT0 + kSec);  // the stats' copy is made between runs of events
  EXPECT_EQ(feed_->Stats().resyncs, 1u);
  std::vector<FlowDelta> f = Flows();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(Endpoint({f[0].key.xaddr, f[0].key.xport}), E("10.0.0.2:8080"));
}

TEST_F(AggregatorNatTest, ATranslationOutlivesConntracksMemoryOnceInTheKey) {
  CtEntry e = Entry("10.0.0.1:40003", "10.0.250.1:80", "10.0.0.2:8080", "10.0.0.1:40003");
  reader_->pending.push_back({CtEventKind::kNew, e});
  // The process is not known at first (pid 0): the key is made again later.
  agg_.Add(Ev(EventKind::kOpen, Direction::kActive, kT0 + kSec, "10.0.0.1:40003", "10.0.250.1:80",
              ProcessRef{}));
  reader_->pending.push_back({CtEventKind::kDestroy, e});
  agg_.Tick(kT0 + 60 * kSec);  // long past the destroy grace
  agg_.Add(Ev(EventKind::kClose, Direction::kActive, kT0 + 61 * kSec, "10.0.0.1:40003",
              "10.0.250.1:80", Proc(10, "curl")));
  for (const FlowDelta& d : Flows())
    EXPECT_EQ(Endpoint({d.key.xaddr, d.key.xport}), E("10.0.0.2:8080")) << d.key.pid;
}

}  // namespace
}  // namespace flowmesh
