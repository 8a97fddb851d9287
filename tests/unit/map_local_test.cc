// LocalQuerier::Map against real stores: groups with their clients and
// dependencies, a listener nobody called, a balancer's front, grouping, and
// the caps that keep an answer under the wire's limit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "node/look/look_wire.h"
#include "node/look/map_wire.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh::maptest {
namespace {

const MapEntry* ByComm(const MemberMap& m, const std::string& comm) {
  for (const MapEntry& e : m.entries)
    if (!e.balancer && e.process.comm == comm) return &e;
  return nullptr;
}

using MapLocal = MapMesh;

TEST_F(MapLocal, ServerGroupsHaveClientsAndEndpointsEvenWithoutFlows) {
  CommitAll();
  Result<MemberMap> m = nodes_["s1"]->querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_FALSE(m->truncated);
  const MapEntry* srv = ByComm(*m, "fmsrv");
  ASSERT_NE(srv, nullptr);
  EXPECT_EQ(m->entries[0].process.comm, "fmsrv");  // busiest first
  EXPECT_EQ(srv->endpoints, std::vector<Endpoint>{E("0.0.0.0:8080")});
  ASSERT_EQ(srv->clients.size(), 2u);
  EXPECT_EQ(srv->stats.active(), 22u);
  EXPECT_TRUE(srv->dependencies.empty());
  const MapEntry* idle = ByComm(*m, "idle");
  ASSERT_NE(idle, nullptr) << "a listener nobody called is a node of the map";
  EXPECT_EQ(idle->endpoints, std::vector<Endpoint>{E("0.0.0.0:9999")});
  EXPECT_EQ(idle->stats.active(), 0u);
}

TEST_F(MapLocal, ThisMeshdsOwnListenerIsMarkedTheAgent) {
  nodes_["s1"]->Listen(1, "0.0.0.0", 7946, static_cast<uint32_t>(getpid()), "meshd");
  CommitAll();
  Result<MemberMap> m = nodes_["s1"]->querier->Map(TimeWindow{}, GroupBy::kPgid);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const MapEntry* self = ByComm(*m, "meshd");
  ASSERT_NE(self, nullptr);
  EXPECT_TRUE(self->agent);
  EXPECT_FALSE(ByComm(*m, "fmsrv")->agent);
  EXPECT_FALSE(ByComm(*m, "idle")->agent);
}

TEST_F(MapLocal, ClientGroupsKeepWhatTheyDialled) {
  CommitAll();
  Result<MemberMap> m = nodes_["c1"]->querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok()) << m.status().message();
  ASSERT_EQ(m->entries.size(), 2u);
  const MapEntry* curl = ByComm(*m, "curl");
  ASSERT_NE(curl, nullptr);
  ASSERT_EQ(curl->dependencies.size(), 2u);
  const DependencyEdge& vip = curl->dependencies[0];
  EXPECT_EQ(vip.remote, E("10.0.0.2:8080"));
  EXPECT_EQ(vip.via, E("10.0.250.1:80"));
  EXPECT_EQ(vip.stats.connections, 20u);
  EXPECT_EQ(curl->dependencies[1].remote, E("10.0.0.3:9090"));
  EXPECT_EQ(curl->dependencies[1].via.port, 0);
  EXPECT_TRUE(curl->endpoints.empty());
}

TEST_F(MapLocal, PublishedPortClientsKeepTheFront) {
  CommitAll();
  Result<MemberMap> m = nodes_["d1"]->querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok());
  const MapEntry* nginx = ByComm(*m, "nginx");
  ASSERT_NE(nginx, nullptr);
  ASSERT_EQ(nginx->clients.size(), 1u);
  EXPECT_EQ(nginx->clients[0].endpoint, E("10.0.0.3:9090"));
  EXPECT_EQ(nginx->clients[0].addr, A("10.0.0.1"));
}

TEST_F(MapLocal, ABalancerIsOneEntryPerFrontWithBackendsAsDependencies) {
  CommitAll();
  Result<MemberMap> m = nodes_["b1"]->querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->entries.size(), 1u);
  const MapEntry& lb = m->entries[0];
  EXPECT_TRUE(lb.balancer);
  EXPECT_EQ(lb.endpoints, std::vector<Endpoint>{E("10.0.0.9:8000")});
  ASSERT_EQ(lb.dependencies.size(), 2u);
  EXPECT_EQ(lb.dependencies[0].remote, E("10.0.0.4:8000"));
  EXPECT_EQ(lb.dependencies[0].stats.connections, 6u);
  EXPECT_EQ(lb.dependencies[1].remote, E("10.0.0.5:8000"));
  ASSERT_EQ(lb.clients.size(), 1u);
  EXPECT_EQ(lb.clients[0].addr, A("10.0.0.1"));
  EXPECT_EQ(lb.clients[0].endpoint, E("10.0.0.9:8000"));
  EXPECT_EQ(lb.stats.connections, 10u);
}

