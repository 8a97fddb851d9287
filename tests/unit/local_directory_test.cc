// look on one node, end to end: events through the aggregator (process
// details from the fake /proc), into a real Store, answered by
// LocalDirectory/LocalQuerier: wildcard listeners, loopback clients, pgid
// groups (nginx master and worker), time windows, past listeners.
#include "node/look/local_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <limits>

#include "cli/format/look_format.h"
#include "node/common/clock.h"
#include "node/flow/aggregator.h"
#include "tests/test_paths.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using ::flowmesh::testing::kT0;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint32_t kNetns = 1;
const IpAddr kHost = IpAddr::V4(10, 213, 0, 2);
const IpAddr kLoop = IpAddr::V4(127, 0, 0, 1);
const IpAddr kRemote = IpAddr::V4(10, 213, 0, 7);

// Processes of testdata/proc: nginx master 100 and worker 101 (pgid 100),
// "my (weird) proc" 200, sshd 300, redis-server 400.
ProcessRef Ref(uint32_t pid, uint64_t start) {
  ProcessRef r;
  r.pid = pid;
  r.start_ticks = start;
  return r;
}
const ProcessRef kMaster = Ref(100, 1000), kWorker = Ref(101, 1010), kWeird = Ref(200, 1500),
                 kSshd = Ref(300, 1600), kRedis = Ref(400, 2000);

class LocalDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = flowmesh::testing::MustOpen(flowmesh::testing::TestOptions(dir_.path()));
    ASSERT_NE(store_, nullptr);
    Listen(IpAddr::V4(0, 0, 0, 0), 80, kMaster);
    Listen(kLoop, 6379, kRedis);
    uint16_t port = 40000;
    // Clients of nginx: a remote without an agent (2), a local process over
    // the host address, another over loopback.
    for (int i = 0; i < 2; i++) Conn(Direction::kPassive, kHost, 80, kRemote, port++, kMaster);
    Pair(kHost, kHost, 80, port++, kWeird, kMaster);
    Pair(kLoop, kLoop, 80, port++, kSshd, kMaster);
    // nginx's worker calls an app elsewhere (3) and the local redis (2).
    for (int i = 0; i < 3; i++)
      Conn(Direction::kActive, kHost, port++, IpAddr::V4(10, 213, 0, 3), 8000, kWorker);
    for (int i = 0; i < 2; i++) Pair(kLoop, kLoop, 6379, port++, kWorker, kRedis);
    ASSERT_TRUE(store_->Write(agg_.TakeBatch()).ok());
  }

  void Listen(IpAddr addr, uint16_t port, ProcessRef owner) {
    ConnEvent e;
    e.kind = EventKind::kListen;
    e.ts_ns = kT0;
    e.key = ConnKey{kNetns, addr, {}, port, 0};
    e.proc = owner;
    agg_.Add(e);
  }
  // One connection seen from one side: open and close.
  void Conn(Direction dir, IpAddr laddr, uint16_t lport, IpAddr raddr, uint16_t rport,
            ProcessRef proc) {
    ConnEvent e;
    e.direction = dir;
    e.ts_ns = kT0 + flowmesh::testing::kSec;
    e.key = ConnKey{kNetns, laddr, raddr, lport, rport};
    e.proc = proc;
    e.kind = EventKind::kOpen;
    agg_.Add(e);
    e.kind = EventKind::kClose;
    agg_.Add(e);
  }
  // A connection between two local processes: both ends are on this node.
  void Pair(IpAddr client, IpAddr server, uint16_t sport, uint16_t cport, ProcessRef from,
            ProcessRef to) {
    Conn(Direction::kActive, client, cport, server, sport, from);
    Conn(Direction::kPassive, server, sport, client, cport, to);
  }
  LookResult Run(const char* target, LookDirection dir, TimeWindow w = {}) {
    LocalDirectory d(*store_, "web-1", {kHost}, [this] { return live_; });
    LookQuery q;
    q.target = *Endpoint::Parse(target);
    q.direction = dir;
    q.window = w;
    return Look(q, d);
  }

  flowmesh::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  ProcessCache cache_{ProcReader(std::string(FLOWMESH_TESTDATA) + "/proc")};
  Aggregator agg_{&cache_};
  std::vector<EndpointRecord> live_;
};

