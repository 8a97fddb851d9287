// RemoteDirectory and its asker without a network: owners found in gossiped
// tables (exact and wildcard listeners, addresses), one query per member and
// level carrying all its questions, this node's questions answered here,
// dead members unreachable without a query, silence turned into
// `unreachable` after the hop timeout. Queries go out through the mesh's
// scatter-gather, as in meshd.
#include "node/look/remote_directory.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "cli/format/look_format.h"
#include "node/common/clock.h"
#include "node/look/look_service.h"
#include "node/look/look_wire.h"
#include "node/mesh/scatter_gather.h"
#include "tests/unit/store_test_util.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh {
namespace {

using namespace std::chrono_literals;
using testing::kSec;
using testing::MustOpen;
using testing::TempDir;
using testing::TestOptions;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }
IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

LookMember Table(const char* name, const char* addr, std::vector<IpAddr> addresses,
                 std::vector<Endpoint> endpoints, const char* state = "alive") {
  LookMember m;
  m.name = name;
  m.address = addr;
  m.addresses = std::move(addresses);
  m.endpoints = std::move(endpoints);
  m.state = state;
  m.live = m.state == "alive" || m.state == "suspect";
  return m;
}

class MeshLookTest : public ::testing::Test {
 protected:
  MeshLookTest()
      : store_(MustOpen(TestOptions(dir_.sub("store")))),
        local_(*store_, "client-1", {Ip("10.213.0.1")}, nullptr) {}

  // A directory whose members answer every look query by a fixed answer (or
  // stay silent when in silent_), recording what was sent where.
  std::unique_ptr<RemoteDirectory> Directory(std::vector<LookMember> members,
                                             int64_t hop_timeout_ns = 2'000'000'000,
                                             int64_t deadline_ns = MonotonicNs() + 10 * kSec) {
    using Gather = mesh::ScatterGather<std::vector<uint8_t>, std::vector<uint8_t>>;
    auto send = [this](const std::string& to, std::vector<uint8_t> q, int64_t,
                       Gather::Done done) {
      Result<QueryBatch> batch = DecodeQuery(q);
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      sent_[to].push_back(batch->questions.size());
      if (silent_.count(to)) return;  // never answers: the timeout decides
      if (busy_.count(to)) {
        // What meshd's mesh service sends when 16 queries are in flight there.
        LookService svc(*store_, {});
        Result<std::vector<uint8_t>> no = svc.Refuse(q, "refused: " + to + " is busy");
        ASSERT_TRUE(no.ok()) << no.status().ToString();
        return done(*no);
      }
      std::vector<LookAnswer> answers(batch->questions.size());
      for (size_t i = 0; i < answers.size(); i++) {
        answers[i].description.found = true;
        answers[i].description.process.pid = 100 + static_cast<uint32_t>(i);
        ClientProcess cp;
        cp.process.pid = 200 + static_cast<uint32_t>(i);
        answers[i].clients = {cp};  // read only for a clients question
      }
      // From another thread, as the mesh thread would.
      std::thread([done, a = EncodeAnswers(answers)] { done(a); }).detach();
    };
    QueryScatter scatter = [send](std::vector<MemberQuery> queries, int64_t timeout_ns,
                                  const std::function<void()>& meanwhile, QueryLimits) {
      std::vector<Gather::Target> targets;
      for (MemberQuery& q : queries) targets.push_back({q.address, std::move(q.bytes)});
      return Gather::Run(std::move(targets), send, timeout_ns, meanwhile);
    };
    return std::make_unique<RemoteDirectory>(local_, std::move(members), scatter, hop_timeout_ns,
                                             deadline_ns);
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  LocalDirectory local_;
  std::map<std::string, std::vector<size_t>> sent_;
  std::set<std::string> silent_;
  std::set<std::string> busy_;
};

size_t Count(const RemoteLookStats& s, Unanswered reason) {
  return s.unanswered[static_cast<size_t>(reason)];
}

TEST_F(MeshLookTest, OwnersComeFromTheGossipedTables) {
  auto dir = Directory({
      Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")},
            {Ep("0.0.0.0:80")}),
      Table("app-1", "10.213.0.3:7946", {Ip("10.213.0.3")},
            {Ep("10.213.0.3:8000")}),
      Table("old-1", "10.213.0.9:7946", {Ip("10.213.0.9")}, {}, "dead"),
  });
  // A wildcard listener owns the port on its own addresses only.
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.2:80"))->name, "web-1");
  EXPECT_FALSE(dir->OwnerOfEndpoint(Ep("10.213.0.3:80")).has_value());
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.3:8000"))->name, "app-1");
  EXPECT_EQ(dir->OwnerOfAddress(Ip("10.213.0.3"))->name, "app-1");
  // This node answers for its own addresses, from its store.
  std::optional<NodeRef> me = dir->OwnerOfAddress(Ip("10.213.0.1"));
  ASSERT_TRUE(me.has_value());
  EXPECT_EQ(me->name, "client-1");
  // A dead member still owns its address (an unreachable leaf, not no-agent).
  EXPECT_EQ(dir->OwnerOfAddress(Ip("10.213.0.9"))->name, "old-1");
  EXPECT_FALSE(dir->OwnerOfAddress(Ip("10.213.0.77")).has_value());
}

