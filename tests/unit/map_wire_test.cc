// The map's member query and answer on the wire: round trips, an older
// meshd's answer, and malformed, truncated, random and oversized bytes, which
// must come back as errors, never crashes. LookService answers both kinds.
#include "node/look/map_wire.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <random>

#include "node/look/look_service.h"
#include "node/look/look_wire.h"
#include "schema/query.capnp.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh::maptest {
namespace {

MemberMap Sample() {
  MemberMap m;
  MapEntry e;
  e.process.pid = 20;
  e.process.pgid = 20;
  e.process.comm = "fmsrv";
  e.process.workload.kind = WorkloadKind::kUnit;
  e.process.workload.unit = "fmsrv.service";
  e.stats.connections = 5;
  e.stats.bytes_tx = 500;
  e.endpoints = {E("0.0.0.0:8080")};
  e.clients = {ClientEdge{A("10.0.0.1"), e.stats, E("10.0.0.2:8080")}};
  e.dependencies = {DependencyEdge{E("10.0.0.3:5432"), e.stats, E("10.96.0.5:5432")},
                    DependencyEdge{E("[2001:db8::1]:443"), e.stats, {}}};
  m.entries.push_back(e);
  MapEntry lb;
  lb.balancer = true;
  lb.endpoints = {E("10.0.0.9:80")};
  lb.dependencies = {DependencyEdge{E("10.0.0.4:80"), e.stats, {}}};
  m.entries.push_back(lb);
  m.truncated = true;
  return m;
}

std::vector<uint8_t> Flat(capnp::MallocMessageBuilder& message) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return {bytes.begin(), bytes.end()};
}

TEST(MapWire, QueryRoundTripsAndALookQueryIsNoMapQuery) {
  TimeWindow w{100, 200};
  Result<std::vector<uint8_t>> q = EncodeMapQuery(w, GroupBy::kPid);
  ASSERT_TRUE(q.ok());
  Result<std::optional<MapAsk>> back = DecodeMapQuery(*q);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ((*back)->window.since_ns, 100);
  EXPECT_EQ((*back)->window.until_ns, 200);
  EXPECT_EQ((*back)->group_by, GroupBy::kPid);

  QueryBatch look;
  look.questions.push_back(LookQuestion{});
  Result<std::vector<uint8_t>> lq = EncodeQuery(look);
  ASSERT_TRUE(lq.ok());
  Result<std::optional<MapAsk>> none = DecodeMapQuery(*lq);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  Result<std::vector<uint8_t>> backwards = EncodeMapQuery(TimeWindow{200, 100}, GroupBy::kPid);
  ASSERT_TRUE(backwards.ok());
  EXPECT_FALSE(DecodeMapQuery(*backwards).ok());
}

TEST(MapWire, AnswerRoundTrips) {
  MemberMap m = Sample();
  Result<std::vector<uint8_t>> bytes = EncodeMapAnswer(m);
  ASSERT_TRUE(bytes.ok());
  Result<MemberMap> back = DecodeMapAnswer(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  ASSERT_EQ(back->entries.size(), 2u);
  EXPECT_TRUE(back->truncated);
  const MapEntry& e = back->entries[0];
  EXPECT_EQ(e.process, m.entries[0].process);
  EXPECT_EQ(e.stats, m.entries[0].stats);
  EXPECT_EQ(e.endpoints, m.entries[0].endpoints);
  ASSERT_EQ(e.clients.size(), 1u);
  EXPECT_EQ(e.clients[0].addr, A("10.0.0.1"));
  EXPECT_EQ(e.clients[0].endpoint, E("10.0.0.2:8080"));
  ASSERT_EQ(e.dependencies.size(), 2u);
  EXPECT_EQ(e.dependencies[0].via, E("10.96.0.5:5432"));
  EXPECT_EQ(e.dependencies[1].remote, E("[2001:db8::1]:443"));
  EXPECT_EQ(e.dependencies[1].via.port, 0);
  EXPECT_TRUE(back->entries[1].balancer);
  EXPECT_EQ(back->entries[1].process.pid, 0u);
  EXPECT_FALSE(e.agent);
  m.entries[0].agent = true;
  Result<MemberMap> agent = DecodeMapAnswer(*EncodeMapAnswer(m));
  ASSERT_TRUE(agent.ok());
  EXPECT_TRUE(agent->entries[0].agent) << "a member's own meshd is said on the wire";
}

TEST(MapWire, AnErrorTravelsAsItsText) {
  Result<std::vector<uint8_t>> bytes =
      EncodeMapAnswer(Result<MemberMap>(Unavailable("refused: s1 is busy")));
  ASSERT_TRUE(bytes.ok());
  Result<MemberMap> back = DecodeMapAnswer(*bytes);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(), "refused: s1 is busy");
  EXPECT_EQ(UnansweredOf(back.status()), Unanswered::kRefused);
}

