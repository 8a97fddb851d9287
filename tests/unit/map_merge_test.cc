// MergeMap and CutMap: every member's real answer (LocalQuerier::Map over a
// real store, through the real wire) merged into one graph, and the hard
// cases by hand: duplicates, both ends of one edge, unreachable members,
// unconfirmed and external clients, balancers, loopback, unsynced tables.
#include "node/look/map_merge.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "node/look/map_wire.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh::maptest {
namespace {

std::string Ids(const MapGraph& g) {
  std::string out;
  for (const MapNode& n : g.nodes) out += n.id + " ";
  return out;
}

class MapMerge : public MapMesh {
 protected:
  // Each node's answer as it arrives: read from its store, over the wire.
  MemberAnswer Answer(const std::string& name) {
    Result<MemberMap> m = nodes_[name]->querier->Map(TimeWindow{}, GroupBy::kWorkload);
    EXPECT_TRUE(m.ok()) << m.status().message();
    Result<std::vector<uint8_t>> bytes = EncodeMapAnswer(m);
    EXPECT_TRUE(bytes.ok());
    return MemberAnswer{name, DecodeMapAnswer(*bytes), bytes->size(), 1000};
  }
  std::vector<LookMember> Members() {
    std::vector<LookMember> out;
    for (auto& [name, n] : nodes_) out.push_back(n->Member());
    return out;
  }
  MapGraph Merge(const std::vector<std::string>& silent = {},
                 std::vector<MemberAnswer> extra = {}) {
    CommitAll();
    std::vector<MemberAnswer> answers = std::move(extra);
    for (auto& [name, n] : nodes_) {
      if (std::find(silent.begin(), silent.end(), name) != silent.end()) {
        answers.push_back({name, Unavailable("no answer from " + name + " in 2s")});
        continue;
      }
      answers.push_back(Answer(name));
    }
    return MergeMap(Members(), answers, GroupBy::kWorkload, TimeWindow{});
  }
};

TEST_F(MapMerge, EveryMembersAnswerMakesOneGraph) {
  MapGraph g = Merge();
  EXPECT_EQ(Ids(g),
            "b1/lb:10.0.0.9:8000 be1/g40 be2/g50 c1/g10 c1/g11 d1/g30 ext:198.51.100.7 "
            "ext:203.0.113.9:443 s1/g20 s1/g21 ");
  ASSERT_EQ(g.edges.size(), 7u);
  EXPECT_TRUE(
      std::is_sorted(g.edges.begin(), g.edges.end(), [](const MapEdge& a, const MapEdge& b) {
        return std::tie(a.from, a.to, a.endpoint) < std::tie(b.from, b.to, b.endpoint);
      }));

  // Through the client node's VIP: one edge, seen from both ends, the client's counts.
  const MapEdge* vip = FindEdge(g, "c1/g10", "s1/g20");
  ASSERT_NE(vip, nullptr);
  EXPECT_EQ(vip->endpoint, E("10.0.0.2:8080"));
  EXPECT_EQ(vip->via, E("10.0.250.1:80"));
  EXPECT_TRUE(vip->client_seen && vip->server_seen);
  EXPECT_EQ(vip->stats.connections, 20u);

  // A published port resolves to the container's listener.
  const MapEdge* published = FindEdge(g, "c1/g10", "d1/g30");
  ASSERT_NE(published, nullptr);
  EXPECT_EQ(published->endpoint, E("10.0.0.3:9090"));
  EXPECT_TRUE(published->client_seen && published->server_seen);

  // The balancer: clients to its front, its front to the backends; the
  // backends' client (the balancer's masquerading address) is its edge, not
  // an unconfirmed one.
  const MapNode* lb = FindNode(g, "b1/lb:10.0.0.9:8000");
  ASSERT_NE(lb, nullptr);
  EXPECT_EQ(lb->kind, MapNodeKind::kBalancer);
  const MapEdge* to_lb = FindEdge(g, "c1/g11", lb->id);
  ASSERT_NE(to_lb, nullptr);
  EXPECT_TRUE(to_lb->client_seen && to_lb->server_seen);
  for (const char* be : {"be1/g40", "be2/g50"}) {
    const MapEdge* e = FindEdge(g, lb->id, be);
    ASSERT_NE(e, nullptr) << be;
    EXPECT_TRUE(e->client_seen && e->server_seen) << be;
  }
  EXPECT_EQ(FindEdge(g, lb->id, "be1/g40")->stats.connections, 6u);
  for (const MapNode& n : g.nodes) EXPECT_NE(n.status, LookStatus::kUnconfirmed) << n.id;

  // Outside the mesh, both ways.
  const MapNode* ext = FindNode(g, "ext:203.0.113.9:443");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->status, LookStatus::kNoAgent);
  EXPECT_EQ(ext->label, "203.0.113.9:443");
  const MapEdge* out = FindEdge(g, "c1/g11", ext->id);
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(out->client_seen);
  EXPECT_FALSE(out->server_seen);
  const MapEdge* in = FindEdge(g, "ext:198.51.100.7", "s1/g20");
  ASSERT_NE(in, nullptr);
  EXPECT_FALSE(in->client_seen);
  EXPECT_TRUE(in->server_seen);
  EXPECT_EQ(in->stats.connections, 2u);
  const std::vector<Endpoint> client{Endpoint{A("198.51.100.7"), 0}};
  EXPECT_EQ(FindNode(g, "ext:198.51.100.7")->endpoints, client);

