// Mesh wire format: round trips of every message, budgets, and malformed or
// oversized input (an error, never a crash or a large allocation).
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include <random>

#include "node/common/log.h"
#include "node/mesh/sim/sim_cluster.h"
#include "node/mesh/wire.h"
#include "schema/mesh.capnp.h"

namespace flowmesh::mesh {
namespace {

namespace s = ::flowmesh::schema::mesh;

TableDeltaMsg SampleDelta() {
  TableDeltaMsg d{"web-1", 3, 4, 7, false, {}};
  TableEntryMsg addr;
  addr.version = 5;
  addr.is_address = true;
  addr.addr = *IpAddr::Parse("2001:db8::1");
  TableEntryMsg ep;
  ep.version = 6;
  ep.addr = *IpAddr::Parse("10.0.0.1");
  ep.port = 443;
  ep.pid = 1234;
  ep.pgid = 1200;
  ep.comm = "nginx";
  ep.exe = "/usr/sbin/nginx";
  TableEntryMsg gone;
  gone.version = 7;
  gone.deleted = true;
  gone.addr = *IpAddr::Parse("10.0.0.1");
  gone.port = 80;
  d.entries = {addr, ep, gone};
  return d;
}

Bytes Packed(capnp::MessageBuilder& m) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, m);
  return Bytes(out.getArray().begin(), out.getArray().end());
}

TEST(MeshWire, PacketRoundTripWithEveryKindOfGossip) {
  std::vector<EncodedGossip> g = {
      EncodeGossip(AliveMsg{"a", "10.0.0.1:7946", "id-a", 2, 5}),
      EncodeGossip(SuspectMsg{"b", 1, 3, "a"}),
      EncodeGossip(DeadMsg{"c", 1, 9, "c"}),
      EncodeGossip(SampleDelta()),
  };
  std::vector<const EncodedGossip*> ptrs;
  for (auto& e : g) ptrs.push_back(&e);
  Result<Bytes> bytes = EncodePacket(PingReqMsg{77, "b", "10.0.0.2:7946", true}, ptrs);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_LE(bytes->size(), kPacketBudgetBytes);
  Result<PacketMsg> p = DecodePacket(*bytes);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const auto& req = std::get<PingReqMsg>(p->primary);
  EXPECT_EQ(req.seq, 77u);
  EXPECT_EQ(req.target, "b");
  EXPECT_EQ(req.target_addr, "10.0.0.2:7946");
  EXPECT_TRUE(req.want_nack);
  ASSERT_EQ(p->gossip.size(), 4u);
  const auto& a = std::get<AliveMsg>(p->gossip[0]);
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.addr, "10.0.0.1:7946");
  EXPECT_EQ(a.node_id, "id-a");
  EXPECT_EQ(a.generation, 2u);
  EXPECT_EQ(a.incarnation, 5u);
  EXPECT_EQ(std::get<SuspectMsg>(p->gossip[1]).from, "a");
  EXPECT_EQ(std::get<DeadMsg>(p->gossip[2]).incarnation, 9u);
  const auto& d = std::get<TableDeltaMsg>(p->gossip[3]);
  EXPECT_EQ(d.owner, "web-1");
  EXPECT_EQ(d.generation, 3u);
  EXPECT_EQ(d.from_version, 4u);
  EXPECT_EQ(d.to_version, 7u);
  ASSERT_EQ(d.entries.size(), 3u);
  EXPECT_TRUE(d.entries[0].is_address);
  EXPECT_EQ(d.entries[0].addr, *IpAddr::Parse("2001:db8::1"));
  EXPECT_EQ(d.entries[1].comm, "nginx");
  EXPECT_EQ(d.entries[1].exe, "/usr/sbin/nginx");
  EXPECT_EQ(d.entries[1].pid, 1234u);
  EXPECT_EQ(d.entries[1].port, 443);
  EXPECT_TRUE(d.entries[2].deleted);
}

