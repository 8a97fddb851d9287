// look's questions and answers between nodes: every field round-trips, an
// error answer stays an error, and malformed or mismatched bytes are refused
// with a message rather than read.
#include "node/look/look_wire.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <functional>

#include "node/wire/wire.h"
#include "schema/query.capnp.h"

namespace flowmesh {
namespace {

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }
IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

FlowStats Stats(uint64_t n) {
  FlowStats s;
  s.connections = n;
  s.bytes_tx = n * 10;
  s.bytes_rx = n * 20;
  s.retrans = 1;
  s.rtt_sum_us = 300;
  s.rtt_samples = 3;
  s.rtt_max_us = 150;
  s.first_seen_ns = 1'700'000'000'000'000'000;
  s.last_seen_ns = 1'700'000'060'000'000'000;
  return s;
}

ProcessDetails Proc(uint32_t pid, const char* comm) {
  ProcessDetails p;
  p.pid = pid;
  p.pgid = pid - 1;
  p.start_ticks = 12345;
  p.comm = comm;
  p.exe = std::string("/usr/bin/") + comm;
  return p;
}

std::vector<LookQuestion> Questions() {
  return {
      {LookQuestion::Kind::kDescribe, {}, Ep("10.213.0.2:80"), {}, GroupBy::kWorkload},
      {LookQuestion::Kind::kClients, {}, Ep("[fd00::3]:8000"), Ip("10.213.0.2"), GroupBy::kPgid},
      {LookQuestion::Kind::kActive, {}, {}, Ip("10.213.0.1"), GroupBy::kPid},
      {LookQuestion::Kind::kDescribe, {}, Ep("10.213.0.9:1"), {}, GroupBy::kWorkload}};
}

TEST(QueryWire, QuestionsRoundTrip) {
  QueryBatch b;
  b.window = TimeWindow{100, 200};
  b.questions = Questions();
  Result<std::vector<uint8_t>> bytes = EncodeQuery(b);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  Result<QueryBatch> back = DecodeQuery(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->window.since_ns, 100);
  EXPECT_EQ(back->window.until_ns, 200);
  ASSERT_EQ(back->questions.size(), 4u);
  for (size_t i = 0; i < 4; i++) {
    EXPECT_EQ(back->questions[i].kind, b.questions[i].kind);
    EXPECT_EQ(back->questions[i].endpoint, b.questions[i].endpoint);
    EXPECT_EQ(back->questions[i].from, b.questions[i].from);
    EXPECT_EQ(back->questions[i].group_by, b.questions[i].group_by);
  }
}

TEST(QueryWire, AnswersRoundTripByKind) {
  std::vector<LookAnswer> answers(4);
  EndpointDescription& d = answers[0].description;
  d.found = true;
  d.endpoint = Ep("10.213.0.2:80");
  d.process = Proc(4656, "nginx");
  d.clients = {{Ip("10.213.0.1"), Stats(3), Ep("10.213.0.2:80")}, {Ip("10.213.0.8"), Stats(1), {}}};
  d.dependencies = {{Ep("10.213.0.3:8000"), Stats(12)}};
  ClientProcess cp;
  cp.process = Proc(4657, "nginx");
  cp.stats = Stats(12);
  cp.endpoints = {Ep("0.0.0.0:80")};
  cp.clients = {{Ip("10.213.0.1"), Stats(3), Ep("10.213.0.2:80")}};
  answers[1].clients = {cp};
  ActiveProcess ap;
  ap.process = Proc(5982, "curl");
  ap.stats = Stats(3);
  ap.dependencies = {{Ep("10.213.0.2:80"), Stats(3)}};
  answers[2].active = {ap};
  answers[3].status = Unavailable("store is read-only");

  Result<std::vector<uint8_t>> bytes = EncodeAnswers(answers);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  Result<std::vector<LookAnswer>> back = DecodeAnswers(*bytes, Questions());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 4u);

