// LookService::RunMap over real stores: each member answered by its own
// LookService through the real wire and the real bounded scatter-gather; a
// silent member, a dead one and an older meshd are marked, and counted.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "node/look/look_service.h"
#include "node/look/look_wire.h"
#include "node/mesh/scatter_gather.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh::maptest {
namespace {

class MapService : public MapMesh {
 protected:
  void SetUp() override {
    MapMesh::SetUp();
    CommitAll();
    for (auto& [name, n] : nodes_)
      services_[n->Member().address] =
          std::make_unique<LookService>(*n->store, n->ServiceOptions());
  }

  std::unique_ptr<LookService> Asker(uint64_t budget = kMaxMapAnswerBytes) {
    Node& c1 = *nodes_["c1"];
    LookServiceOptions o = c1.ServiceOptions();
    o.map_answer_budget = budget;
    o.members = [this]() -> Result<std::vector<LookMember>> {
      std::vector<LookMember> out;
      for (auto& [name, n] : nodes_) {
        out.push_back(n->Member());
        if (name == "be2") out.back().live = false, out.back().state = "dead";
      }
      return out;
    };
    o.scatter = [this](std::vector<MemberQuery> queries, int64_t timeout_ns,
                       const std::function<void()>& meanwhile, QueryLimits limits) {
      using Gather = mesh::ScatterGather<std::vector<uint8_t>, std::vector<uint8_t>>;
      std::vector<Gather::Target> targets;
      for (MemberQuery& q : queries) targets.push_back({q.address, std::move(q.bytes)});
      auto send = [this](const std::string& to, std::vector<uint8_t> q, int64_t timeout,
                         Gather::Done done) {
        asked_++;
        if (to == nodes_["d1"]->Member().address) {
          // Silent: the transport times the exchange out, as meshd's does.
          std::thread([timeout, done] {
            std::this_thread::sleep_for(std::chrono::nanoseconds(timeout));
            done(Unavailable("exchange with 10.0.0.3:7946 timed out"));
          }).detach();
          return;
        }
        if (to == nodes_["b1"]->Member().address) return done(EncodeAnswers({}));  // older meshd
        std::thread([svc = services_.at(to).get(), q = std::move(q), done] {
          done(svc->Answer(q));
        }).detach();
      };
      return Gather::Run(
          std::move(targets), send, timeout_ns, meanwhile,
          mesh::ScatterLimits{limits.max_in_flight, limits.total_timeout_ns, limits.latency_ns});
    };
    return std::make_unique<LookService>(*c1.store, o);
  }

