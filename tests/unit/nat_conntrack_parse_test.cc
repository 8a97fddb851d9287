// ParseCtMessage against messages captured from a real kernel
// (testdata/conntrack_messages.txt) and against those same messages broken
// in every way the brief lists: each break is an error, never a crash.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "node/nat/conntrack.h"
#include "tests/test_paths.h"
#include "tests/tools/conntrack_messages.h"

namespace flowmesh {
namespace {

using Bytes = std::vector<uint8_t>;

const std::map<std::string, Bytes>& Messages() {
  static const auto* m = new std::map<std::string, Bytes>(
      testing::ReadConntrackMessages(std::string(FLOWMESH_TESTDATA) + "/conntrack_messages.txt"));
  return *m;
}

// Parses a copy in a buffer aligned for nlmsghdr, as recv's buffer is.
Status Parse(const Bytes& msg, CtEvent* ev, uint32_t netns = 4026531840u) {
  std::vector<uint32_t> aligned((msg.size() + 3) / 4 + 1);
  std::memcpy(aligned.data(), msg.data(), msg.size());
  return ParseCtMessage(reinterpret_cast<const nlmsghdr*>(aligned.data()), netns, ev);
}

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

uint16_t Get16(const Bytes& b, size_t at) {
  uint16_t v;
  std::memcpy(&v, b.data() + at, 2);
  return v;
}
void Put16(Bytes& b, size_t at, uint16_t v) { std::memcpy(b.data() + at, &v, 2); }
void Put32(Bytes& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

// The offset of the attribute at `path` (top-level type, then nested
// types), or 0 when there is none.
size_t FindAttr(const Bytes& msg, std::vector<int> path) {
  size_t start = NLMSG_HDRLEN + 4;  // nfgenmsg
  size_t end = msg.size();
  size_t found = 0;
  for (int type : path) {
    found = 0;
    for (size_t at = start; at + 4 <= end;) {
      uint16_t len = Get16(msg, at);
      if (len < 4) break;
      if ((Get16(msg, at + 2) & NLA_TYPE_MASK) == type) {
        found = at;
        break;
      }
      at += NLA_ALIGN(len);
    }
    if (!found) return 0;
    start = found + 4;
    end = found + Get16(msg, found);
  }
  return found;
}

TEST(ConntrackParse, TestdataHasEveryKind) {
  for (const char* name : {"new_v4_dnat", "new_v6_dnat", "new_v4_snat", "new_v4_dnat_2",
                           "destroy_v4_dnat", "destroy_v6_dnat", "destroy_v4_snat",
                           "dump_v4_dnat"})
    EXPECT_EQ(Messages().count(name), 1u) << name;
}

TEST(ConntrackParse, NewIpv4Dnat) {
  CtEvent ev;
  ASSERT_TRUE(Parse(Messages().at("new_v4_dnat"), &ev, 77).ok());
  EXPECT_EQ(ev.kind, CtEventKind::kNew);
  const CtEntry& e = ev.entry;
  EXPECT_EQ(e.netns, 77u);
  EXPECT_EQ(e.original.src.addr, Ep("10.97.0.1:1").addr);
  EXPECT_EQ(e.original.dst, Ep("10.97.250.1:80"));
  EXPECT_EQ(e.reply.src, Ep("10.97.0.2:8080"));
  EXPECT_EQ(e.reply.dst, e.original.src);
  EXPECT_TRUE(e.dnat());
  EXPECT_FALSE(e.snat());
  EXPECT_NE(e.id, 0u);
  EXPECT_NE(e.status, 0u);
}

TEST(ConntrackParse, NewIpv6Dnat) {
  CtEvent ev;
  ASSERT_TRUE(Parse(Messages().at("new_v6_dnat"), &ev).ok());
  EXPECT_EQ(ev.kind, CtEventKind::kNew);
  EXPECT_EQ(ev.entry.original.src.addr, Ep("[fd97::1]:1").addr);
  EXPECT_EQ(ev.entry.original.dst, Ep("[fd97:250::1]:80"));
  EXPECT_EQ(ev.entry.reply.src, Ep("[fd97::2]:8080"));
  EXPECT_EQ(ev.entry.reply.dst, ev.entry.original.src);
  EXPECT_TRUE(ev.entry.dnat());
  EXPECT_FALSE(ev.entry.snat());
}

TEST(ConntrackParse, NewIpv4Snat) {
  CtEvent ev;
  ASSERT_TRUE(Parse(Messages().at("new_v4_snat"), &ev).ok());
  EXPECT_EQ(ev.entry.original.src.addr, Ep("10.97.0.1:1").addr);
  EXPECT_EQ(ev.entry.original.dst, Ep("10.97.0.2:8081"));
  EXPECT_EQ(ev.entry.reply.src, Ep("10.97.0.2:8081"));
  EXPECT_EQ(ev.entry.reply.dst.addr, Ep("10.97.0.11:1").addr);
  EXPECT_FALSE(ev.entry.dnat());
  EXPECT_TRUE(ev.entry.snat());
}

TEST(ConntrackParse, DestroyMatchesItsNewAndCarriesCounters) {
  for (const char* v : {"v4_dnat", "v6_dnat", "v4_snat"}) {
    CtEvent created, destroyed;
    ASSERT_TRUE(Parse(Messages().at(std::string("new_") + v), &created).ok()) << v;
    ASSERT_TRUE(Parse(Messages().at(std::string("destroy_") + v), &destroyed).ok()) << v;
    EXPECT_EQ(destroyed.kind, CtEventKind::kDestroy) << v;
    EXPECT_EQ(destroyed.entry.original, created.entry.original) << v;
    EXPECT_EQ(destroyed.entry.reply, created.entry.reply) << v;
    EXPECT_EQ(destroyed.entry.id, created.entry.id) << v;
    // nf_conntrack_acct=1 at capture: "hi" one way, "x" the other, plus headers.
    EXPECT_GT(destroyed.entry.bytes_orig, 0u) << v;
    EXPECT_GT(destroyed.entry.bytes_reply, 0u) << v;
  }
}

TEST(ConntrackParse, DumpReplyIsTheHeldConnection) {
  CtEvent held, dumped;
  ASSERT_TRUE(Parse(Messages().at("new_v4_dnat_2"), &held).ok());
  ASSERT_TRUE(Parse(Messages().at("dump_v4_dnat"), &dumped).ok());
  EXPECT_EQ(dumped.kind, CtEventKind::kNew);
  EXPECT_EQ(dumped.entry.original, held.entry.original);
  EXPECT_EQ(dumped.entry.reply, held.entry.reply);
  EXPECT_EQ(dumped.entry.id, held.entry.id);
  EXPECT_TRUE(dumped.entry.dnat());
}

// What the aggregator judges a forwarded connection by: the kernel confirms
// an entry (its NEW event) at the first packet, before the handshake, so NEW
// never says ASSURED; the DESTROY and a dump of an established one do; every
// one of these is translated (IPS_SRC_NAT_DONE or IPS_DST_NAT_DONE).
TEST(ConntrackParse, StatusOfNewDestroyAndDump) {
  for (const auto& [name, bytes] : Messages()) {
    CtEvent ev;
    ASSERT_TRUE(Parse(bytes, &ev).ok()) << name;
    const bool assured = ev.entry.status & IPS_ASSURED;
    EXPECT_EQ(assured, name.rfind("new_", 0) != 0) << name << " status " << ev.entry.status;
    EXPECT_TRUE(ev.entry.status & (IPS_SRC_NAT_DONE | IPS_DST_NAT_DONE)) << name;
  }
}

bool Malformed(const Status& s) { return !s.ok() && s.code() != Status::Code::kNotFound; }

// The TCP state (CTA_PROTOINFO_TCP_STATE) a dump reports for an open
// connection: the start-up dump carries in only connections not over yet.
TEST(ConntrackParse, DumpSaysTheTcpState) {
  CtEvent dumped;
  ASSERT_TRUE(Parse(Messages().at("dump_v4_dnat"), &dumped).ok());
  EXPECT_EQ(dumped.entry.tcp_state, 3);  // TCP_CONNTRACK_ESTABLISHED: the connection was held open
}

TEST(ConntrackParse, NotTcpIsNotFound) {
  Bytes m = Messages().at("new_v4_dnat");
  for (int tuple : {CTA_TUPLE_ORIG, CTA_TUPLE_REPLY}) {
    size_t at = FindAttr(m, {tuple, CTA_TUPLE_PROTO, CTA_PROTO_NUM});
    ASSERT_NE(at, 0u);
    m[at + 4] = IPPROTO_UDP;
  }
  CtEvent ev;
  EXPECT_EQ(Parse(m, &ev).code(), Status::Code::kNotFound);
}

TEST(ConntrackParse, EveryTruncationIsAnErrorOrTheSameEntry) {
  for (const auto& [name, full] : Messages()) {
    CtEvent whole;
    ASSERT_TRUE(Parse(full, &whole).ok()) << name;
    for (size_t len = 0; len < full.size(); len++) {
      Bytes m(full.begin(), full.begin() + len);
      if (len >= 4) Put32(m, 0, static_cast<uint32_t>(len));
      if (len < sizeof(nlmsghdr)) continue;  // the caller never hands less than a header
      CtEvent ev;
      Status s = Parse(m, &ev);
      // A cut between attributes after the tuples drops optional ones only.
      if (s.ok()) {
        EXPECT_EQ(ev.entry.original, whole.entry.original) << name << " cut at " << len;
        EXPECT_EQ(ev.entry.reply, whole.entry.reply) << name << " cut at " << len;
      }
    }
    // Cut in the middle of the original tuple: an error.
    size_t orig = FindAttr(full, {CTA_TUPLE_ORIG});
    Bytes m(full.begin(), full.begin() + orig + 10);
    Put32(m, 0, static_cast<uint32_t>(m.size()));
    CtEvent ev;
    EXPECT_TRUE(Malformed(Parse(m, &ev))) << name;
    // Shorter than nlmsghdr + nfgenmsg.
    Bytes h(full.begin(), full.begin() + 18);
    Put32(h, 0, 18);
    EXPECT_TRUE(Malformed(Parse(h, &ev))) << name;
  }
}

TEST(ConntrackParse, BadAttributeLengths) {
  const Bytes& full = Messages().at("new_v4_dnat");
  CtEvent ev;
  {  // CTA_ID of 2 bytes where a u32 belongs
    Bytes m = full;
    size_t at = FindAttr(m, {CTA_ID});
    ASSERT_NE(at, 0u);
    Put16(m, at, 6);
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  {  // a port of 4 bytes: the next attribute lands inside it
    Bytes m = full;
    size_t at = FindAttr(m, {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_SRC_PORT});
    ASSERT_NE(at, 0u);
    Put16(m, at, 8);
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  {  // an IPv4 address of 3 bytes
    Bytes m = full;
    size_t at = FindAttr(m, {CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V4_SRC});
    ASSERT_NE(at, 0u);
    Put16(m, at, 7);
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  {  // nla_len below the attribute header
    Bytes m = full;
    Put16(m, FindAttr(m, {CTA_TUPLE_ORIG}), 2);
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
}

TEST(ConntrackParse, HugeLengthsAndNestedOverrun) {
  const Bytes& full = Messages().at("new_v6_dnat");
  CtEvent ev;
  {  // the first attribute claims 65535 bytes
    Bytes m = full;
    Put16(m, FindAttr(m, {CTA_TUPLE_ORIG}), 0xffff);
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  {  // the address nest runs past its tuple (but not past the message)
    Bytes m = full;
    size_t ip = FindAttr(m, {CTA_TUPLE_ORIG, CTA_TUPLE_IP});
    ASSERT_NE(ip, 0u);
    Put16(m, ip, static_cast<uint16_t>(Get16(m, ip) + 16));
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  {  // an address inside the nest runs past the nest
    Bytes m = full;
    size_t a = FindAttr(m, {CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V6_DST});
    ASSERT_NE(a, 0u);
    Put16(m, a, static_cast<uint16_t>(Get16(m, a) + 8));
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
}

TEST(ConntrackParse, MissingPartsAndWrongFamily) {
  const Bytes& full = Messages().at("new_v4_dnat");
  CtEvent ev;
  for (std::vector<int> path : std::vector<std::vector<int>>{
           {CTA_TUPLE_ORIG},
           {CTA_TUPLE_REPLY},
           {CTA_TUPLE_ORIG, CTA_TUPLE_IP},
           {CTA_TUPLE_REPLY, CTA_TUPLE_PROTO},
           {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_DST},
           {CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM},
           {CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_DST_PORT}}) {
    Bytes m = full;
    size_t at = FindAttr(m, path);
    ASSERT_NE(at, 0u);
    Put16(m, at + 2, static_cast<uint16_t>(Get16(m, at + 2) & NLA_F_NESTED));  // type 0: unknown
    EXPECT_TRUE(Malformed(Parse(m, &ev))) << "without " << path.back() << " at depth "
                                          << path.size();
  }
  for (uint8_t family : {uint8_t{AF_UNSPEC}, uint8_t{AF_UNIX}, uint8_t{AF_INET6}}) {
    Bytes m = full;
    m[NLMSG_HDRLEN] = family;  // nfgen_family; IPv6 has no V6 addresses here
    EXPECT_TRUE(Malformed(Parse(m, &ev))) << int{family};
  }
  {  // another nfnetlink subsystem, and another conntrack message type
    Bytes m = full;
    Put16(m, 4, static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK_EXP << 8) | 0));
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
    Put16(m, 4, static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS));
    EXPECT_TRUE(Malformed(Parse(m, &ev)));
  }
  EXPECT_TRUE(Malformed(ParseCtMessage(nullptr, 0, &ev)));
}

}  // namespace
}  // namespace flowmesh