  const EndpointDescription& bd = (*back)[0].description;
  EXPECT_TRUE(bd.found);
  EXPECT_EQ(bd.endpoint, d.endpoint);
  EXPECT_EQ(bd.process.comm, "nginx");
  EXPECT_EQ(bd.process.exe, "/usr/bin/nginx");
  EXPECT_EQ(bd.process.pgid, 4655u);
  ASSERT_EQ(bd.clients.size(), 2u);
  EXPECT_EQ(bd.clients[0].endpoint, Ep("10.213.0.2:80"));
  EXPECT_EQ(bd.clients[1].endpoint.port, 0);
  EXPECT_EQ(bd.clients[1].stats.connections, 1u);
  ASSERT_EQ(bd.dependencies.size(), 1u);
  EXPECT_EQ(bd.dependencies[0].stats.bytes_rx, 240u);
  EXPECT_EQ(bd.dependencies[0].stats.rtt_max_us, 150u);
  EXPECT_EQ(bd.dependencies[0].stats.last_seen_ns, 1'700'000'060'000'000'000);

  ASSERT_EQ((*back)[1].clients.size(), 1u);
  EXPECT_EQ((*back)[1].clients[0].endpoints, cp.endpoints);
  EXPECT_EQ((*back)[1].clients[0].clients[0].addr, Ip("10.213.0.1"));
  ASSERT_EQ((*back)[2].active.size(), 1u);
  EXPECT_EQ((*back)[2].active[0].process.comm, "curl");
  EXPECT_EQ((*back)[2].active[0].dependencies[0].remote, Ep("10.213.0.2:80"));
  EXPECT_FALSE((*back)[3].status.ok());
  EXPECT_EQ((*back)[3].status.message(), "store is read-only");
  // No translation: NAT's fields stay unset.
  EXPECT_EQ(bd.listener.port, 0);
  EXPECT_FALSE(bd.balancer);
  EXPECT_TRUE(bd.aliases.empty());
  EXPECT_EQ(bd.dependencies[0].via.port, 0);
}

TEST(QueryWire, NatFieldsRoundTrip) {
  std::vector<LookAnswer> answers(4);
  EndpointDescription& d = answers[0].description;
  d.found = true;
  d.endpoint = Ep("10.213.0.8:9090");
  d.listener = Ep("172.18.0.2:80");
  d.aliases = {Ep("10.213.0.8:9090"), Ep("10.213.0.8:9091")};
  d.dependencies = {{Ep("10.213.0.5:6379"), Stats(2), Ep("10.213.250.2:6379")}};
  ClientProcess lb;
  lb.balancer = true;
  lb.endpoints = {Ep("10.213.0.9:8000")};
  lb.clients = {{Ip("10.213.0.7"), Stats(5), Ep("10.213.0.9:8000")}};
  ClientProcess curl;
  curl.process = Proc(77, "curl");
  curl.via = Ep("10.213.250.1:80");
  answers[1].clients = {lb, curl};
  ActiveProcess ap;
  ap.process = Proc(77, "curl");
  ap.dependencies = {{Ep("10.213.0.2:80"), Stats(3), Ep("10.213.250.1:80")}};
  answers[2].active = {ap};
  answers[3].description.found = true;
  answers[3].description.balancer = true;

  Result<std::vector<uint8_t>> bytes = EncodeAnswers(answers);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  Result<std::vector<LookAnswer>> back = DecodeAnswers(*bytes, Questions());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const EndpointDescription& bd = (*back)[0].description;
  EXPECT_EQ(bd.listener, Ep("172.18.0.2:80"));
  EXPECT_EQ(bd.aliases, d.aliases);
  EXPECT_EQ(bd.dependencies[0].via, Ep("10.213.250.2:6379"));
  ASSERT_EQ((*back)[1].clients.size(), 2u);
  EXPECT_TRUE((*back)[1].clients[0].balancer);
  EXPECT_EQ((*back)[1].clients[0].endpoints, lb.endpoints);
  EXPECT_EQ((*back)[1].clients[0].clients[0].endpoint, Ep("10.213.0.9:8000"));
  EXPECT_FALSE((*back)[1].clients[1].balancer);
  EXPECT_EQ((*back)[1].clients[1].via, Ep("10.213.250.1:80"));
  EXPECT_EQ((*back)[2].active[0].dependencies[0].via, Ep("10.213.250.1:80"));
  EXPECT_TRUE((*back)[3].description.balancer);
}