TEST(MeshWire, EveryPrimaryRoundTrips) {
  std::vector<PrimaryMsg> all = {std::monostate{},
                                 PingMsg{1, "x"},
                                 AckMsg{2},
                                 NackMsg{3},
                                 PingReqMsg{4, "y", "1.2.3.4:5", false},
                                 TableRequestMsg{{{"o", 1, 2}, {"p", 3, 4}}},
                                 TableReplyMsg{{SampleDelta()}}};
  for (const PrimaryMsg& m : all) {
    Result<Bytes> bytes = EncodePacket(m, {});
    ASSERT_TRUE(bytes.ok());
    EXPECT_LE(bytes->size(), EstimatePrimaryBytes(m)) << "estimates stay on the safe side";
    Result<PacketMsg> p = DecodePacket(*bytes);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_EQ(p->primary.index(), m.index());
  }
  auto req = std::get<TableRequestMsg>(DecodePacket(*EncodePacket(all[5], {}))->primary);
  ASSERT_EQ(req.digests.size(), 2u);
  EXPECT_EQ(req.digests[1].owner, "p");
  EXPECT_EQ(req.digests[1].version, 4u);
  EXPECT_EQ(std::get<AckMsg>(DecodePacket(*EncodePacket(all[2], {}))->primary).seq, 2u);
}

TEST(MeshWire, ExchangesRoundTrip) {
  PushPullMsg pp;
  pp.join = true;
  for (int i = 0; i < 500; i++)
    pp.members.push_back({"node-" + std::to_string(i),
                          "10.0.1." + std::to_string(i % 250) + ":7946", "id-" + std::to_string(i),
                          2, static_cast<uint32_t>(i), MemberState::kSuspect, 2,
                          static_cast<uint64_t>(i) * 3});
  pp.members[7].state = MemberState::kLeft;
  pp.tables = {SampleDelta()};
  Result<Bytes> bytes = EncodeExchangeRequest(pp);
  ASSERT_TRUE(bytes.ok());
  Result<ExchangeRequestMsg> back = DecodeExchangeRequest(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  const auto& got = std::get<PushPullMsg>(*back);
  EXPECT_TRUE(got.join);
  ASSERT_EQ(got.members.size(), 500u);
  EXPECT_EQ(got.members[499].name, "node-499");
  EXPECT_EQ(got.members[499].table_version, 1497u);
  EXPECT_EQ(got.members[7].state, MemberState::kLeft);
  EXPECT_EQ(got.members[8].state, MemberState::kSuspect);
  ASSERT_EQ(got.tables.size(), 1u);
  EXPECT_EQ(got.tables[0].entries.size(), 3u);

  auto ping = DecodeExchangeRequest(*EncodeExchangeRequest(PingMsg{9, "n"}));
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(std::get<PingMsg>(*ping).seq, 9u);
  auto push = DecodeExchangeRequest(*EncodeExchangeRequest(TablePushMsg{{SampleDelta()}}));
  ASSERT_TRUE(push.ok());
  EXPECT_EQ(std::get<TablePushMsg>(*push).deltas.size(), 1u);
  auto ack = DecodeExchangeResponse(*EncodeExchangeResponse(AckMsg{9}));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(std::get<AckMsg>(*ack).seq, 9u);
  auto done = DecodeExchangeResponse(*EncodeExchangeResponse(DoneMsg{}));
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(std::holds_alternative<DoneMsg>(*done));
  auto resp = DecodeExchangeResponse(*EncodeExchangeResponse(pp));
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(std::get<PushPullMsg>(*resp).members.size(), 500u);
}

TEST(MeshWire, PacketsOverTheBudgetAreRefused) {
  std::vector<EncodedGossip> g;
  for (int i = 0; i < 100; i++)
    g.push_back(EncodeGossip(AliveMsg{"node-" + std::to_string(i), "10.0.0.1:7946", "id", 1, 1}));
  std::vector<const EncodedGossip*> ptrs;
  for (auto& e : g) ptrs.push_back(&e);
  Result<Bytes> bytes = EncodePacket(std::monostate{}, ptrs);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), Status::Code::kResourceExhausted);
}

TEST(MeshWire, OversizedAndEmptyInputIsRefusedBeforeDecoding) {
  Bytes big(kMaxPacketBytes + 1, 0);
  Result<PacketMsg> p = DecodePacket(big);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Status::Code::kResourceExhausted);
  EXPECT_FALSE(DecodePacket(Bytes{}).ok());
  EXPECT_FALSE(DecodeExchangeRequest(Bytes(kMaxExchangeBytes + 1, 0)).ok());
}