  std::map<std::string, std::unique_ptr<LookService>> services_;
  std::atomic<int> asked_{0};
};

TEST_F(MapService, AsksLiveMembersMergesAndMarksTheRest) {
  std::unique_ptr<LookService> svc = Asker();
  MapQuery q;
  q.concurrency = 2;
  q.hop_timeout_ns = 200'000'000;
  q.timeout_ns = 1'000'000'000;
  Result<MapResult> r = svc->RunMap(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(asked_.load(), 4) << "s1, d1, be1, b1: not c1 (here) nor be2 (dead)";
  std::map<std::string, MapMember> by_name;
  for (const MapMember& m : r->graph.members) by_name[m.name] = m;
  ASSERT_EQ(by_name.size(), 6u);
  EXPECT_TRUE(by_name["c1"].answered);
  EXPECT_TRUE(by_name["s1"].answered);
  EXPECT_GT(by_name["s1"].answer_bytes, 0u);
  EXPECT_GT(by_name["s1"].latency_ns, 0);
  EXPECT_FALSE(by_name["d1"].answered);
  EXPECT_NE(by_name["d1"].error.find("timed out"), std::string::npos) << by_name["d1"].error;
  EXPECT_EQ(by_name["be2"].error, "dead: not asked");
  EXPECT_EQ(by_name["b1"].error.rfind("meshd without map", 0), 0u) << by_name["b1"].error;

  bool vip = false;
  for (const MapEdge& e : r->graph.edges)
    if (e.from == "c1/g10" && e.to == "s1/g20") vip = e.client_seen && e.server_seen;
  EXPECT_TRUE(vip);
  EXPECT_EQ(svc->maps(), 1u);
  std::map<std::string, uint64_t> counts;
  for (const Refusal& u : svc->map_unanswered()) counts[u.reason] = u.count;
  EXPECT_EQ(counts["member_gone"], 1u);
  EXPECT_EQ(counts["no_map"], 1u);
  EXPECT_EQ(counts["timeout"], 1u);
  EXPECT_EQ(svc->latency().map.Snapshot().count, 1u);
}

TEST_F(MapService, ABaselineIsComparedAndACutThatMissesSaysSo) {
  std::unique_ptr<LookService> svc = Asker();
  MapQuery q;
  q.hop_timeout_ns = 100'000'000;
  q.timeout_ns = 1'000'000'000;
  q.baseline = TimeWindow{0, kT0 - flowmesh::testing::kMin};  // before any traffic
  Result<MapResult> r = svc->RunMap(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->baseline.has_value());
  EXPECT_TRUE(r->baseline->edges.empty());
  ASSERT_FALSE(r->changes.empty());
  for (const MapEdgeChange& c : r->changes) EXPECT_EQ(c.kind, MapChangeKind::kAppeared);
  EXPECT_EQ(r->changes.size(), r->graph.edges.size());

  MapQuery miss;
  miss.hop_timeout_ns = 100'000'000;
  miss.workload = "no-such-thing";
  Result<MapResult> none = svc->RunMap(miss);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message().rfind("no node matches --workload no-such-thing", 0), 0u)
      << none.status().message();
}

// Past the map's byte budget a member's answer is not read: that member is
// truncated and says why; this node's own part is read all the same.
TEST_F(MapService, AnswersPastTheBudgetAreTruncatedUnread) {
  std::unique_ptr<LookService> svc = Asker(1);
  MapQuery q;
  q.hop_timeout_ns = 100'000'000;
  q.timeout_ns = 1'000'000'000;
  Result<MapResult> r = svc->RunMap(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::map<std::string, MapMember> by_name;
  for (const MapMember& m : r->graph.members) by_name[m.name] = m;
  EXPECT_TRUE(by_name["s1"].truncated);
  EXPECT_GT(by_name["s1"].answer_bytes, 0u);
  EXPECT_EQ(by_name["s1"].error.rfind("its answer of ", 0), 0u) << by_name["s1"].error;
  EXPECT_NE(by_name["s1"].error.find("was not read"), std::string::npos);
  EXPECT_FALSE(by_name["c1"].truncated);
  for (const MapNode& n : r->graph.nodes) EXPECT_NE(n.host, "s1") << n.id << ": drawn unread";
}

// --workload wrk --compare-to: wrk is gone from this window (here: a window
// before any traffic) but was in the baseline; its edges disappeared.
TEST_F(MapService, AWorkloadOnlyTheBaselineHasIsFoundAndItsEdgesDisappeared) {
  std::unique_ptr<LookService> svc = Asker();
  MapQuery q;
  q.hop_timeout_ns = 100'000'000;
  q.timeout_ns = 1'000'000'000;
  q.window = TimeWindow{0, kT0 - flowmesh::testing::kMin};
  q.baseline = TimeWindow{};
  q.workload = "wrk";
  Result<MapResult> r = svc->RunMap(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->graph.nodes.empty());
  ASSERT_TRUE(r->baseline.has_value());
  ASSERT_FALSE(r->changes.empty());
  for (const MapEdgeChange& c : r->changes) {
    EXPECT_EQ(c.kind, MapChangeKind::kDisappeared);
    EXPECT_NE(std::find_if(r->baseline->nodes.begin(), r->baseline->nodes.end(),
                           [&](const MapNode& n) { return n.id == c.edge.to; }),
              r->baseline->nodes.end())
        << c.edge.to;
  }
}

// The transport times a query out itself ("timed out", as d1 above); an
// empty slot means its completion never came, and the member says that.
TEST_F(MapService, AQueryThatNeverCompletedSaysSo) {
  Node& c1 = *nodes_["c1"];
  LookServiceOptions o = c1.ServiceOptions();
  o.members = [this]() -> Result<std::vector<LookMember>> {
    return std::vector<LookMember>{nodes_["c1"]->Member(), nodes_["s1"]->Member()};
  };
  o.scatter = [](std::vector<MemberQuery> queries, int64_t, const std::function<void()>& here,
                 QueryLimits) {
    here();
    return QueryReplies(queries.size());
  };
  LookService svc(*c1.store, o);
  MapQuery q;
  q.hop_timeout_ns = 2'000'000'000;
  Result<MapResult> r = svc.RunMap(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const MapMember& m : r->graph.members)
    if (m.name == "s1")
      EXPECT_EQ(m.error,
                "no answer from s1: its query never completed (not answered, not timed out, not "
                "failed) within the scatter's 2s and its grace second");
}

// meshctl's and the page's maps share one bound: two gather at once, a
// third waits a second and is refused, counted; 4096 queries out is cut to 64.
TEST_F(MapService, AtMostTwoMapsGatherAtOnceWhoeverAsks) {
  Node& c1 = *nodes_["c1"];
  LookServiceOptions o = c1.ServiceOptions();
  std::atomic<int> inside{0};
  std::atomic<bool> go{false};
  std::atomic<size_t> in_flight{0};
  o.members = [this]() -> Result<std::vector<LookMember>> {
    return std::vector<LookMember>{nodes_["c1"]->Member(), nodes_["s1"]->Member()};
  };
  o.scatter = [&](std::vector<MemberQuery> queries, int64_t, const std::function<void()>& here,
                  QueryLimits limits) {
    in_flight = limits.max_in_flight;
    here();
    inside++;
    while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return QueryReplies(queries.size());
  };
  LookService svc(*c1.store, o);
  MapQuery q;
  q.concurrency = 4096;
  std::vector<std::thread> two;
  for (int i = 0; i < 2; i++) two.emplace_back([&] { EXPECT_TRUE(svc.RunMap(q).ok()); });
  while (inside < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Asynchronous so that a third map let through (it would block in the
  // scatter like the others) fails the test rather than hangs it.
  auto running = std::async(std::launch::async, [&] { return svc.RunMap(q); });
  const bool returned = running.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  go = true;
  Result<MapResult> third = running.get();
  for (std::thread& t : two) t.join();
  EXPECT_TRUE(returned) << "the third map was let through";
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(third.status().message().find("2 maps are already being drawn from"), std::string::npos)
      << third.status().message();
  EXPECT_EQ(svc.maps_refused(), 1u);
  EXPECT_EQ(in_flight.load(), static_cast<size_t>(kMaxMapMemberQueries));
  EXPECT_TRUE(svc.RunMap(q).ok()) << "a slot is free again";
}

TEST_F(MapService, WithoutAMeshTheMapIsThisNodeAlone) {
  Node& s1 = *nodes_["s1"];
  LookService alone(*s1.store, s1.ServiceOptions());
  Result<MapResult> r = alone.RunMap(MapQuery{});
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->graph.members.size(), 1u);
  EXPECT_TRUE(r->graph.members[0].answered);
  EXPECT_NE(std::find_if(r->graph.nodes.begin(), r->graph.nodes.end(),
                         [](const MapNode& n) { return n.id == "s1/g20"; }),
            r->graph.nodes.end());
}

}  // namespace
}  // namespace flowmesh::maptest
