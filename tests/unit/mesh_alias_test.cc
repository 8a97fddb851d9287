// NAT aliases in the endpoint tables: versioned, deleted, reconciled and
// collected as the other rows are; on the wire both ways, validated, and
// invisible to a peer that predates them.
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include "node/mesh/endpoint_table.h"
#include "node/mesh/wire.h"
#include "node/mesh/wire_convert.h"
#include "schema/mesh.capnp.h"

namespace flowmesh::mesh {
namespace {

namespace s = ::flowmesh::schema::mesh;
constexpr int64_t kSec = 1'000'000'000;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

AliasSummary Published() {
  return {Ep("10.213.0.8:9090"), Ep("172.18.0.2:80"), false, 4242, 4240, "nginx",
          "/usr/sbin/nginx"};
}
AliasSummary Backend(const char* target) {
  return {Ep("10.213.0.9:8000"), Ep(target), true, 0, 0, "", ""};
}

class MeshAliasTable : public ::testing::Test {
 protected:
  Interner interner_;
  uint32_t owner_ = interner_.Intern("owner");
  uint32_t peer_ = interner_.Intern("peer");
  EndpointTables mine_{interner_, owner_};
  EndpointTables theirs_{interner_, peer_};
  std::vector<EndpointSummary> listener_ = {
      {*IpAddr::Parse("172.18.0.2"), 80, 4242, 4240, "nginx", "/usr/sbin/nginx"}};

  void Sync() {
    while (auto d = mine_.DeltaFor(owner_, theirs_.DigestOf(owner_), 1 << 20))
      ASSERT_EQ(theirs_.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
  }
};

TEST_F(MeshAliasTable, AliasesAreRowsOfTheirOwnKeyedByFrontAndTarget) {
  auto d = mine_.SetLocal(1, {}, listener_, 0,
                          {Published(), Backend("10.213.0.3:8000"), Backend("10.213.0.4:8000")});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->to_version, 4u) << "one listener, three aliases (one per backend)";
  EXPECT_FALSE(mine_.SetLocal(1, {}, listener_, 0,
                              {Backend("10.213.0.4:8000"), Published(), Backend("10.213.0.3:8000")}))
      << "same set in another order: no change";
  Sync();
  EXPECT_EQ(theirs_.Endpoints(owner_).size(), 1u) << "an alias is not an endpoint";
  EXPECT_EQ(theirs_.LiveEndpoints(owner_), 1u);
  EXPECT_TRUE(theirs_.Addresses(owner_).empty());
  std::vector<AliasSummary> got = theirs_.Aliases(owner_);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], Published()) << "owner process, interned, comes along";
  EXPECT_EQ(got[1], Backend("10.213.0.3:8000"));
  EXPECT_EQ(got[2], Backend("10.213.0.4:8000"));

  // A backend left the window, the published port's owner changed: a
  // tombstone and a new value, two versions, and the replica follows.
  AliasSummary restarted = Published();
  restarted.pid = 5000;
  d = mine_.SetLocal(1, {}, listener_, 0, {restarted, Backend("10.213.0.4:8000")});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->from_version, 4u);
  EXPECT_EQ(d->to_version, 6u);
  int tombstones = 0;
  for (const TableEntryMsg& e : d->entries) {
    EXPECT_TRUE(e.is_alias);
    tombstones += e.deleted;
    if (e.deleted) {
      EXPECT_EQ(e.target, Ep("10.213.0.3:8000")) << "a tombstone keeps its key";
    }
  }
  EXPECT_EQ(tombstones, 1);
  Sync();
  got = theirs_.Aliases(owner_);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].pid, 5000u);
  EXPECT_EQ(got[1], Backend("10.213.0.4:8000"));
  EXPECT_EQ(theirs_.DigestOf(owner_), mine_.DigestOf(owner_));

  // Its tombstone is collected like the others; a replica behind it gets a
  // reset with the live aliases.
  mine_.CollectTombstones(100 * kSec, 60 * kSec);
  EndpointTables behind(interner_, peer_);
  auto reset = mine_.DeltaFor(owner_, TableDigest{1, 2}, 1 << 20);
  ASSERT_TRUE(reset);
  EXPECT_TRUE(reset->reset);
  ASSERT_EQ(behind.Apply(*reset, 0), EndpointTables::ApplyResult::kApplied);
  EXPECT_EQ(behind.Aliases(owner_).size(), 2u);
  EXPECT_EQ(behind.Endpoints(owner_).size(), 1u);
}

