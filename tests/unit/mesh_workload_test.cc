// Workloads in gossiped endpoint tables: a listener's unit or container
// reaches a replica and changes with it, rows of older peers have none, a
// kind this node does not know reads as none, and a huge or NUL-bearing
// field is neither sent nor read: the workload is none, the row and delta kept.
#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <gtest/gtest.h>
#include <kj/io.h>

#include "node/mesh/endpoint_table.h"
#include "node/mesh/wire.h"
#include "schema/mesh.capnp.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh::mesh {
namespace {

namespace s = ::flowmesh::schema::mesh;

IpAddr Ip(const char* s) { return *IpAddr::Parse(s); }

Workload Web() { return testing::SamplePodContainer(); }
Workload Nginx() { return testing::SampleUnit(); }

EndpointSummary Listener(uint16_t port, Workload w) {
  EndpointSummary e{Ip("10.0.0.1"), port, 100u + port, 100, "srv", "/usr/bin/srv"};
  e.workload = std::move(w);
  return e;
}

TEST(MeshWorkload, AReplicaSeesTheOwnersWorkloadAndItsChanges) {
  Interner interner;
  uint32_t owner = interner.Intern("owner"), peer = interner.Intern("peer");
  EndpointTables mine(interner, owner), theirs(interner, peer);
  auto sync = [&] {
    while (auto d = mine.DeltaFor(owner, theirs.DigestOf(owner), 1 << 20))
      ASSERT_EQ(theirs.Apply(*d, 0), EndpointTables::ApplyResult::kApplied);
  };
  ASSERT_TRUE(mine.SetLocal(1, {}, {Listener(80, Nginx()), Listener(8000, {})}, 0));
  sync();
  std::vector<EndpointSummary> got = theirs.Endpoints(owner);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].workload, Nginx());
  EXPECT_TRUE(got[1].workload.empty());

  // Only the workload changed (the container behind :8000 became known):
  // one new version.
  std::optional<TableDeltaMsg> d =
      mine.SetLocal(1, {}, {Listener(80, Nginx()), Listener(8000, Web())}, 0);
  ASSERT_TRUE(d);
  ASSERT_EQ(d->entries.size(), 1u);
  EXPECT_EQ(d->entries[0].workload.name, "api");
  EXPECT_FALSE(mine.SetLocal(1, {}, {Listener(80, Nginx()), Listener(8000, Web())}, 0));
  sync();
  EXPECT_EQ(theirs.Endpoints(owner)[1].workload.pod->ns, "shop");
}

Bytes Packed(capnp::MessageBuilder& m) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, m);
  return Bytes(out.getArray().begin(), out.getArray().end());
}

// One table reply of one listener row, its workload filled by `fill`.
Result<PacketMsg> Row(const std::function<void(s::TableEntry::Builder)>& fill) {
  capnp::MallocMessageBuilder m;
  auto d = m.initRoot<s::Packet>().initTableReply(1)[0];
  d.setOwner("o");
  d.setToVersion(1);
  auto e = d.initEntries(1)[0];
  e.setVersion(1);
  e.setAddr(kj::heapArray<kj::byte>(4).asPtr());
  e.setPort(80);
  fill(e);
  return DecodePacket(Packed(m));
}

const Workload& RowWorkload(const Result<PacketMsg>& p) {
  return std::get<TableReplyMsg>(p->primary).deltas.at(0).entries.at(0).workload;
}

TEST(MeshWorkload, RoundTripsWithoutTheCgroupPath) {
  TableDeltaMsg d{"web-1", 1, 0, 1, false, {}};
  TableEntryMsg e;
  e.version = 1;
  e.addr = Ip("10.0.0.1");
  e.port = 8000;
  e.comm = "python3";
  e.workload = Web();
  d.entries = {e};
  Result<Bytes> bytes = EncodeExchangeRequest(TablePushMsg{{d}});
  ASSERT_TRUE(bytes.ok());
  EXPECT_LE(bytes->size(), EstimateDeltaBytes(d) + 64) << "the budget's estimate holds";
  Result<ExchangeRequestMsg> back = DecodeExchangeRequest(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  Workload want = Web();
  want.cgroup.clear();
  EXPECT_EQ(std::get<TablePushMsg>(*back).deltas.at(0).entries.at(0).workload, want);
}

TEST(MeshWorkload, OlderAndNewerPeersRowsReadAsNone) {
  Result<PacketMsg> old = Row([](s::TableEntry::Builder) {});
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_TRUE(RowWorkload(old).empty());
  Result<PacketMsg> newer = Row([](s::TableEntry::Builder e) {
    e.initWorkload().setKind("vm");
    e.getWorkload().setId("i-0abc");
  });
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  EXPECT_TRUE(RowWorkload(newer).empty());
}

TEST(MeshWorkload, HugeOrNulFieldsReadAsNoneAndTheRowIsKept) {
  auto check = [](const Result<PacketMsg>& p, const char* what) {
    ASSERT_TRUE(p.ok()) << what << ": " << p.status().ToString();
    const TableEntryMsg& e = std::get<TableReplyMsg>(p->primary).deltas.at(0).entries.at(0);
    EXPECT_TRUE(e.workload.empty()) << what;
    EXPECT_EQ(e.port, 80) << what;
    EXPECT_EQ(e.comm, "srv") << what;
  };
  check(Row([](s::TableEntry::Builder e) {
          e.setComm("srv");
          e.initWorkload().setKind("container");
          e.getWorkload().setName(std::string(kMaxWorkloadBytes + 1, 'x'));
        }),
        "huge name");
  check(Row([](s::TableEntry::Builder e) {
          e.setComm("srv");
          e.initWorkload().setKind("container");
          e.getWorkload().setHasPod(true);
          e.getWorkload().setPodNamespace(std::string(300, 'n'));
        }),
        "huge namespace");
  check(Row([](s::TableEntry::Builder e) {
          e.setComm("srv");
          e.initWorkload().setKind("unit");
          e.getWorkload().setId(capnp::Text::Reader("a\0b", 3));
        }),
        "NUL in the id");
}

// A docker Name or label of up to 1 MiB: the owner keeps and sends its row
// without it, and the replica applies the delta.
TEST(MeshWorkload, AHugeNameIsSentAsNone) {
  Interner interner;
  uint32_t owner = interner.Intern("owner"), peer = interner.Intern("peer");
  EndpointTables mine(interner, owner), theirs(interner, peer);
  Workload huge = Web();
  huge.name = std::string(1 << 20, 'x');
  ASSERT_TRUE(mine.SetLocal(1, {}, {Listener(80, Nginx()), Listener(8000, huge)}, 0));
  std::optional<TableDeltaMsg> d = mine.DeltaFor(owner, theirs.DigestOf(owner), 64 << 10);
  ASSERT_TRUE(d);
  ASSERT_EQ(d->entries.size(), 2u) << "both rows fit the budget";
  Result<Bytes> bytes = EncodeExchangeRequest(TablePushMsg{{*d}});
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  Result<ExchangeRequestMsg> back = DecodeExchangeRequest(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(theirs.Apply(std::get<TablePushMsg>(*back).deltas.at(0), 0),
            EndpointTables::ApplyResult::kApplied);
  std::vector<EndpointSummary> got = theirs.Endpoints(owner);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].workload.id, "nginx.service");
  EXPECT_TRUE(got[1].workload.empty());
}

}  // namespace
}  // namespace flowmesh::mesh