  // The listener nobody called is a node without edges.
  const MapNode* idle = FindNode(g, "s1/g21");
  ASSERT_NE(idle, nullptr);
  EXPECT_EQ(idle->label, "'idle' pgid 21");
  EXPECT_EQ(idle->status, LookStatus::kOk);

  ASSERT_EQ(g.members.size(), 6u);
  for (const MapMember& m : g.members) {
    EXPECT_TRUE(m.answered) << m.name;
    EXPECT_GT(m.answer_bytes, 0u) << m.name;
  }
}

TEST_F(MapMerge, DuplicateAnswersAndRepeatedEntriesNeverDoubleCount) {
  CommitAll();
  MemberAnswer twice = Answer("c1");
  ASSERT_TRUE(twice.map.ok());
  MemberMap& m = *twice.map;
  m.entries.push_back(m.entries[0]);  // an entry repeated
  MapGraph once = Merge();
  MapGraph g = Merge({}, {twice, Answer("s1")});
  ASSERT_EQ(g.edges.size(), once.edges.size());
  for (size_t i = 0; i < g.edges.size(); i++)
    EXPECT_EQ(g.edges[i].stats, once.edges[i].stats) << g.edges[i].from << " -> " << g.edges[i].to;
}

TEST_F(MapMerge, AnUnreachableMembersGossipedListenersStayNodesWithTheirEdges) {
  MapGraph g = Merge({"s1"});
  const MapNode* srv = FindNode(g, "s1/g20");
  ASSERT_NE(srv, nullptr) << Ids(g);
  EXPECT_EQ(srv->status, LookStatus::kUnreachable);
  EXPECT_NE(srv->status_detail.find("no answer from s1 in 2s"), std::string::npos);
  EXPECT_EQ(srv->label, "'gossiped' pgid 20");
  ASSERT_NE(FindNode(g, "s1/g21"), nullptr);
  const MapEdge* e = FindEdge(g, "c1/g10", "s1/g20");
  ASSERT_NE(e, nullptr) << "the other members' edges to it remain";
  EXPECT_TRUE(e->client_seen);
  EXPECT_FALSE(e->server_seen);
  EXPECT_EQ(FindNode(g, "ext:198.51.100.7"), nullptr) << "only s1 knew that client";
  auto s1 = std::find_if(g.members.begin(), g.members.end(),
                         [](const MapMember& m) { return m.name == "s1"; });
  ASSERT_NE(s1, g.members.end());
  EXPECT_FALSE(s1->answered);
  EXPECT_EQ(s1->error, "no answer from s1 in 2s");
}