// A peer's error goes into each of its nodes' status: the asker keeps 256
// bytes of it, whatever the peer sent.
TEST(MapWire, APeersErrorIsCutAtDecode) {
  Result<std::vector<uint8_t>> bytes =
      EncodeMapAnswer(Result<MemberMap>(Unavailable(std::string(3000, 'e'))));
  ASSERT_TRUE(bytes.ok());
  Result<MemberMap> back = DecodeMapAnswer(*bytes);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message(), std::string(kMaxMapPeerErrorBytes, 'e'));
}

TEST(MapWire, AnOlderMeshdsEmptyLookIsAMeshdWithoutMap) {
  // What a meshd of before answers: the map query read as a look without questions.
  Result<std::vector<uint8_t>> old = EncodeAnswers({});
  ASSERT_TRUE(old.ok());
  Result<MemberMap> back = DecodeMapAnswer(*old);
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().message().rfind(kNoMapError, 0), 0u) << back.status().message();
}

TEST(MapWire, TruncatedAndRandomBytesAreErrorsNeverCrashes) {
  Result<std::vector<uint8_t>> bytes = EncodeMapAnswer(Sample());
  ASSERT_TRUE(bytes.ok());
  int errors = 0;
  for (size_t n = 0; n < bytes->size(); n++) {
    std::vector<uint8_t> cut(bytes->begin(), bytes->begin() + n);
    if (!DecodeMapAnswer(cut).ok()) errors++;
    (void)DecodeMapQuery(cut);
  }
  EXPECT_EQ(errors, static_cast<int>(bytes->size())) << "every prefix is malformed";
  std::mt19937 rng(16);
  for (int i = 0; i < 20000; i++) {
    std::vector<uint8_t> junk(8 * (1 + rng() % 64));
    for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
    if (i % 2 == 0) std::copy_n(bytes->begin(), std::min<size_t>(16, junk.size()), junk.begin());
    (void)DecodeMapAnswer(junk);
    (void)DecodeMapQuery(junk);
  }
  // Flipped bytes of a real answer: each decodes or fails cleanly.
  for (size_t i = 0; i < bytes->size(); i++) {
    std::vector<uint8_t> flipped = *bytes;
    flipped[i] ^= 0xff;
    (void)DecodeMapAnswer(flipped);
  }
}