TEST_F(MapLocal, AnIdleBalancerFrontIsStillAnEntry) {
  Node& b1 = *nodes_["b1"];
  b1.batch = Batch{};  // no traffic, only the live alias
  Result<MemberMap> m = b1.querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->entries.size(), 1u);
  EXPECT_TRUE(m->entries[0].balancer);
  EXPECT_TRUE(m->entries[0].dependencies.empty());
}

TEST_F(MapLocal, GroupingFollowsTheQuery) {
  Node& s1 = *nodes_["s1"];
  // A worker of fmsrv's process group, with its own connections.
  s1.Process(22, "fmsrv", /*pgid=*/20);
  s1.Flow(Key(Direction::kPassive, 1, 22, "10.0.0.2", 8080, "10.0.0.1", 40010), 5);
  CommitAll();
  Result<MemberMap> by_pgid = s1.querier->Map(TimeWindow{}, GroupBy::kPgid);
  ASSERT_TRUE(by_pgid.ok());
  EXPECT_EQ(by_pgid->entries.size(), 2u);  // fmsrv's group, idle
  EXPECT_EQ(by_pgid->entries[0].stats.connections, 27u);
  EXPECT_EQ(by_pgid->entries[0].process.pid, 20u) << "the group's leader represents it";
  Result<MemberMap> by_pid = s1.querier->Map(TimeWindow{}, GroupBy::kPid);
  ASSERT_TRUE(by_pid.ok());
  EXPECT_EQ(by_pid->entries.size(), 3u);
}

TEST_F(MapLocal, AWindowWithoutTheTrafficKeepsOnlyListeners) {
  CommitAll();
  TimeWindow later{kT0 + 10 * flowmesh::testing::kMin, kT0 + 20 * flowmesh::testing::kMin};
  Result<MemberMap> m = nodes_["c1"]->querier->Map(later, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->entries.empty());
  Result<MemberMap> s = nodes_["s1"]->querier->Map(later, GroupBy::kWorkload);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->entries.size(), 2u);  // both still listen
  for (const MapEntry& e : s->entries) EXPECT_TRUE(e.clients.empty());
}

TEST_F(MapLocal, TooManyGroupsKeepsTheBusiestAndSaysTruncated) {
  Node& c1 = *nodes_["c1"];
  const uint32_t n = kMaxMapEntries + 50;
  for (uint32_t i = 0; i < n; i++) {
    c1.Process(1000 + i, "many");
    c1.Flow(Key(Direction::kActive, 1, 1000 + i, "10.0.0.1",
                static_cast<uint16_t>(1024 + i % 60000), "10.0.0.2", 8080),
            1 + (i == 7 ? 1000 : 0));
  }
  CommitAll();
  Result<MemberMap> m = c1.querier->Map(TimeWindow{}, GroupBy::kPid);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->truncated);
  EXPECT_EQ(m->entries.size(), kMaxMapEntries);
  EXPECT_EQ(m->entries[0].process.pid, 1007u) << "busiest first";
}

TEST_F(MapLocal, TooManyEdgesFitTheCapAndTheWire) {
  Node& c1 = *nodes_["c1"];
  c1.Process(99, "scanner");
  const uint32_t n = kMaxMemberMapEdges + 100;
  for (uint32_t i = 0; i < n; i++) {
    std::string ip = "10.9." + std::to_string(i / 250) + "." + std::to_string(1 + i % 250);
    // Every field of the stats set: the wire's worst case per edge.
    FlowKey k = Key(Direction::kActive, 1, 99, "10.0.0.1", 1024, ip.c_str(), 65000, "10.0.0.2:1");
    FlowDelta f;
    f.bucket_ns = kT0;
    f.key = k;
    f.stats = FlowStats{~0ull >> 8,     ~0ull >> 8, 0,          ~0ull >> 8, ~0ull >> 8, ~0ull >> 8,
                        ~0ull >> 8,     ~0ull >> 8, ~0ull >> 8, ~0ull >> 8, ~0u,        kT0 + kSec,
                        kT0 + 2 * kSec, 0};
    c1.batch.flows.push_back(f);
  }
  CommitAll();
  Result<MemberMap> m = c1.querier->Map(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->truncated);
  size_t edges = 0;
  for (const MapEntry& e : m->entries) edges += e.clients.size() + e.dependencies.size();
  EXPECT_EQ(edges, kMaxMemberMapEdges);
  Result<std::vector<uint8_t>> bytes = EncodeMapAnswer(m);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_LT(bytes->size(), kMaxQueryBytes);
  Result<MemberMap> back = DecodeMapAnswer(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->truncated);
  size_t back_edges = 0;
  for (const MapEntry& e : back->entries) back_edges += e.dependencies.size();
  EXPECT_EQ(back_edges, kMaxMemberMapEdges) << "the cap fits the wire whole: nothing more is lost";
  std::printf("map answer at the edge cap: %zu edges, %zu bytes (cap %zu)\n", edges, bytes->size(),
              kMaxQueryBytes);
}

}  // namespace
}  // namespace flowmesh::maptest