TEST_F(MapMerge, AnUnreachableMemberWithoutOwnersIsOneNodeHoldingItsEndpoints) {
  CommitAll();
  std::vector<LookMember> members = Members();
  for (LookMember& m : members)
    if (m.name == "s1") m.owners.clear();
  std::vector<MemberAnswer> answers{Answer("c1"), {"s1", Unavailable("connection refused")}};
  MapGraph g = MergeMap(members, answers, GroupBy::kWorkload, TimeWindow{});
  const MapNode* n = FindNode(g, "s1/unreachable");
  ASSERT_NE(n, nullptr) << Ids(g);
  EXPECT_EQ(n->status, LookStatus::kUnreachable);
  EXPECT_EQ(n->endpoints.size(), 2u);
  EXPECT_NE(FindEdge(g, "c1/g10", "s1/unreachable"), nullptr);
  // Members never asked (no answer at all) are marked too.
  auto be1 = std::find_if(g.members.begin(), g.members.end(),
                          [](const MapMember& m) { return m.name == "be1"; });
  ASSERT_NE(be1, g.members.end());
  EXPECT_FALSE(be1->answered);
  EXPECT_EQ(be1->error, "alive: not asked");
}

TEST_F(MapMerge, AClientHostWithoutAMatchingFlowIsUnconfirmed) {
  CommitAll();
  MemberAnswer c1 = Answer("c1");
  ASSERT_TRUE(c1.map.ok());
  // c1 answered, but none of its processes has the flow s1 saw.
  std::erase_if(c1.map->entries, [](const MapEntry& e) { return e.process.comm == "curl"; });
  MapGraph g = MergeMap(Members(), {c1, Answer("s1")}, GroupBy::kWorkload, TimeWindow{});
  const MapNode* n = FindNode(g, "c1/unconfirmed:10.0.0.1");
  ASSERT_NE(n, nullptr) << Ids(g);
  EXPECT_EQ(n->status, LookStatus::kUnconfirmed);
  const MapEdge* e = FindEdge(g, n->id, "s1/g20");
  ASSERT_NE(e, nullptr);
  EXPECT_TRUE(e->server_seen);
  EXPECT_FALSE(e->client_seen);
  EXPECT_EQ(e->stats.connections, 20u) << "the server side's counts";
}

TEST_F(MapMerge, AClientOnAMemberThatDidNotAnswerComesFromItsUnreachableNode) {
  MapGraph g = Merge({"c1"});
  const MapEdge* e = FindEdge(g, "c1/unreachable", "s1/g20");
  ASSERT_NE(e, nullptr) << Ids(g);
  EXPECT_TRUE(e->server_seen);
  EXPECT_EQ(FindNode(g, "c1/unreachable")->status, LookStatus::kUnreachable);
}

// A live member at `addr` with its table in, for merges written by hand.
LookMember LiveMember(const char* name, const char* addr) {
  LookMember m;
  m.name = name;
  m.address = std::string(addr) + ":7946";
  m.state = "alive";
  m.addresses = {A(addr)};
  return m;
}

TEST(MapMergeByHand, LoopbackStaysOnItsMemberAndBothEndsAreOneEdge) {
  auto entry = [](uint32_t pid, const char* comm) {
    MapEntry e;
    e.process.pid = pid;
    e.process.pgid = pid;
    e.process.comm = comm;
    return e;
  };
  FlowStats three;
  three.connections = 3;
  FlowStats five;
  five.connections = 5;
  MemberMap h1, h2;
  MapEntry app = entry(1, "app"), redis = entry(2, "redis");
  app.dependencies.push_back({E("127.0.0.1:6379"), three, {}});
  redis.endpoints = {E("127.0.0.1:6379")};
  redis.clients.push_back({A("127.0.0.1"), five, E("127.0.0.1:6379")});
  h1.entries = {app, redis};
  MapEntry redis2 = entry(7, "redis");  // the same loopback listener on another host
  redis2.endpoints = {E("127.0.0.1:6379")};
  h2.entries = {redis2};
  MapGraph g = MergeMap({LiveMember("h1", "10.0.0.1"), LiveMember("h2", "10.0.0.2")},
                        {{"h1", h1}, {"h2", h2}}, GroupBy::kPgid, TimeWindow{});
  ASSERT_EQ(g.edges.size(), 1u);
  const MapEdge& e = g.edges[0];
  EXPECT_EQ(e.from, "h1/g1");
  EXPECT_EQ(e.to, "h1/g2");
  EXPECT_TRUE(e.client_seen && e.server_seen);
  EXPECT_EQ(e.stats.connections, 3u) << "the client side's counts";
}

