// Struct <-> schema conversions and the control messages, through real frames.
#include "node/control/convert.h"

#include <capnp/message.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

namespace flowmesh {
namespace {

ConnEvent SampleEvent(uint16_t family) {
  ConnEvent e;
  e.kind = EventKind::kClose;
  e.direction = Direction::kPassive;
  e.source = EventSource::kPoll;
  e.ts_ns = 1'700'000'000'123'456'789;
  e.key.netns = 4026531840u;
  if (family == AF_INET) {
    e.key.laddr = IpAddr::V4(10, 213, 0, 2);
    e.key.raddr = IpAddr::V4(10, 213, 0, 1);
  } else {
    e.key.laddr = *IpAddr::Parse("fd00::2");
    e.key.raddr = *IpAddr::Parse("fd00::1");
  }
  e.key.lport = 80;
  e.key.rport = 51234;
  e.proc.pid = 4656;
  e.proc.start_ticks = 987654;
  e.proc.set_comm("nginx");
  e.counters = {123456789012ULL, 42, 10, 11, 2, 350, 120};
  e.duration_ns = 1'500'000;
  return e;
}

bool SameEvent(const ConnEvent& a, const ConnEvent& b) {
  return a.kind == b.kind && a.direction == b.direction && a.source == b.source &&
         a.ts_ns == b.ts_ns && a.key == b.key && a.proc.pid == b.proc.pid &&
         a.proc.start_ticks == b.proc.start_ticks && a.proc.comm_view() == b.proc.comm_view() &&
         a.counters == b.counters && a.duration_ns == b.duration_ns;
}

// Encodes `frame_bytes`, runs them through a decoder, returns the frame.
Frame Decode(const std::vector<uint8_t>& frame_bytes, size_t max) {
  FrameDecoder decoder(max);
  EXPECT_TRUE(decoder.Feed(frame_bytes.data(), frame_bytes.size()).ok());
  Frame frame;
  EXPECT_TRUE(decoder.Next(&frame));
  return frame;
}

TEST(Convert, EventRoundTripsForBothFamilies) {
  for (uint16_t family : {AF_INET, AF_INET6}) {
    ConnEvent e = SampleEvent(family);
    Frame frame = Decode(*EncodeEventResponse(e), kMaxResponseBytes);
    Result<ControlResponse> r = DecodeResponse(frame);
    ASSERT_TRUE(r.ok()) << r.status().message();
    ASSERT_EQ(r->kind, ControlResponse::Kind::kEvent);
    EXPECT_TRUE(SameEvent(r->event, e)) << family;
  }
}

TEST(Convert, ListenerWithoutRemoteAddressRoundTrips) {
  ConnEvent e = SampleEvent(AF_INET6);
  e.kind = EventKind::kListen;
  e.key.raddr = IpAddr{};
  e.key.rport = 0;
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::Event>();
  ToCapnp(e, b);
  EXPECT_EQ(b.asReader().getKey().getRaddr().size(), 0u);
  Result<ConnEvent> back = FromCapnp(b.asReader());
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(SameEvent(*back, e));
}

TEST(Convert, BadKeysAreErrorsNotCrashes) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::Event>();
  ToCapnp(SampleEvent(AF_INET), b);
  b.getKey().setFamily(99);
  EXPECT_NE(FromCapnp(b.asReader()).status().message().find("unknown address family 99"),
            std::string::npos);
  b.getKey().setFamily(AF_INET);
  uint8_t five[5] = {1, 2, 3, 4, 5};
  b.getKey().setRaddr(kj::arrayPtr(five, 5));
  EXPECT_NE(FromCapnp(b.asReader()).status().message().find("remote address of 5 bytes"),
            std::string::npos);
  b.getKey().setFamily(AF_INET6);  // laddr still 4 bytes
  b.getKey().setRaddr(kj::arrayPtr(five, 4));
  EXPECT_FALSE(FromCapnp(b.asReader()).ok());
}

TEST(Convert, UnknownEnumValuesFromANewerPeerAreErrors) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::Event>();
  ToCapnp(SampleEvent(AF_INET), b);
  b.setKind(static_cast<schema::EventKind>(77));
  EXPECT_NE(FromCapnp(b.asReader()).status().message().find("unknown event kind 77"),
            std::string::npos);
}