TEST_F(MeshAliasTable, AnAliasAndAnEndpointOnTheSameAddressAndPortAreTwoRows) {
  // docker-proxy listens on the published host port too.
  std::vector<EndpointSummary> eps = {
      {*IpAddr::Parse("10.213.0.8"), 9090, 77, 77, "docker-proxy", "/usr/bin/docker-proxy"}};
  mine_.SetLocal(1, {}, eps, 0, {Published()});
  Sync();
  EXPECT_EQ(theirs_.Endpoints(owner_).size(), 1u);
  EXPECT_EQ(theirs_.Aliases(owner_).size(), 1u);
  mine_.SetLocal(1, {}, eps, 0, {});  // the alias goes, the listener stays
  Sync();
  EXPECT_EQ(theirs_.Endpoints(owner_).size(), 1u);
  EXPECT_TRUE(theirs_.Aliases(owner_).empty());
}

TableDeltaMsg RoundTrip(const TableDeltaMsg& in, capnp::MallocMessageBuilder& m) {
  wire::Set(m.initRoot<s::TableDelta>(), in);
  TableDeltaMsg out;
  Status st = wire::Read(m.getRoot<s::TableDelta>().asReader(), &out);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST(MeshAliasWire, AliasRowsRoundTripAndPeersOfBeforeSeeOnlyTombstones) {
  Interner interner;
  EndpointTables owner(interner, interner.Intern("docker-1"));
  auto d = owner.SetLocal(1, {*IpAddr::Parse("10.213.0.8")}, {}, 0,
                          {Published(), Backend("[2001:db8::3]:8000")});
  ASSERT_TRUE(d);
  d = owner.SetLocal(1, {*IpAddr::Parse("10.213.0.8")}, {}, 0, {Published()});  // a tombstone
  ASSERT_TRUE(d);
  TableDeltaMsg all = *owner.DeltaFor(interner.Intern("docker-1"), TableDigest{1, 0}, 1 << 20);
  ASSERT_EQ(all.entries.size(), 3u);  // address, alias, alias tombstone

  capnp::MallocMessageBuilder m;
  TableDeltaMsg back = RoundTrip(all, m);
  ASSERT_EQ(back.entries.size(), 3u);
  EXPECT_FALSE(back.entries[0].is_alias);
  EXPECT_TRUE(back.entries[0].is_address);
  const TableEntryMsg& pub = back.entries[1];
  EXPECT_TRUE(pub.is_alias);
  EXPECT_FALSE(pub.deleted);
  EXPECT_FALSE(pub.is_address);
  EXPECT_EQ((Endpoint{pub.addr, pub.port}), Ep("10.213.0.8:9090"));
  EXPECT_EQ(pub.target, Ep("172.18.0.2:80"));
  EXPECT_FALSE(pub.balancer);
  EXPECT_EQ(pub.pid, 4242u);
  EXPECT_EQ(pub.exe, "/usr/sbin/nginx");
  EXPECT_TRUE(back.entries[2].is_alias);
  EXPECT_TRUE(back.entries[2].deleted);
  EXPECT_EQ(back.entries[2].target, Ep("[2001:db8::3]:8000"));
  EXPECT_LE(EstimateDeltaBytes(all), 2 * 1024u);

  // A peer of before reads the fields it knows, as its ReadEntry did, and
  // applies them: the alias rows are address tombstones with a port, which
  // no live row of its has, so its views show nothing new.
  TableDeltaMsg old_view = back;
  auto entries = m.getRoot<s::TableDelta>().asReader().getEntries();
  for (size_t i = 0; i < old_view.entries.size(); i++) {
    TableEntryMsg& e = old_view.entries[i];
    e.deleted = entries[i].getDeleted();
    e.is_address = entries[i].getIsAddress();
    e.is_alias = false;
    e.target = {};
    e.balancer = false;
  }
  EXPECT_TRUE(old_view.entries[1].deleted && old_view.entries[1].is_address);
  EXPECT_NE(old_view.entries[1].port, 0) << "addresses carry port 0: no clash";
  EndpointTables old_peer(interner, interner.Intern("old-peer"));
  ASSERT_EQ(old_peer.Apply(old_view, 0), EndpointTables::ApplyResult::kApplied);
  uint32_t docker = interner.Intern("docker-1");
  EXPECT_EQ(old_peer.Addresses(docker), std::vector<IpAddr>{*IpAddr::Parse("10.213.0.8")});
  EXPECT_TRUE(old_peer.Endpoints(docker).empty());
  EXPECT_EQ(old_peer.LiveEndpoints(docker), 0u);
  EXPECT_EQ(old_peer.DigestOf(docker), owner.DigestOf(docker)) << "its versions stay in step";
}

Result<PacketMsg> AliasPacket(void (*fill)(s::TableEntry::Builder)) {
  capnp::MallocMessageBuilder m;
  auto d = m.initRoot<s::Packet>().initTableReply(1)[0];
  d.setOwner("lb-1");
  d.setToVersion(1);
  auto e = d.initEntries(1)[0];
  e.setVersion(1);
  e.setDeleted(true);
  e.setIsAddress(true);
  e.setAlias(true);
  const kj::byte vip[4] = {10, 213, 0, 9}, backend[4] = {10, 213, 0, 3};
  e.setAddr(kj::arrayPtr(vip, 4));
  e.setPort(8000);
  e.setTarget(kj::arrayPtr(backend, 4));
  e.setTargetPort(8000);
  e.setBalancer(true);
  fill(e);
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, m);
  return DecodePacket(Bytes(out.getArray().begin(), out.getArray().end()));
}