// A question of an origin older than issue 15 has no grouping: the answer
// groups by pgid, as that origin expects. A workload survives the answer.
TEST(QueryWire, AnOlderOriginsQuestionGroupsByPgid) {
  capnp::MallocMessageBuilder message;
  auto look = message.initRoot<schema::query::NodeQuery>().initLook();
  auto q = look.initQuestions(1)[0];
  q.setKind(schema::query::Kind::DESCRIBE);
  wire::EndpointToWire(Ep("10.213.0.2:80"), q.initEndpoint());
  kj::Array<capnp::word> words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  Result<QueryBatch> back = DecodeQuery({bytes.begin(), bytes.size()});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->questions.at(0).group_by, GroupBy::kPgid);

  std::vector<LookAnswer> answers(1);
  answers[0].description.found = true;
  answers[0].description.process = Proc(4656, "nginx");
  answers[0].description.process.workload.kind = WorkloadKind::kUnit;
  answers[0].description.process.workload.id = "nginx.service";
  Result<std::vector<uint8_t>> out = EncodeAnswers(answers);
  ASSERT_TRUE(out.ok());
  Result<std::vector<LookAnswer>> read = DecodeAnswers(*out, {Questions()[0]});
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ((*read)[0].description.process.workload, answers[0].description.process.workload);
}

TEST(QueryWire, MalformedOrMismatchedIsRefused) {
  EXPECT_FALSE(DecodeQuery(std::vector<uint8_t>{}).ok());
  EXPECT_FALSE(DecodeQuery(std::vector<uint8_t>{1, 2, 3}).ok());
  std::vector<uint8_t> garbage(64, 0xff);
  EXPECT_FALSE(DecodeQuery(garbage).ok());
  std::vector<uint8_t> huge(kMaxQueryBytes + 8, 0);
  Result<QueryBatch> big = DecodeQuery(huge);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("cap"), std::string::npos);

  // Three answers to four questions: the asker cannot pair them.
  Result<std::vector<uint8_t>> three = EncodeAnswers(std::vector<LookAnswer>(3));
  ASSERT_TRUE(three.ok());
  Result<std::vector<LookAnswer>> r = DecodeAnswers(*three, Questions());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("3 answers to 4 questions"), std::string::npos);
}

// Another node's answer or meshd's control reply naming a workload past the
// bounds (a 1 MiB docker Name, a NUL inside a pod's name): no workload, the
// process kept. The sender leaves such a workload out too.
TEST(QueryWire, AWorkloadPastTheBoundsIsNone) {
  namespace s = ::flowmesh::schema;
  auto read = [](const std::function<void(s::Workload::Builder)>& fill) {
    capnp::MallocMessageBuilder m;
    auto b = m.initRoot<s::Workload>();
    b.setKind("container");
    b.setId("3f2a1c4d5e6f");
    fill(b);
    return wire::WorkloadFromWire(b.asReader());
  };
  EXPECT_EQ(read([](s::Workload::Builder) {}).id, "3f2a1c4d5e6f");
  EXPECT_TRUE(read([](s::Workload::Builder b) {
                b.setName(std::string(wire::kMaxWorkloadTextBytes + 1, 'x'));
              }).empty());
  EXPECT_TRUE(read([](s::Workload::Builder b) {
                b.setHasPod(true);
                b.setPodName(capnp::Text::Reader("a\0b", 3));
              }).empty());
  EXPECT_TRUE(read([](s::Workload::Builder b) {
                b.setCgroup(std::string(wire::kMaxWorkloadCgroupBytes + 1, '/'));
              }).empty());

  ProcessDetails p = Proc(42, "web");
  p.workload.kind = WorkloadKind::kContainer;
  p.workload.id = "3f2a1c4d5e6f";
  p.workload.name = std::string(1 << 20, 'x');
  capnp::MallocMessageBuilder m;
  wire::DetailsToWire(p, m.initRoot<s::ProcessDetails>());
  ProcessDetails back = wire::DetailsFromWire(m.getRoot<s::ProcessDetails>().asReader());
  EXPECT_EQ(back.pid, 42u);
  EXPECT_TRUE(back.workload.empty());
}

}  // namespace
}  // namespace flowmesh