TEST(MeshWire, SegmentTableClaimingHugeSizeIsRefused) {
  // Packed, the first word 00 00 00 00 00 00 00 10 is tag 0x80 then 0x10: one
  // segment of 2^28 words (2 GiB). The reader must refuse it before
  // allocating anything, because it exceeds the traversal limit.
  Bytes claim = {0x80, 0x10, 0x00, 0x00};
  Result<PacketMsg> p = DecodePacket(claim);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("too large"), std::string::npos) << p.status().ToString();
  EXPECT_FALSE(DecodeExchangeRequest(claim).ok());
  EXPECT_FALSE(DecodeExchangeResponse(claim).ok());
}

TEST(MeshWire, MalformedContentIsAnError) {
  auto bad = [](auto fill) {
    capnp::MallocMessageBuilder m;
    fill(m.initRoot<s::Packet>());
    return DecodePacket(Packed(m));
  };
  // A gossip blob that is not a whole number of words.
  EXPECT_FALSE(bad([](s::Packet::Builder p) {
                 p.initGossip(1).set(0, kj::heapArray<kj::byte>(5).asPtr());
               }).ok());
  // A gossip blob whose content is garbage.
  EXPECT_FALSE(bad([](s::Packet::Builder p) {
                 auto junk = kj::heapArray<kj::byte>(16);
                 for (auto& b : junk) b = 0xee;
                 p.initGossip(1).set(0, junk.asPtr());
               }).ok());
  // A name longer than any name of ours.
  Result<PacketMsg> long_name =
      bad([](s::Packet::Builder p) { p.initPingReq().setTarget(std::string(300, 'x')); });
  ASSERT_FALSE(long_name.ok());
  EXPECT_EQ(CheckOf(long_name.status()), WireCheck::kFieldTooLong) << long_name.status().message();
  // A name that must be set, empty.
  Result<PacketMsg> no_name =
      bad([](s::Packet::Builder p) { p.initPingReq().setTargetAddr("10.0.0.1:7946"); });
  ASSERT_FALSE(no_name.ok());
  EXPECT_EQ(CheckOf(no_name.status()), WireCheck::kFieldEmpty) << no_name.status().message();
  // An address of 5 bytes in a table entry.
  Result<PacketMsg> five = bad([](s::Packet::Builder p) {
    auto d = p.initTableReply(1)[0];
    d.setOwner("o");
    d.setToVersion(2);
    auto e = d.initEntries(1)[0];
    e.setVersion(1);
    e.setAddr(kj::heapArray<kj::byte>(5).asPtr());
  });
  ASSERT_FALSE(five.ok());
  EXPECT_EQ(CheckOf(five.status()), WireCheck::kBadValue) << five.status().message();
  // Entry versions out of order (a prefix would not be a consistent state).
  Result<PacketMsg> order = bad([](s::Packet::Builder p) {
    auto d = p.initTableReply(1)[0];
    d.setOwner("o");
    d.setToVersion(5);
    auto es = d.initEntries(2);
    for (int i = 0; i < 2; i++) {
      es[i].setVersion(4 - i);
      es[i].setAddr(kj::heapArray<kj::byte>(4).asPtr());
    }
  });
  ASSERT_FALSE(order.ok());
  EXPECT_EQ(CheckOf(order.status()), WireCheck::kBadValue) << order.status().message();
  // A name with a NUL inside (found by tests/fuzz/mesh_gossip_fuzz): the
  // encoders stop at the NUL, so it would be forwarded as another name ("o")
  // or, leading, as an empty one that makes every push-pull carrying it
  // malformed for its receivers.
  for (const char* owner : {"o\0evil", "\0o"}) {
    EXPECT_FALSE(bad([owner](s::Packet::Builder p) {
                   auto d = p.initTableReply(1)[0];
                   d.setOwner(capnp::Text::Reader(owner, owner[0] ? 6 : 2));
                   d.setToVersion(1);
                 }).ok());
  }
  // Trailing bytes after the message.
  Bytes ok = *EncodePacket(AckMsg{1}, {});
  ok.push_back(0);
  Result<PacketMsg> trailing = DecodePacket(ok);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(CheckOf(trailing.status()), WireCheck::kStructure) << trailing.status().message();
  // Empty and oversized, before decoding.
  EXPECT_EQ(CheckOf(DecodePacket(Bytes{}).status()), WireCheck::kEmpty);
  EXPECT_EQ(CheckOf(DecodePacket(Bytes(kMaxPacketBytes + 1, 0)).status()), WireCheck::kOversized);
  EXPECT_EQ(CheckOf(DecodeExchangeRequest(Bytes{}).status()), WireCheck::kEmpty);
}