TEST_F(LocalDirectoryTest, OwnsLocalAddressesAndListeners) {
  LocalDirectory d(*store_, "web-1", {kHost}, [this] { return live_; });
  EXPECT_TRUE(d.OwnerOfEndpoint(*Endpoint::Parse("10.213.0.2:80")));  // wildcard listener
  EXPECT_TRUE(d.OwnerOfEndpoint(*Endpoint::Parse("127.0.0.1:80")));
  EXPECT_FALSE(d.OwnerOfEndpoint(*Endpoint::Parse("10.213.0.9:80")));  // not our address
  EXPECT_TRUE(d.OwnerOfEndpoint(*Endpoint::Parse("127.0.0.1:6379")));
  EXPECT_FALSE(d.OwnerOfEndpoint(*Endpoint::Parse("10.213.0.2:6379")));  // loopback only
  EXPECT_FALSE(d.OwnerOfEndpoint(*Endpoint::Parse("10.213.0.2:9090")));
  EXPECT_EQ(d.OwnerOfAddress(kHost)->name, "web-1");
  EXPECT_TRUE(d.OwnerOfAddress(IpAddr::V4(127, 0, 0, 5)));
  EXPECT_FALSE(d.OwnerOfAddress(kRemote));

  // A listener the live table has and the store not yet.
  EndpointRecord fresh;
  fresh.netns = kNetns;
  fresh.addr = IpAddr::V4(0, 0, 0, 0);
  fresh.port = 9090;
  fresh.proc = kSshd;
  live_.push_back(fresh);
  EXPECT_TRUE(d.OwnerOfEndpoint(*Endpoint::Parse("10.213.0.2:9090")));
  Result<EndpointDescription> desc =
      d.querier().Describe(*Endpoint::Parse("10.213.0.2:9090"), TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(desc.ok()) << desc.status().message();
  EXPECT_TRUE(desc->found);
  EXPECT_EQ(desc->process.pid, 300u);
}

TEST_F(LocalDirectoryTest, DescribesTheServerGroupAndItsClients) {
  EXPECT_EQ(FormatLookTree(Run("10.213.0.2:80", LookDirection::kBoth)),
            "10.213.0.2:80 ('nginx', pgid=100) on web-1\n"
            "└<-- 10.213.0.7 [no-agent]  2 conns 0 B\n"
            "└<-- 10.213.0.2 ('my (weird) proc', pgid=200) on web-1  1 conn 0 B\n"
            "└--> 10.213.0.3:8000 [no-agent]  3 conns 0 B\n"
            "└--> 127.0.0.1:6379 ('redis-server', pgid=400) on web-1  2 conns 0 B\n");
}

TEST_F(LocalDirectoryTest, ClientsUpwardThroughLoopbackAndTheGroupsWildcardListener) {
  LookResult r = Run("127.0.0.1:6379", LookDirection::kIn);
  EXPECT_EQ(FormatLookTree(r),
            "127.0.0.1:6379 ('redis-server', pgid=400) on web-1\n"
            "└<-- 127.0.0.1 ('nginx', pgid=100) on web-1  2 conns 0 B\n"
            "     └<-- 10.213.0.7 [no-agent]  2 conns 0 B\n"
            "     └<-- 10.213.0.2 ('my (weird) proc', pgid=200) on web-1  1 conn 0 B\n"
            "     └<-- 127.0.0.1 ('sshd', pgid=300) on web-1  1 conn 0 B\n");
  // The group is shown by its leader, the master, though the worker connected.
  EXPECT_EQ(r.root.clients.at(0).process->pid, 100u);
  EXPECT_EQ(r.root.clients.at(0).process->exe, "/usr/sbin/nginx");
}

TEST_F(LocalDirectoryTest, AWindowWithoutTrafficKeepsOnlyTheListener) {
  TimeWindow later{kT0 + 10 * flowmesh::testing::kMin, kT0 + 20 * flowmesh::testing::kMin};
  LookResult r = Run("10.213.0.2:80", LookDirection::kBoth, later);
  EXPECT_EQ(r.root.process->comm, "nginx");
  EXPECT_THAT(r.root.clients, IsEmpty());
  EXPECT_THAT(r.root.dependencies, IsEmpty());
}

TEST_F(LocalDirectoryTest, ClientsQuestionMatchesTheSourceAddress) {
  LocalQuerier q(*store_, {});
  Endpoint target = *Endpoint::Parse("10.213.0.2:80");
  auto from_host = q.Clients(target, kHost, {}, GroupBy::kWorkload);
  ASSERT_TRUE(from_host.ok());
  ASSERT_THAT(*from_host, SizeIs(1));
  EXPECT_EQ((*from_host)[0].process.pid, 200u);
  EXPECT_THAT(*q.Clients(target, kRemote, {}, GroupBy::kWorkload), IsEmpty());
  auto any =
      q.Clients(*Endpoint::Parse("127.0.0.1:80"), IpAddr::V4(127, 0, 0, 1), {}, GroupBy::kWorkload);
  ASSERT_THAT(*any, SizeIs(1));
  EXPECT_EQ((*any)[0].process.pid, 300u);
}

// A look nobody waits for any more reads no more: past its deadline, each
// question is answered so, and the tree says why.
TEST_F(LocalDirectoryTest, PastTheDeadlineQuestionsAreAnsweredWithoutReading) {
  LocalDirectory d(*store_, "web-1", {kHost}, [this] { return live_; });
  d.set_deadline(MonotonicNs() - 1);
  LookQuery q;
  q.target = *Endpoint::Parse("10.213.0.2:80");
  q.direction = LookDirection::kBoth;
  LookResult r = Look(q, d);
  EXPECT_EQ(r.root.status, LookStatus::kUnreachable);
  EXPECT_NE(r.root.status_detail.find("deadline has passed"), std::string::npos)
      << r.root.status_detail;
  EXPECT_THAT(r.root.clients, IsEmpty());
  d.set_deadline(MonotonicNs() + 60'000'000'000);
  EXPECT_EQ(Look(q, d).root.status, LookStatus::kOk);
}

// Clients that bind their own loopback source address (a pool spread over
// 127.1.0.x) are each their own line, with their own connections; a source
// no client bound still finds any loopback client.
TEST_F(LocalDirectoryTest, LoopbackClientsWithTheirOwnSourceAddressAreApart) {
  const IpAddr a = IpAddr::V4(127, 1, 0, 14), b = IpAddr::V4(127, 1, 0, 15);
  for (uint16_t p = 41000; p < 41003; ++p) Pair(a, kLoop, 6379, p, kSshd, kRedis);
  Pair(b, kLoop, 6379, 41003, kWeird, kRedis);
  ASSERT_TRUE(store_->Write(agg_.TakeBatch()).ok());
  LocalQuerier q(*store_, {});
  const Endpoint redis = *Endpoint::Parse("127.0.0.1:6379");
  auto from_a = q.Clients(redis, a, {}, GroupBy::kWorkload);
  ASSERT_TRUE(from_a.ok());
  ASSERT_THAT(*from_a, SizeIs(1));
  EXPECT_EQ((*from_a)[0].process.pid, 300u);
  EXPECT_EQ((*from_a)[0].stats.active(), 3u);
  auto from_loop = q.Clients(redis, kLoop, {}, GroupBy::kWorkload);
  ASSERT_THAT(*from_loop, SizeIs(1));
  EXPECT_EQ((*from_loop)[0].process.pid, 100u) << "nginx's worker, from 127.0.0.1 itself";
  EXPECT_THAT(*q.Clients(redis, IpAddr::V4(127, 0, 0, 9), {}, GroupBy::kWorkload), SizeIs(3))
      << "no exact source";
}

// A server on :8080 that stopped, and another process that listens there
// now: a window in the past has the first as its root, the present the second.
TEST_F(LocalDirectoryTest, APastWindowShowsWhoListenedThenAndThePresentWhoListensNow) {
  using flowmesh::testing::kMin;
  const IpAddr any = IpAddr::V4(0, 0, 0, 0);
  Listen(any, 8080, kWeird);  // at kT0
  Conn(Direction::kPassive, kHost, 8080, kRemote, 41000, kWeird);
  ConnEvent stop;
  stop.kind = EventKind::kUnlisten;
  stop.ts_ns = kT0 + 2 * kMin;
  stop.key = ConnKey{kNetns, any, {}, 8080, 0};
  stop.proc = kWeird;
  agg_.Add(stop);
  ASSERT_TRUE(store_->Write(agg_.TakeBatch()).ok());
  // sshd listens there from kT0 + 10 min; the live table has it, and the
  // store too once flushed.
  EndpointRecord now;
  now.netns = kNetns;
  now.addr = any;
  now.port = 8080;
  now.proc = kSshd;
  now.since_ns = kT0 + 10 * kMin;
  live_.push_back(now);

  LocalQuerier q(*store_, [this] { return live_; });
  const Endpoint target = *Endpoint::Parse("10.213.0.2:8080");
  auto then = q.Describe(target, TimeWindow{kT0, kT0 + kMin}, GroupBy::kWorkload);
  ASSERT_TRUE(then.ok()) << then.status().message();
  EXPECT_TRUE(then->found);
  EXPECT_EQ(then->process.pid, 200u);
  EXPECT_EQ(then->process.comm, "my (weird) proc") << "details from the processes column family";
  ASSERT_THAT(then->clients, SizeIs(1));
  EXPECT_EQ(then->clients[0].addr, kRemote);
  // Listening, without traffic: still the listener of that time.
  auto idle = q.Describe(target, TimeWindow{kT0 + 90 * flowmesh::testing::kSec, kT0 + 3 * kMin},
                         GroupBy::kWorkload);
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->process.pid, 200u);
  EXPECT_THAT(idle->clients, IsEmpty());
  // Between the two: nobody.
  auto gap = q.Describe(target, TimeWindow{kT0 + 3 * kMin, kT0 + 5 * kMin}, GroupBy::kWorkload);
  ASSERT_TRUE(gap.ok());
  EXPECT_FALSE(gap->found);
  // A window through now: the live one, also when it reaches back to the first.
  auto present = q.Describe(
      target, TimeWindow{kT0 + 11 * kMin, std::numeric_limits<int64_t>::max()}, GroupBy::kWorkload);
  ASSERT_TRUE(present.ok());
  EXPECT_EQ(present->process.pid, 300u);
  auto both =
      q.Describe(target, TimeWindow{kT0, std::numeric_limits<int64_t>::max()}, GroupBy::kWorkload);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->process.pid, 300u) << "the latest listener of the window";

  EXPECT_EQ(FormatLookTree(Run("10.213.0.2:8080", LookDirection::kIn, {kT0, kT0 + kMin})),
            "10.213.0.2:8080 ('my (weird) proc', pgid=200) on web-1\n"
            "└<-- 10.213.0.7 [no-agent]  1 conn 0 B\n");
}

