// MergeMap's resolution of addresses several members share (a docker
// bridge, a VIP every node balances), of a published port a proxy also
// listens on, of a balancer doing DNAT without masquerade, and the label of
// an address a member has but nothing listens on. By hand: each case needs
// the members' answers exactly so.
#include <gtest/gtest.h>

#include <algorithm>

#include "node/look/map_merge.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh::maptest {
namespace {

LookMember Member(const char* name, std::vector<const char*> addrs) {
  LookMember m;
  m.name = name;
  m.address = std::string(addrs.front()) + ":7946";
  m.state = "alive";
  for (const char* a : addrs) m.addresses.push_back(A(a));
  return m;
}

MapEntry Proc(uint32_t pid, const char* comm, std::vector<const char*> listens = {}) {
  MapEntry e;
  e.process.pid = pid;
  e.process.pgid = pid;
  e.process.comm = comm;
  for (const char* at : listens) e.endpoints.push_back(E(at));
  return e;
}

FlowStats Conns(uint64_t n) {
  FlowStats s;
  s.connections = n;
  return s;
}

// Every edge as "from>to@endpoint", sorted: what two graphs drawing the same
// thing have in common.
std::string Edges(const MapGraph& g) {
  std::vector<std::string> out;
  for (const MapEdge& e : g.edges) out.push_back(e.from + ">" + e.to + "@" + e.endpoint.ToString());
  std::sort(out.begin(), out.end());
  std::string s;
  for (const std::string& e : out) s += e + " ";
  return s;
}

// Two docker hosts: the same bridge address, the same first container
// address, each with a redis and an app calling it.
TEST(MapResolve, EachHostsContainerCallsItsOwnOnASharedBridgeWhateverTheMembersOrder) {
  MemberMap a, b;
  for (MemberMap* m : {&a, &b}) {
    MapEntry app = Proc(10, "app"), redis = Proc(20, "redis", {"172.17.0.3:6379"});
    app.dependencies.push_back({E("172.17.0.3:6379"), Conns(3), {}});
    redis.clients.push_back({A("172.17.0.2"), Conns(3), E("172.17.0.3:6379")});
    m->entries = {app, redis};
  }
  const LookMember ma = Member("a", {"10.0.0.1", "172.17.0.1", "172.17.0.2"});
  const LookMember mb = Member("b", {"10.0.0.2", "172.17.0.1", "172.17.0.2"});
  std::string first;
  for (const auto& members : {std::vector<LookMember>{ma, mb}, std::vector<LookMember>{mb, ma}}) {
    for (const auto& answers : {std::vector<MemberAnswer>{{"a", a}, {"b", b}},
                                std::vector<MemberAnswer>{{"b", b}, {"a", a}}}) {
      MapGraph g = MergeMap(members, answers, GroupBy::kPgid, TimeWindow{});
      EXPECT_EQ(Edges(g), "a/g10>a/g20@172.17.0.3:6379 b/g10>b/g20@172.17.0.3:6379 ")
          << "members " << members[0].name << " first, answers " << answers[0].member << " first";
      for (const MapEdge& e : g.edges) EXPECT_TRUE(e.client_seen && e.server_seen) << e.from;
      if (first.empty()) first = Edges(g);
      EXPECT_EQ(Edges(g), first);
    }
  }
}

// kube-proxy on every node balances the same VIP (kube-ipvs0 gives every
// node its address): a client's connections went through its own node's
// rules, not to the VIP's first member nor to a wildcard listener there.
TEST(MapResolve, AVipEveryNodeBalancesIsTheReportersOwnBalancer) {
  MemberMap a, b;
  for (MemberMap* m : {&a, &b}) {
    MapEntry client = Proc(10, "curl");
    client.dependencies.push_back({E("10.96.0.10:80"), Conns(2), {}});
    MapEntry lb;
    lb.balancer = true;
    lb.endpoints = {E("10.96.0.10:80")};
    m->entries = {client, lb, Proc(30, "nginx", {"0.0.0.0:80"})};
  }
  const LookMember ma = Member("a", {"10.0.0.1", "10.96.0.10"});
  const LookMember mb = Member("b", {"10.0.0.2", "10.96.0.10"});
  for (const auto& members : {std::vector<LookMember>{ma, mb}, std::vector<LookMember>{mb, ma}}) {
    MapGraph g = MergeMap(members, {{"a", a}, {"b", b}}, GroupBy::kPgid, TimeWindow{});
    EXPECT_EQ(Edges(g),
              "a/g10>a/lb:10.96.0.10:80@10.96.0.10:80 "
              "b/g10>b/lb:10.96.0.10:80@10.96.0.10:80 ");
  }
}

// X -> VIP -> be1 with DNAT and no masquerade: the balancer reports X and
// its edge to be1; be1 reports X too. The same connections are one path,
// not a third edge from X straight to be1.
TEST(MapResolve, ABalancerWithoutMasqueradeIsThePathNotASecondEdge) {
  MapEntry lb;
  lb.balancer = true;
  lb.endpoints = {E("10.0.0.9:8000")};
  lb.clients.push_back({A("203.0.113.5"), Conns(4), E("10.0.0.9:8000")});
  lb.dependencies.push_back({E("10.0.0.4:8000"), Conns(4), {}});
  MapEntry server = Proc(40, "python3", {"0.0.0.0:8000"});
  server.clients.push_back({A("203.0.113.5"), Conns(4), E("10.0.0.4:8000")});
  MemberMap b1, be1;
  b1.entries = {lb};
  be1.entries = {server};
  MapGraph g = MergeMap({Member("b1", {"10.0.0.9"}), Member("be1", {"10.0.0.4"})},
                        {{"b1", b1}, {"be1", be1}}, GroupBy::kPgid, TimeWindow{});
  EXPECT_EQ(Edges(g),
            "b1/lb:10.0.0.9:8000>be1/g40@10.0.0.4:8000 "
            "ext:203.0.113.5>b1/lb:10.0.0.9:8000@10.0.0.9:8000 ");
  const MapEdge* to_backend = FindEdge(g, "b1/lb:10.0.0.9:8000", "be1/g40");
  ASSERT_NE(to_backend, nullptr);
  EXPECT_TRUE(to_backend->client_seen && to_backend->server_seen);
  EXPECT_EQ(to_backend->stats.connections, 4u);
}

// docker-proxy listens on 0.0.0.0:9090 and DNAT sends 10.0.0.3:9090 to the
// container: the container is who the client called.
TEST(MapResolve, APublishedPortIsItsContainersEvenWithAProxyOnThePort) {
  MapEntry client = Proc(10, "curl");
  client.dependencies.push_back({E("10.0.0.3:9090"), Conns(5), E("10.0.0.3:9090")});
  MapEntry proxy = Proc(20, "docker-proxy", {"0.0.0.0:9090"});
  MapEntry nginx = Proc(30, "nginx", {"172.18.0.2:80"});
  nginx.clients.push_back({A("10.0.0.1"), Conns(5), E("172.18.0.2:80")});
  MemberMap c1, d1;
  c1.entries = {client};
  d1.entries = {proxy, nginx};
  LookMember docker = Member("d1", {"10.0.0.3", "172.18.0.1"});
  docker.aliases.push_back({E("10.0.0.3:9090"), E("172.18.0.2:80"), false});
  MapGraph g = MergeMap({Member("c1", {"10.0.0.1"}), docker}, {{"c1", c1}, {"d1", d1}},
                        GroupBy::kPgid, TimeWindow{});
  EXPECT_NE(FindEdge(g, "c1/g10", "d1/g30"), nullptr) << Edges(g);
  EXPECT_EQ(FindEdge(g, "c1/g10", "d1/g20"), nullptr) << Edges(g);
}

TEST(MapResolve, AnExternalEndpointOnAMembersAddressNamesTheMember) {
  MapEntry client = Proc(10, "psql");
  client.dependencies.push_back({E("10.0.0.2:5432"), Conns(1), {}});
  MemberMap c1;
  c1.entries = {client};
  MapGraph g = MergeMap({Member("c1", {"10.0.0.1"}), Member("s1", {"10.0.0.2"})},
                        {{"c1", c1}, {"s1", MemberMap{}}}, GroupBy::kPgid, TimeWindow{});
  const MapNode* n = FindNode(g, "ext:10.0.0.2:5432");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->status_detail,
            "member s1 has this address but nothing there listened on port 5432 in the window");
}

}  // namespace
}  // namespace flowmesh::maptest