TEST(MeshAliasWire, MalformedAliasRowsAreBadValuesAndDropTheMessage) {
  ASSERT_TRUE(AliasPacket([](s::TableEntry::Builder) {}).ok());
  auto check = [](void (*fill)(s::TableEntry::Builder), const char* what) {
    Result<PacketMsg> p = AliasPacket(fill);
    ASSERT_FALSE(p.ok()) << what;
    EXPECT_EQ(CheckOf(p.status()), WireCheck::kBadValue) << what << ": " << p.status().message();
  };
  check([](s::TableEntry::Builder e) { e.setTargetPort(0); }, "target without a port");
  check([](s::TableEntry::Builder e) { e.setPort(0); }, "front without a port");
  check([](s::TableEntry::Builder e) { e.setTarget(kj::heapArray<kj::byte>(5).asPtr()); },
        "target of 5 bytes");
  static const kj::byte kZeros[16] = {};
  check([](s::TableEntry::Builder e) { e.setTarget(kj::arrayPtr(kZeros, 4)); }, "target 0.0.0.0");
  check([](s::TableEntry::Builder e) { e.setAddr(kj::arrayPtr(kZeros, 16)); }, "front ::");
  // Live to a peer of before: it would show the front as an address.
  check([](s::TableEntry::Builder e) { e.setDeleted(false); }, "not a tombstone for old peers");
  check([](s::TableEntry::Builder e) { e.setIsAddress(false); }, "an endpoint for old peers");
}

}  // namespace
}  // namespace flowmesh::mesh