LookMember WithAliases(LookMember m, std::vector<MemberAlias> aliases) {
  m.aliases = std::move(aliases);
  return m;
}

TEST_F(MeshLookTest, AFrontBelongsToTheMemberWhoseNatTranslatesItAfterRealListeners) {
  auto dir = Directory({
      // docker -p 9090:80 on docker-1: host:9090 -> the container's nginx.
      WithAliases(Table("docker-1", "10.213.0.8:7946", {Ip("10.213.0.8")}, {Ep("172.18.0.2:80")}),
                  {{Ep("10.213.0.8:9090"), Ep("172.18.0.2:80"), false}}),
      // A balancer's VIP to two backends.
      WithAliases(Table("lb-1", "10.213.0.9:7946", {Ip("10.213.0.9")}, {}),
                  {{Ep("10.213.0.9:8000"), Ep("10.213.0.3:8000"), true},
                   {Ep("10.213.0.9:8000"), Ep("10.213.0.4:8000"), true},
                   // A stale claim on a port where another member listens.
                   {Ep("10.213.0.3:8000"), Ep("10.213.0.4:8000"), true}}),
      Table("app-1", "10.213.0.3:7946", {Ip("10.213.0.3")}, {Ep("10.213.0.3:8000")}),
  });
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.8:9090"))->name, "docker-1");
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.9:8000"))->name, "lb-1");
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.3:8000"))->name, "app-1") << "a listener wins";
  EXPECT_FALSE(dir->OwnerOfEndpoint(Ep("10.213.0.9:8001")).has_value());
  EXPECT_EQ(dir->FrontsOf(Ep("10.213.0.4:8000")),
            (std::vector<Endpoint>{Ep("10.213.0.3:8000"), Ep("10.213.0.9:8000")}));
  EXPECT_EQ(dir->FrontsOf(Ep("10.213.0.3:8000")), std::vector<Endpoint>{Ep("10.213.0.9:8000")});
  EXPECT_TRUE(dir->FrontsOf(Ep("172.18.0.2:80")).empty()) << "a published port is no balancer";
}

TEST_F(MeshLookTest, AFrontSeveralMembersClaimGoesToTheSameOneEveryTime) {
  MemberAlias vip{Ep("10.96.0.10:80"), Ep("10.213.0.3:8000"), true};
  MemberAlias own{Ep("10.213.0.7:80"), Ep("10.213.0.3:8000"), true};
  // kube-proxy: every node translates the Service VIP.
  std::vector<LookMember> members = {
      WithAliases(Table("node-c", "10.213.0.6:7946", {Ip("10.213.0.6")}, {}), {vip}),
      WithAliases(Table("node-a", "10.213.0.5:7946", {Ip("10.213.0.5")}, {}, "dead"), {vip}),
      WithAliases(Table("node-b", "10.213.0.7:7946", {Ip("10.213.0.7")}, {}), {vip, own}),
  };
  for (int order = 0; order < 2; order++) {
    auto dir = Directory(members);
    // Live before dead, then the smallest name.
    EXPECT_EQ(dir->OwnerOfEndpoint(vip.front)->name, "node-b");
    std::reverse(members.begin(), members.end());
  }
  // A member that has the front's address wins over a smaller name.
  members.push_back(
      WithAliases(Table("node-0", "10.213.0.4:7946", {Ip("10.213.0.4")}, {}), {own}));
  EXPECT_EQ(Directory(members)->OwnerOfEndpoint(own.front)->name, "node-b");
  members.back().addresses.push_back(Ip("10.96.0.10"));
  EXPECT_EQ(Directory(members)->OwnerOfEndpoint(vip.front)->name, "node-b")
      << "node-0 does not claim the VIP";
  members.back().aliases.push_back(vip);
  EXPECT_EQ(Directory(members)->OwnerOfEndpoint(vip.front)->name, "node-0");
  // Only dead members claim it: still theirs (an unreachable leaf, not no-agent).
  auto dead = Directory({members[1]});
  EXPECT_EQ(dead->OwnerOfEndpoint(vip.front)->name, "node-a");
}