TEST(Convert, LongCommIsTruncatedNotOverflowed) {
  capnp::MallocMessageBuilder m;
  auto b = m.initRoot<schema::Event>();
  ToCapnp(SampleEvent(AF_INET), b);
  b.getProcess().setComm("a-very-long-process-name-indeed");
  Result<ConnEvent> e = FromCapnp(b.asReader());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->proc.comm_view(), "a-very-long-pro");
}

TEST(Convert, ConnectionsResponseRoundTrips) {
  std::vector<OpenConnection> conns(3);
  for (size_t i = 0; i < conns.size(); i++) {
    ConnEvent e = SampleEvent(i % 2 ? AF_INET6 : AF_INET);
    conns[i].key = e.key;
    conns[i].key.lport = static_cast<uint16_t>(8000 + i);
    conns[i].direction = Direction::kActive;
    conns[i].source = EventSource::kSeed;
    conns[i].proc = e.proc;
    conns[i].counters = e.counters;
    conns[i].opened_ns = 100 + static_cast<int64_t>(i);
    conns[i].updated_ns = 200 + static_cast<int64_t>(i);
  }
  Frame frame = Decode(*EncodeConnectionsResponse(conns), kMaxResponseBytes);
  Result<ControlResponse> r = DecodeResponse(frame);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->connections.size(), 3u);
  for (size_t i = 0; i < conns.size(); i++) {
    EXPECT_EQ(r->connections[i].key, conns[i].key);
    EXPECT_EQ(r->connections[i].direction, Direction::kActive);
    EXPECT_EQ(r->connections[i].source, EventSource::kSeed);
    EXPECT_EQ(r->connections[i].proc.comm_view(), "nginx");
    EXPECT_EQ(r->connections[i].counters, conns[i].counters);
    EXPECT_EQ(r->connections[i].opened_ns, conns[i].opened_ns);
    EXPECT_EQ(r->connections[i].updated_ns, conns[i].updated_ns);
  }
}

TEST(Convert, StatusRoundTripsIncludingFieldsCarriedInDetail) {
  NodeStatus s;
  s.node_name = "web-1";
  s.version = "0.1.0";
  s.pid = 1234;
  s.started_ns = 5'000'000'000;
  s.probe_mode = "polling";
  s.probe_reason = "fallback from eBPF: Operation not permitted";
  s.netns = "self (4026531840)";
  s.probe.events = 100;
  s.probe.lost = 3;
  s.probe.malformed = 1;
  s.probe.polls = 77;
  s.probe.detail = {{"lost_ringbuf", 3}, {"poll_errors", 0}};
  s.table = {5, 2, 60, 55, 4, 1, 9, 8, 7};
  s.watchers = 2;
  s.first_event_ns = 5'010'000'000;
  Frame frame = Decode(*EncodeStatusResponse(s), kMaxResponseBytes);
  Result<ControlResponse> r = DecodeResponse(frame);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const NodeStatus& b = r->status;
  EXPECT_EQ(b.node_name, "web-1");
  EXPECT_EQ(b.version, "0.1.0");
  EXPECT_EQ(b.pid, 1234u);
  EXPECT_EQ(b.started_ns, s.started_ns);
  EXPECT_EQ(b.probe_mode, "polling");
  EXPECT_EQ(b.probe_reason, s.probe_reason);
  EXPECT_EQ(b.netns, s.netns);
  EXPECT_EQ(b.probe.events, 100u);
  EXPECT_EQ(b.probe.lost, 3u);
  EXPECT_EQ(b.probe.malformed, 1u);
  EXPECT_EQ(b.probe.polls, 77u);
  EXPECT_EQ(b.probe.detail, s.probe.detail);
  EXPECT_EQ(b.table.open, 5u);
  EXPECT_EQ(b.table.listeners, 2u);
  EXPECT_EQ(b.table.opens, 60u);
  EXPECT_EQ(b.table.closes, 55u);
  EXPECT_EQ(b.table.close_without_open, 4u);
  EXPECT_EQ(b.table.close_unattributed, 1u);
  EXPECT_EQ(b.table.reconstructed_closes, 9u);
  EXPECT_EQ(b.table.reconstructed_unlistens, 8u);
  EXPECT_EQ(b.table.late_closes_dropped, 7u);
  EXPECT_EQ(b.watchers, 2u);
  EXPECT_EQ(b.first_event_ns, s.first_event_ns);
}