// The upward walk names the endpoints a client group listened on in the
// window, also one it has stopped listening on since.
TEST_F(LocalDirectoryTest, AClientsEndpointsAreTheOnesOfTheWindow) {
  using flowmesh::testing::kMin;
  ConnEvent stop;
  stop.kind = EventKind::kUnlisten;
  stop.ts_ns = kT0 + 2 * kMin;
  stop.key = ConnKey{kNetns, IpAddr::V4(0, 0, 0, 0), {}, 80, 0};
  stop.proc = kMaster;
  agg_.Add(stop);
  ASSERT_TRUE(store_->Write(agg_.TakeBatch()).ok());
  LocalQuerier q(*store_, {});
  auto then =
      q.Clients(*Endpoint::Parse("127.0.0.1:6379"), kLoop, {kT0, kT0 + kMin}, GroupBy::kWorkload);
  ASSERT_TRUE(then.ok());
  ASSERT_THAT(*then, SizeIs(1));
  EXPECT_EQ((*then)[0].process.pid, 100u);
  ASSERT_THAT((*then)[0].endpoints, SizeIs(1));
  EXPECT_EQ((*then)[0].endpoints[0].port, 80);
  EXPECT_THAT((*then)[0].clients, SizeIs(3));
  auto later = q.Clients(*Endpoint::Parse("127.0.0.1:6379"), kLoop, {kT0, kT0 + 10 * kMin},
                         GroupBy::kWorkload);
  ASSERT_TRUE(later.ok());
  ASSERT_THAT(*later, SizeIs(1));
  EXPECT_THAT((*later)[0].endpoints, SizeIs(1)) << "it listened during part of the window";
  auto after = q.Clients(*Endpoint::Parse("127.0.0.1:6379"), kLoop,
                         {kT0 + 5 * kMin, kT0 + 9 * kMin}, GroupBy::kWorkload);
  ASSERT_TRUE(after.ok());
  EXPECT_THAT(*after, IsEmpty()) << "no flows to redis then";
}

}  // namespace
}  // namespace flowmesh