TEST(MapMergeByHand, AMembersOwnMeshdIsDrawnOnlyWhenSomethingCalledIt) {
  auto meshd = [](uint32_t pid, const char* at) {
    MapEntry e;
    e.process.pid = pid;
    e.process.pgid = pid;
    e.process.comm = "meshd";
    e.agent = true;
    e.endpoints = {E(at)};
    return e;
  };
  MapEntry browser;
  browser.process.pid = 9;
  browser.process.pgid = 9;
  browser.process.comm = "chromium";
  FlowStats two;
  two.connections = 2;
  browser.dependencies.push_back({E("10.0.0.1:8080"), two, {}});
  MemberMap h1, h2;
  h1.entries = {meshd(100, "10.0.0.1:8080"), meshd(100, "10.0.0.1:7946")};
  h2.entries = {meshd(200, "10.0.0.2:7946")};
  MapGraph quiet = MergeMap({LiveMember("h1", "10.0.0.1"), LiveMember("h2", "10.0.0.2")},
                            {{"h1", h1}, {"h2", h2}}, GroupBy::kPgid, TimeWindow{});
  EXPECT_TRUE(quiet.nodes.empty()) << "no workload of either host: only their meshd";
  h2.entries.push_back(browser);
  MapGraph called = MergeMap({LiveMember("h1", "10.0.0.1"), LiveMember("h2", "10.0.0.2")},
                             {{"h1", h1}, {"h2", h2}}, GroupBy::kPgid, TimeWindow{});
  ASSERT_EQ(called.edges.size(), 1u);
  EXPECT_EQ(called.edges[0].to, "h1/g100") << "the page's meshd, called by a browser";
  ASSERT_NE(FindNode(called, "h1/g100"), nullptr);
  EXPECT_EQ(FindNode(called, "h2/g200"), nullptr);
}

TEST(MapMergeByHand, AnAddressNoTableClaimsIsUnsyncedWhileATableIsMissing) {
  LookMember a;
  a.name = "a";
  a.address = "10.0.0.1:7946";
  a.addresses = {A("10.0.0.1")};
  LookMember late = a;
  late.name = "late";
  late.address = "10.0.0.2:7946";
  late.addresses = {};
  late.synced = false;
  MapEntry e;
  e.process.pid = 1;
  e.dependencies.push_back({E("10.0.0.77:80"), {}, {}});
  MemberMap m;
  m.entries = {e};
  MapGraph g = MergeMap({a, late}, {{"a", m}, {"late", MemberMap{}}}, GroupBy::kPid, TimeWindow{});
  const MapNode* n = FindNode(g, "ext:10.0.0.77:80");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->status, LookStatus::kUnsynced);
  EXPECT_NE(n->status_detail.find("late"), std::string::npos);
}

TEST_F(MapMerge, CutByHostWorkloadAndDepth) {
  MapGraph g = Merge();
  MapGraph host = CutMap(g, "s1", "", 0);
  EXPECT_EQ(Ids(host), "s1/g20 s1/g21 ");
  EXPECT_TRUE(host.edges.empty());
  EXPECT_EQ(host.members.size(), g.members.size());

  MapGraph nginx = CutMap(g, "", "nginx", 1);
  EXPECT_EQ(Ids(nginx), "c1/g10 d1/g30 ");
  ASSERT_EQ(nginx.edges.size(), 1u);
  MapGraph two = CutMap(g, "", "nginx", 2);
  EXPECT_NE(FindNode(two, "s1/g20"), nullptr) << "two edges away, through curl";
  EXPECT_EQ(FindNode(two, "ext:198.51.100.7"), nullptr) << "three edges away";

  MapGraph by_endpoint = CutMap(g, "", "10.0.0.9:8000", 0);
  EXPECT_EQ(Ids(by_endpoint), "b1/lb:10.0.0.9:8000 ");
  MapGraph both = CutMap(g, "c1", "wrk", 0);
  EXPECT_EQ(Ids(both), "c1/g11 ");

  MapGraph none = CutMap(g, "", "foo", 3);
  EXPECT_TRUE(none.nodes.empty());
  EXPECT_TRUE(none.edges.empty());
  EXPECT_EQ(CutMiss(g, none, "", "foo").rfind("no node matches --workload foo (of 10 nodes", 0),
            0u);
  EXPECT_EQ(CutMiss(g, nginx, "", "nginx"), "");
  EXPECT_EQ(CutMap(g, "", "", 0).nodes.size(), g.nodes.size()) << "no cut: the whole map";
}

}  // namespace
}  // namespace flowmesh::maptest