TEST_F(MeshLookTest, OneQueryPerMemberAndLevelDeadMembersAreNotAsked) {
  auto dir = Directory({
      Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")}, {}),
      Table("app-1", "10.213.0.3:7946", {Ip("10.213.0.3")}, {}),
      Table("old-1", "10.213.0.9:7946", {Ip("10.213.0.9")}, {}, "dead"),
  });
  NodeRef web = *dir->OwnerOfAddress(Ip("10.213.0.2"));
  NodeRef app = *dir->OwnerOfAddress(Ip("10.213.0.3"));
  NodeRef old = *dir->OwnerOfAddress(Ip("10.213.0.9"));
  NodeRef me = *dir->OwnerOfAddress(Ip("10.213.0.1"));
  using K = LookQuestion::Kind;
  std::vector<LookQuestion> qs = {
      {K::kDescribe, web, Ep("10.213.0.2:80"), {}},
      {K::kDescribe, app, Ep("10.213.0.3:8000"), {}},
      {K::kClients, web, Ep("10.213.0.3:8000"), Ip("10.213.0.2")},
      {K::kDescribe, old, Ep("10.213.0.9:80"), {}},
      {K::kActive, me, {}, Ip("10.213.0.1")},
  };
  std::vector<LookAnswer> a = dir->Ask(qs, TimeWindow{});
  ASSERT_EQ(a.size(), qs.size());
  EXPECT_EQ(sent_["10.213.0.2:7946"], std::vector<size_t>{2});  // both of web-1's questions
  EXPECT_EQ(sent_["10.213.0.3:7946"], std::vector<size_t>{1});
  EXPECT_EQ(sent_.count("10.213.0.9:7946"), 0u);
  EXPECT_TRUE(a[0].status.ok());
  EXPECT_EQ(a[0].description.process.pid, 100u);
  ASSERT_EQ(a[2].clients.size(), 1u);
  EXPECT_EQ(a[2].clients[0].process.pid, 201u);  // the second answer of web-1's batch
  EXPECT_FALSE(a[3].status.ok());
  EXPECT_NE(a[3].status.message().find("dead"), std::string::npos) << a[3].status.message();
  EXPECT_TRUE(a[4].status.ok()) << a[4].status.message();  // answered here, from the store
  EXPECT_EQ(dir->stats().round_trips, 2u);
  EXPECT_EQ(dir->stats().questions, 3u);
  EXPECT_EQ(Count(dir->stats(), Unanswered::kMemberGone), 1u);
}