TEST(Convert, MeshRefusalsAndFlappingRoundTrip) {
  NodeStatus s;
  s.mesh.enabled = true;
  s.mesh.refusals = {{"udp_empty", 3, "empty datagrams received"}, {"seal_replayed", 0, "replays"}};
  s.mesh.suspicions_raised = 1;
  s.mesh.suspicions_received = 2;
  s.mesh.refutations = 3;
  s.mesh.incarnation_bumps = 4;
  s.mesh.false_deaths = 5;
  s.mesh.flaps = 6;
  s.mesh.flapping = {{"app-1", 7, 8}};
  Frame frame = Decode(*EncodeStatusResponse(s), kMaxResponseBytes);
  Result<ControlResponse> r = DecodeResponse(frame);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MeshStatus& m = r->status.mesh;
  ASSERT_EQ(m.refusals.size(), 2u);
  EXPECT_EQ(m.refusals[0].reason, "udp_empty");
  EXPECT_EQ(m.refusals[0].count, 3u);
  EXPECT_EQ(m.refusals[0].help, "empty datagrams received");
  EXPECT_EQ(m.refusals[1].reason, "seal_replayed");
  EXPECT_EQ(m.suspicions_raised, 1u);
  EXPECT_EQ(m.suspicions_received, 2u);
  EXPECT_EQ(m.refutations, 3u);
  EXPECT_EQ(m.incarnation_bumps, 4u);
  EXPECT_EQ(m.false_deaths, 5u);
  EXPECT_EQ(m.flaps, 6u);
  ASSERT_EQ(m.flapping.size(), 1u);
  EXPECT_EQ(m.flapping[0].name, "app-1");
  EXPECT_EQ(m.flapping[0].flaps, 7u);
  EXPECT_EQ(m.flapping[0].false_deaths, 8u);
}

TEST(Convert, RequestsRoundTrip) {
  ControlRequest req{RequestKind::kWatch, WatchFilter{42, AF_INET6, {80, 443}, {5432}}};
  Frame frame = Decode(*EncodeRequest(req), kMaxRequestBytes);
  Result<ControlRequest> back = DecodeRequest(frame);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->kind, RequestKind::kWatch);
  EXPECT_EQ(back->filter, req.filter);

  Frame status = Decode(*EncodeRequest({RequestKind::kStatus, {}}), kMaxRequestBytes);
  EXPECT_EQ(DecodeRequest(status)->kind, RequestKind::kStatus);
  Frame conns = Decode(*EncodeRequest({RequestKind::kConnections, WatchFilter{7, 0, {}, {}}}),
                       kMaxRequestBytes);
  Result<ControlRequest> c = DecodeRequest(conns);
  EXPECT_EQ(c->kind, RequestKind::kConnections);
  EXPECT_EQ(c->filter.pid, 7u);
}