TEST(MeshWire, MutatedPacketsNeverCrash) {
  std::vector<EncodedGossip> g = {EncodeGossip(AliveMsg{"a", "10.0.0.1:7946", "id-a", 2, 5}),
                                  EncodeGossip(SampleDelta())};
  std::vector<const EncodedGossip*> ptrs{&g[0], &g[1]};
  Bytes good = *EncodePacket(PingMsg{1, "b"}, ptrs);
  std::mt19937 rng(42);
  int errors = 0;
  for (int i = 0; i < 20000; i++) {
    Bytes b = good;
    int flips = 1 + rng() % 4;
    for (int f = 0; f < flips; f++) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    if (rng() % 8 == 0) b.resize(rng() % b.size());
    errors += !DecodePacket(b).ok();
  }
  EXPECT_GT(errors, 1000);
}

// Each drop is counted by the check it failed and logged naming the check, at
// most one line per 10 s with how many were held back: a seed used to drop a
// joiner's overlong name without a word, and the joiner retried forever.
TEST(MeshWire, NodeCountsDropsByCheckAndLogsThemRateLimited) {
  log::SetLevel(log::Level::Warn);
  SimCluster c(1);
  c.AddNodes(3);
  c.StartAll(1, 0);
  ASSERT_TRUE(c.net().RunUntil([&] { return c.AllSeeAlive(3); }, 20 * kSecond, 100 * kMs));
  log::Capture capture;
  EncodedGossip long_name =
      EncodeGossip(AliveMsg{std::string(200, 'n'), "10.0.0.9:7946", "", 1, 1});
  std::vector<const EncodedGossip*> gossip{&long_name};
  Result<Bytes> overlong = EncodePacket(std::monostate{}, gossip);
  ASSERT_TRUE(overlong.ok()) << overlong.status().ToString();
  c.net().Inject(SimCluster::AddressOf(1), SimCluster::AddressOf(0), *overlong);
  c.net().RunFor(1 * kSecond);  // injected packets get random delays: keep this one first
  c.net().Inject(SimCluster::AddressOf(1), SimCluster::AddressOf(0), Bytes{1, 2, 3, 4, 5});
  c.net().Inject(SimCluster::AddressOf(1), SimCluster::AddressOf(0), Bytes(5000, 0xff));
  c.net().RunFor(5 * kSecond);
  MeshStats st = c.node(0).Stats();
  EXPECT_EQ(st.malformed, 3u);
  EXPECT_EQ(st.malformed_by_check[static_cast<size_t>(WireCheck::kFieldTooLong)], 1u);
  EXPECT_EQ(st.malformed_by_check[static_cast<size_t>(WireCheck::kOversized)], 1u);
  EXPECT_EQ(st.malformed_by_check[static_cast<size_t>(WireCheck::kStructure)] +
                st.malformed_by_check[static_cast<size_t>(WireCheck::kBadValue)],
            1u);
  EXPECT_TRUE(c.AllSeeAlive(3));
  // One line for the three, naming the first one's check and field.
  ASSERT_EQ(capture.Count("dropped a packet from"), 1u)
      << ::testing::PrintToString(capture.Lines());
  EXPECT_EQ(capture.Count("WARN mesh: node-00000 dropped a packet from 10.0.0.1:7946 that failed "
                          "the check 'field_too_long': malformed mesh message: alive name of 200 "
                          "bytes (max 128)"),
            1u)
      << ::testing::PrintToString(capture.Lines());
  // The next interval's line counts the two held back.
  c.net().RunFor(5 * kSecond);
  c.net().Inject(SimCluster::AddressOf(1), SimCluster::AddressOf(0), Bytes{1, 2, 3});
  c.net().RunFor(1 * kSecond);
  EXPECT_EQ(capture.Count("dropped a packet from"), 2u)
      << ::testing::PrintToString(capture.Lines());
  EXPECT_EQ(capture.Count("; and 2 more malformed messages since the last such line"), 1u)
      << ::testing::PrintToString(capture.Lines());
  log::SetLevel(log::Level::Info);
}

}  // namespace
}  // namespace flowmesh::mesh