TEST(MapWire, OversizedAndOverlongAnswersAreRefused) {
  std::vector<uint8_t> huge(kMaxQueryBytes + 8, 0);
  EXPECT_FALSE(DecodeMapAnswer(huge).ok());

  capnp::MallocMessageBuilder many;
  many.initRoot<schema::query::NodeAnswer>().initMap().initEntries(kMaxMapEntries + 1);
  Result<MemberMap> r = DecodeMapAnswer(Flat(many));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("entries, over the cap"), std::string::npos);

  capnp::MallocMessageBuilder edges;
  auto list = edges.initRoot<schema::query::NodeAnswer>().initMap().initEntries(2);
  list[0].initDependencies(kMaxMemberMapEdges / 2 + 1);
  list[1].initClients(kMaxMemberMapEdges / 2 + 1);
  r = DecodeMapAnswer(Flat(edges));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("edges and endpoints, over the cap"), std::string::npos);

  // Endpoints count: an answer of listeners only may not flood the merge.
  capnp::MallocMessageBuilder listeners;
  listeners.initRoot<schema::query::NodeAnswer>().initMap().initEntries(1)[0].initEndpoints(
      kMaxMemberMapEdges + 1);
  r = DecodeMapAnswer(Flat(listeners));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("edges and endpoints"), std::string::npos);

  // A list that claims more elements than the bytes hold: the traversal
  // limit stops it before anything is allocated for them.
  capnp::MallocMessageBuilder liar;
  liar.initRoot<schema::query::NodeAnswer>().initMap().initEntries(3);
  std::vector<uint8_t> lie = Flat(liar);
  lie.resize(lie.size() - 8);
  EXPECT_FALSE(DecodeMapAnswer(lie).ok());
}

TEST(MapWire, AnAnswerOverTheWireCapLosesItsQuietestEntries) {
  MemberMap big;
  for (int i = 0; i < 4000; i++) {
    MapEntry e;
    e.process.pid = static_cast<uint32_t>(i + 1);
    e.process.workload.cgroup = std::string(1000, 'x');  // ~1 KiB of text per entry
    e.process.exe = std::string(200, 'y');
    for (int k = 0; k < 4; k++) e.dependencies.push_back({E("10.1.1.1:80"), {}, {}});
    big.entries.push_back(std::move(e));
  }
  Result<std::vector<uint8_t>> bytes = EncodeMapAnswer(big);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  EXPECT_LE(bytes->size(), kMaxQueryBytes);
  Result<MemberMap> back = DecodeMapAnswer(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->truncated);
  EXPECT_LT(back->entries.size(), big.entries.size());
  EXPECT_EQ(back->entries[0].process.pid, 1u) << "the busiest (first) kept";
}

using MapAnswering = MapMesh;

TEST_F(MapAnswering, LookServiceAnswersMapQueriesAndLookQueriesAsBefore) {
  CommitAll();
  Node& s1 = *nodes_["s1"];
  LookServiceOptions o = s1.ServiceOptions();
  LookService svc(*s1.store, o);
  Result<std::vector<uint8_t>> q = EncodeMapQuery(TimeWindow{}, GroupBy::kWorkload);
  ASSERT_TRUE(q.ok());
  Result<std::vector<uint8_t>> a = svc.Answer(*q);
  ASSERT_TRUE(a.ok()) << a.status().message();
  Result<MemberMap> m = DecodeMapAnswer(*a);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->entries.size(), 2u);

  Result<std::vector<uint8_t>> no = svc.Refuse(*q, "refused: s1 is busy with 16 look queries");
  ASSERT_TRUE(no.ok());
  Result<MemberMap> refused = DecodeMapAnswer(*no);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(UnansweredOf(refused.status()), Unanswered::kRefused);

  // A look query: the same answer as the look wire gives, byte for byte.
  QueryBatch look;
  LookQuestion describe;
  describe.endpoint = E("10.0.0.2:8080");
  look.questions.push_back(describe);
  Result<std::vector<uint8_t>> lq = EncodeQuery(look);
  ASSERT_TRUE(lq.ok());
  Result<std::vector<uint8_t>> la = svc.Answer(*lq);
  ASSERT_TRUE(la.ok());
  LocalQuerier here(*s1.store, o.live_endpoints);
  describe.node = NodeRef{"s1", &here};
  Result<std::vector<uint8_t>> expected = EncodeAnswers({AskOne(describe, TimeWindow{})});
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*la, *expected);
  // Malformed bytes still say "look query", as before.
  std::vector<uint8_t> junk(7, 1);
  Result<std::vector<uint8_t>> bad = svc.Answer(junk);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("look query"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::maptest