// Issue 13: right after a member joins, its table may not be here yet. The
// address its queries go to is its own; any other address no table claims
// may be its too, which the walk shows as `unsynced` rather than `no-agent`.
TEST_F(MeshLookTest, AMemberWithoutItsTableOwnsItsMeshAddressAndIsUnsynced) {
  LookMember fresh = Table("new-1", "10.213.0.4:7946", {}, {});
  fresh.synced = false;
  LookMember gone = Table("old-1", "10.213.0.9:7946", {}, {}, "dead");
  gone.synced = false;
  auto dir = Directory({Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")}, {}), fresh, gone});
  EXPECT_EQ(dir->OwnerOfAddress(Ip("10.213.0.4"))->name, "new-1");
  EXPECT_EQ(dir->OwnerOfEndpoint(Ep("10.213.0.4:8000")),
            std::nullopt);  // the engine asks by address
  EXPECT_FALSE(dir->OwnerOfAddress(Ip("10.213.0.77")).has_value());
  EXPECT_EQ(dir->Unsynced(), "member new-1");  // a dead member is no reason to wait
  auto synced = Directory({Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")}, {})});
  EXPECT_EQ(synced->Unsynced(), "");
}

// A member that refuses (too many queries in flight) answers every question
// with the reason, which the tree shows and the stats count as refused.
TEST_F(MeshLookTest, ARefusalCarriesItsReasonAndIsCounted) {
  busy_.insert("10.213.0.3:7946");
  auto dir = Directory({Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")}, {}),
                        Table("app-1", "10.213.0.3:7946", {Ip("10.213.0.3")}, {})});
  using K = LookQuestion::Kind;
  NodeRef app = *dir->OwnerOfAddress(Ip("10.213.0.3"));
  std::vector<LookAnswer> a = dir->Ask({{K::kDescribe, app, Ep("10.213.0.3:8000"), {}},
                                        {K::kClients, app, Ep("10.213.0.2:80"), Ip("10.213.0.3")}},
                                       TimeWindow{});
  ASSERT_EQ(a.size(), 2u);
  for (const LookAnswer& x : a) EXPECT_EQ(x.status.message(), "refused: 10.213.0.3:7946 is busy");
  EXPECT_EQ(dir->stats().failed, 1u);
  EXPECT_EQ(Count(dir->stats(), Unanswered::kRefused), 1u);
}

TEST_F(MeshLookTest, ASilentMemberIsUnreachableAfterTheHopTimeoutAndTheRestAnswers) {
  silent_.insert("10.213.0.3:7946");
  std::vector<LookMember> members = {
      Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")}, {}),
      Table("app-1", "10.213.0.3:7946", {Ip("10.213.0.3")}, {}),
  };
  auto dir = Directory(members, 200'000'000);
  NodeRef web = *dir->OwnerOfAddress(Ip("10.213.0.2"));
  NodeRef app = *dir->OwnerOfAddress(Ip("10.213.0.3"));
  using K = LookQuestion::Kind;
  auto start = std::chrono::steady_clock::now();
  std::vector<LookAnswer> a = dir->Ask({{K::kDescribe, web, Ep("10.213.0.2:80"), {}},
                                        {K::kDescribe, app, Ep("10.213.0.3:8000"), {}}},
                                       TimeWindow{});
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(a[0].status.ok());
  EXPECT_FALSE(a[1].status.ok());
  // The sender itself times out in meshd; here nothing does, so the
  // scatter-gather's own guard (hop timeout + 1 s) ends the wait.
  EXPECT_LT(took, 3s);
  EXPECT_EQ(dir->stats().failed, 1u);
  EXPECT_EQ(Count(dir->stats(), Unanswered::kTimeout), 1u);
  // Past the deadline nothing is sent at all.
  sent_.clear();
  auto late = Directory(members, 200'000'000, MonotonicNs() - 1);
  a = late->Ask({{K::kDescribe, *late->OwnerOfAddress(Ip("10.213.0.2")), Ep("10.213.0.2:80"), {}}},
                TimeWindow{});
  EXPECT_FALSE(a[0].status.ok());
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(Count(late->stats(), Unanswered::kDeadline), 1u);
}

// Issue 15: a member that does not answer still announced who listens on
// its endpoints; the unreachable leaf shows that owner and its workload.
TEST_F(MeshLookTest, AnUnreachableEndpointShowsTheOwnerItsTableAnnounced) {
  LookMember web = Table("web-1", "10.213.0.2:7946", {Ip("10.213.0.2")},
                         {Ep("0.0.0.0:80"), Ep("10.213.0.2:9000")}, "dead");
  ProcessDetails nginx;
  nginx.pid = 120;
  nginx.pgid = 120;
  nginx.comm = "nginx";
  nginx.workload = testing::SampleUnit();
  web.owners = {nginx};  // :9000's owner was not announced
  auto dir = Directory({web});
  ASSERT_TRUE(dir->TableOwner(Ep("10.213.0.2:80")).has_value());
  EXPECT_EQ(dir->TableOwner(Ep("10.213.0.2:80"))->workload, testing::SampleUnit());
  EXPECT_FALSE(dir->TableOwner(Ep("10.213.0.2:9000")).has_value());
  EXPECT_FALSE(dir->TableOwner(Ep("10.213.0.3:80")).has_value());

  LookQuery q;
  q.target = Ep("10.213.0.2:80");
  LookResult r = Look(q, *dir);
  EXPECT_EQ(r.root.status, LookStatus::kUnreachable);
  ASSERT_TRUE(r.root.process.has_value());
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.2:80 nginx.service ('nginx', pgid=120) on web-1 [unreachable]  "
            "(member web-1 is dead)\n");
}

}  // namespace
}  // namespace flowmesh