TEST(Convert, FilterWithUnknownFamilyIsRejected) {
  ControlRequest req{RequestKind::kWatch, WatchFilter{0, 3, {}, {}}};
  Frame frame = Decode(*EncodeRequest(req), kMaxRequestBytes);
  EXPECT_NE(DecodeRequest(frame).status().message().find("unknown address family 3"),
            std::string::npos);
}

TEST(Convert, ValidCapnpOfTheWrongShapeIsAnErrorNotAnException) {
  // A well-formed message whose root is a list where a Request struct belongs.
  capnp::MallocMessageBuilder m;
  m.initRoot<capnp::List<uint64_t>>(3);
  Result<std::vector<uint8_t>> bytes = EncodeFrame(m, kMaxRequestBytes);
  ASSERT_TRUE(bytes.ok());
  Frame frame = Decode(*bytes, kMaxRequestBytes);
  Result<ControlRequest> r = DecodeRequest(frame);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("malformed request"), std::string::npos)
      << r.status().message();
  Frame again = Decode(*bytes, kMaxRequestBytes);
  EXPECT_FALSE(DecodeResponse(again).ok());
}

TEST(Convert, ErrorAndDroppedResponses) {
  Frame e = Decode(*EncodeErrorResponse("too busy"), kMaxResponseBytes);
  Result<ControlResponse> r = DecodeResponse(e);
  EXPECT_EQ(r->kind, ControlResponse::Kind::kError);
  EXPECT_EQ(r->error, "too busy");
  Frame d = Decode(*EncodeDroppedResponse(17), kMaxResponseBytes);
  r = DecodeResponse(d);
  EXPECT_EQ(r->kind, ControlResponse::Kind::kWatchDropped);
  EXPECT_EQ(r->dropped, 17u);
}

TEST(WatchFilter, MatchesEachCriterion) {
  ConnEvent e = SampleEvent(AF_INET);  // pid 4656, lport 80, rport 51234
  EXPECT_TRUE(WatchFilter{}.Matches(e));
  EXPECT_TRUE((WatchFilter{4656, 0, {}, {}}.Matches(e)));
  EXPECT_FALSE((WatchFilter{1, 0, {}, {}}.Matches(e)));
  EXPECT_TRUE((WatchFilter{0, AF_INET, {}, {}}.Matches(e)));
  EXPECT_FALSE((WatchFilter{0, AF_INET6, {}, {}}.Matches(e)));
  EXPECT_TRUE((WatchFilter{0, 0, {443, 80}, {}}.Matches(e)));
  EXPECT_FALSE((WatchFilter{0, 0, {443}, {}}.Matches(e)));
  EXPECT_TRUE((WatchFilter{0, 0, {}, {51234}}.Matches(e)));
  EXPECT_FALSE((WatchFilter{0, 0, {80}, {80}}.Matches(e)));
  e.kind = EventKind::kListen;
  e.key.raddr = IpAddr{};
  e.key.rport = 0;
  EXPECT_FALSE((WatchFilter{0, 0, {}, {51234}}.Matches(e))) << "a listener has no remote port";
  OpenConnection c;
  c.key = e.key;
  c.proc = e.proc;
  EXPECT_TRUE((WatchFilter{4656, AF_INET, {80}, {}}.Matches(c)));
}

TEST(Convert, AboutOneHundredFiftyThousandConnectionsFitInOneReply) {
  // frame.h promises this; IPv6 with a full comm is the largest case.
  std::vector<OpenConnection> conns(1000);
  for (OpenConnection& c : conns) {
    ConnEvent e = SampleEvent(AF_INET6);
    c.key = e.key;
    c.proc = e.proc;
    c.proc.set_comm("fifteen-chars-x");
    c.counters = e.counters;
  }
  Result<std::vector<uint8_t>> frame = EncodeConnectionsResponse(conns);
  ASSERT_TRUE(frame.ok());
  EXPECT_LT(frame->size() * 150, kMaxResponseBytes) << frame->size() / 1000 << " bytes each";
}

}  // namespace
}  // namespace flowmesh
