// ParseDiagMessage against netlink replies built byte for byte, as the kernel
// lays them out: nlmsghdr, inet_diag_msg, then attributes (INET_DIAG_INFO).
#include "node/probe/sock_diag.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/tcp.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

namespace flowmesh {
namespace {

using ::testing::HasSubstr;

// struct tcp_info offsets, written out so the test pins the ABI rather than
// trusting the header it checks against.
constexpr size_t kRtt = 68, kRttVar = 72, kTotalRetrans = 100, kBytesAcked = 120,
                 kBytesReceived = 128, kSegsOut = 136, kSegsIn = 140;
static_assert(offsetof(tcp_info, tcpi_rtt) == kRtt);
static_assert(offsetof(tcp_info, tcpi_rttvar) == kRttVar);
static_assert(offsetof(tcp_info, tcpi_total_retrans) == kTotalRetrans);
static_assert(offsetof(tcp_info, tcpi_bytes_acked) == kBytesAcked);
static_assert(offsetof(tcp_info, tcpi_bytes_received) == kBytesReceived);
static_assert(offsetof(tcp_info, tcpi_segs_out) == kSegsOut);
static_assert(offsetof(tcp_info, tcpi_segs_in) == kSegsIn);

constexpr uint16_t kSockDiagByFamily = 20;
constexpr uint16_t kInetDiagInfo = 2;
constexpr uint16_t kInetDiagShutdown = 8;
constexpr uint32_t kNetns = 4026531840u;

using Bytes = std::vector<uint8_t>;
using Addr = std::array<uint8_t, 16>;

template <typename T>
void Put(Bytes& b, T v) {  // host order, as netlink carries it
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &v, sizeof v);
  b.insert(b.end(), raw, raw + sizeof raw);
}
template <typename T>
void PutAt(Bytes& b, size_t off, T v) {
  if (off + sizeof v <= b.size()) std::memcpy(b.data() + off, &v, sizeof v);
}
void PutBe16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v & 0xff));
}
void Pad4(Bytes& b) {
  while (b.size() % 4) b.push_back(0);
}

Bytes Attr(uint16_t type, const Bytes& payload) {
  Bytes a;
  Put<uint16_t>(a, static_cast<uint16_t>(4 + payload.size()));
  Put<uint16_t>(a, type);
  a.insert(a.end(), payload.begin(), payload.end());
  Pad4(a);
  return a;
}

// A tcp_info of `len` bytes with known counters where they fit.
Bytes TcpInfo(size_t len) {
  Bytes info(len, 0);
  info[0] = 1;  // tcpi_state
  PutAt<uint32_t>(info, kRtt, 1234);
  PutAt<uint32_t>(info, kRttVar, 567);
  PutAt<uint32_t>(info, kTotalRetrans, 3);
  PutAt<uint64_t>(info, kBytesAcked, 0x1'0000'0001ull);  // > 4 GiB
  PutAt<uint64_t>(info, kBytesReceived, 70000);
  PutAt<uint32_t>(info, kSegsOut, 42);
  PutAt<uint32_t>(info, kSegsIn, 37);
  return info;
}

struct Spec {
  uint8_t family = AF_INET;
  uint8_t state = 1;
  Addr src{}, dst{};
  uint16_t sport = 0, dport = 0;
  uint32_t cookie_lo = 0, cookie_hi = 0;
  uint32_t uid = 0, inode = 0;
  std::vector<Bytes> attrs;
};

Bytes Message(const Spec& s) {
  Bytes b;
  Put<uint32_t>(b, 0);  // nlmsg_len, patched below
  Put<uint16_t>(b, kSockDiagByFamily);
  Put<uint16_t>(b, 2);  // NLM_F_MULTI
  Put<uint32_t>(b, 7);  // seq
  Put<uint32_t>(b, 0);  // pid
  // struct inet_diag_msg (72 bytes)
  b.push_back(s.family);
  b.push_back(s.state);
  b.push_back(0);  // timer
  b.push_back(0);  // retrans
  PutBe16(b, s.sport);
  PutBe16(b, s.dport);
  b.insert(b.end(), s.src.begin(), s.src.end());
  b.insert(b.end(), s.dst.begin(), s.dst.end());
  Put<uint32_t>(b, 0);  // if
  Put<uint32_t>(b, s.cookie_lo);
  Put<uint32_t>(b, s.cookie_hi);
  Put<uint32_t>(b, 0);  // expires
  Put<uint32_t>(b, 0);  // rqueue
  Put<uint32_t>(b, 0);  // wqueue
  Put<uint32_t>(b, s.uid);
  Put<uint32_t>(b, s.inode);
  EXPECT_EQ(b.size(), 16u + 72u);
  for (const Bytes& a : s.attrs) b.insert(b.end(), a.begin(), a.end());
  PutAt<uint32_t>(b, 0, static_cast<uint32_t>(b.size()));
  return b;
}

// Parses from a 4-byte aligned copy, as a receive buffer would hold it.
Status Parse(const Bytes& msg, DiagSocket* out) {
  std::vector<uint32_t> aligned((msg.size() + 3) / 4);
  std::memcpy(aligned.data(), msg.data(), msg.size());
  return ParseDiagMessage(reinterpret_cast<const nlmsghdr*>(aligned.data()), kNetns, out);
}

Addr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return {a, b, c, d}; }
Addr Mapped(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d};
}

TEST(ParseDiagMessage, Ipv4EstablishedWithTcpInfo) {
  Spec s;
  s.src = V4(10, 0, 0, 1);
  s.dst = V4(10, 0, 0, 2);
  s.sport = 43210;
  s.dport = 80;
  s.cookie_lo = 0x11;
  s.cookie_hi = 0x2;
  s.uid = 1000;
  s.inode = 12345;
  s.attrs = {Attr(kInetDiagInfo, TcpInfo(sizeof(tcp_info)))};
  DiagSocket d;
  Status st = Parse(Message(s), &d);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(d.key.netns, kNetns);
  EXPECT_EQ(d.key.family(), AF_INET);
  EXPECT_EQ(d.key.laddr, IpAddr::V4(10, 0, 0, 1));
  EXPECT_EQ(d.key.raddr, IpAddr::V4(10, 0, 0, 2));
  EXPECT_EQ(d.key.lport, 43210);
  EXPECT_EQ(d.key.rport, 80);
  EXPECT_EQ(d.state, kTcpEstablished);
  EXPECT_EQ(d.inode, 12345u);
  EXPECT_EQ(d.uid, 1000u);
  EXPECT_EQ(d.cookie, 0x2'0000'0011ull);
  EXPECT_TRUE(d.has_info);
  EXPECT_EQ(d.counters.bytes_tx, 0x1'0000'0001ull);
  EXPECT_EQ(d.counters.bytes_rx, 70000u);
  EXPECT_EQ(d.counters.segs_out, 42u);
  EXPECT_EQ(d.counters.segs_in, 37u);
  EXPECT_EQ(d.counters.retrans, 3u);
  EXPECT_EQ(d.counters.rtt_us, 1234u);
  EXPECT_EQ(d.counters.rttvar_us, 567u);
}

TEST(ParseDiagMessage, Ipv6ListenerAfterAnotherAttribute) {
  Spec s;
  s.family = AF_INET6;
  s.state = kTcpListen;
  s.sport = 443;
  s.inode = 777;
  s.cookie_lo = 5;
  // A 1-byte attribute first: its padding must be skipped to find the next.
  s.attrs = {Attr(kInetDiagShutdown, {0}), Attr(kInetDiagInfo, TcpInfo(sizeof(tcp_info) + 24))};
  DiagSocket d;
  Status st = Parse(Message(s), &d);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(d.key.family(), AF_INET6);
  EXPECT_TRUE(d.key.laddr.is_unspecified());
  EXPECT_EQ(d.key.laddr.ToString(), "::");
  EXPECT_EQ(d.key.lport, 443);
  EXPECT_EQ(d.key.raddr, IpAddr{});  // unset, as listener events have it
  EXPECT_EQ(d.key.rport, 0);
  EXPECT_EQ(d.state, kTcpListen);
  EXPECT_EQ(d.inode, 777u);
  EXPECT_EQ(d.cookie, 5u);
  EXPECT_TRUE(d.has_info);  // a newer kernel's longer tcp_info parses too
  EXPECT_EQ(d.counters.segs_in, 37u);
}

TEST(ParseDiagMessage, V4MappedIpv6FoldsToIpv4) {
  Spec s;
  s.family = AF_INET6;
  s.state = kTcpCloseWait;
  s.src = Mapped(192, 168, 1, 5);
  s.dst = Mapped(192, 168, 1, 9);
  s.sport = 5432;
  s.dport = 50000;
  s.inode = 99;
  DiagSocket d;
  Status st = Parse(Message(s), &d);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(d.key.family(), AF_INET);
  EXPECT_EQ(d.key.laddr, IpAddr::V4(192, 168, 1, 5));
  EXPECT_EQ(d.key.raddr, IpAddr::V4(192, 168, 1, 9));
  EXPECT_EQ(d.key.lport, 5432);
  EXPECT_EQ(d.key.rport, 50000);
  EXPECT_EQ(d.state, kTcpCloseWait);
  EXPECT_FALSE(d.has_info);  // no INET_DIAG_INFO: counters stay zero
  EXPECT_EQ(d.counters, TcpCounters{});
}

TEST(ParseDiagMessage, ShortTcpInfoFillsOnlyWhatFits) {
  Spec s;
  s.src = V4(127, 0, 0, 1);
  s.dst = V4(127, 0, 0, 1);
  s.sport = 1;
  s.dport = 2;
  // A 3.x kernel's tcp_info ends after tcpi_total_retrans (104 bytes).
  s.attrs = {Attr(kInetDiagInfo, TcpInfo(kTotalRetrans + 4))};
  DiagSocket d;
  Status st = Parse(Message(s), &d);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_TRUE(d.has_info);
  EXPECT_EQ(d.counters.rtt_us, 1234u);
  EXPECT_EQ(d.counters.rttvar_us, 567u);
  EXPECT_EQ(d.counters.retrans, 3u);
  EXPECT_EQ(d.counters.bytes_tx, 0u);
  EXPECT_EQ(d.counters.bytes_rx, 0u);
  EXPECT_EQ(d.counters.segs_out, 0u);
  EXPECT_EQ(d.counters.segs_in, 0u);

  // One byte short of bytes_received: bytes_acked fits, bytes_received not.
  s.attrs = {Attr(kInetDiagInfo, TcpInfo(kBytesReceived + 7))};
  ASSERT_TRUE(Parse(Message(s), &d).ok());
  EXPECT_EQ(d.counters.bytes_tx, 0x1'0000'0001ull);
  EXPECT_EQ(d.counters.bytes_rx, 0u);
}

TEST(ParseDiagMessage, TruncatedHeaderIsAnError) {
  Spec s;
  s.src = V4(10, 0, 0, 1);
  Bytes msg = Message(s);
  msg.resize(16 + 40);
  PutAt<uint32_t>(msg, 0, static_cast<uint32_t>(msg.size()));
  DiagSocket d;
  d.inode = 4242;
  Status st = Parse(msg, &d);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("56 bytes is shorter than"));
  EXPECT_EQ(d.inode, 4242u);  // output untouched on error

  PutAt<uint32_t>(msg, 0, 8);  // shorter than nlmsghdr itself
  EXPECT_FALSE(Parse(msg, &d).ok());
}

TEST(ParseDiagMessage, TruncatedAttributeIsAnError) {
  Spec s;
  s.src = V4(10, 0, 0, 1);
  s.attrs = {Attr(kInetDiagInfo, TcpInfo(sizeof(tcp_info)))};
  Bytes msg = Message(s);
  msg.resize(16 + 72 + 100);  // the attribute claims more than is left
  PutAt<uint32_t>(msg, 0, static_cast<uint32_t>(msg.size()));
  DiagSocket d;
  Status st = Parse(msg, &d);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("attribute 2 claims"));
  EXPECT_THAT(st.message(), HasSubstr("100 left"));

  Bytes bad = Message(s);
  PutAt<uint16_t>(bad, 16 + 72, 2);  // nla_len below its own header
  EXPECT_FALSE(Parse(bad, &d).ok());
}

TEST(ParseDiagMessage, WrongTypeOrFamilyIsAnError) {
  Spec s;
  s.family = AF_UNIX;
  DiagSocket d;
  Status st = Parse(Message(s), &d);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("address family 1"));

  s.family = AF_INET;
  Bytes msg = Message(s);
  PutAt<uint16_t>(msg, 4, 3);  // NLMSG_DONE is not a socket
  st = Parse(msg, &d);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("type 3"));
  EXPECT_FALSE(ParseDiagMessage(nullptr, kNetns, &d).ok());
}

TEST(ParseDiagMessage, NeverReadsPastNlmsgLen) {
  Spec s;
  s.family = AF_INET6;
  s.src = Mapped(10, 1, 2, 3);
  s.attrs = {Attr(kInetDiagShutdown, {1}), Attr(kInetDiagInfo, TcpInfo(sizeof(tcp_info)))};
  const Bytes full = Message(s);
  // Every prefix in a heap block of exactly that size (so ASan sees any
  // overread), each claiming its own length as nlmsg_len.
  for (size_t len = 16; len <= full.size(); len++) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len]);
    std::memcpy(buf.get(), full.data(), len);
    uint32_t nlmsg_len = static_cast<uint32_t>(len);
    std::memcpy(buf.get(), &nlmsg_len, sizeof nlmsg_len);
    DiagSocket d;
    Status st = ParseDiagMessage(reinterpret_cast<const nlmsghdr*>(buf.get()), kNetns, &d);
    if (len < 16 + 72) {
      EXPECT_FALSE(st.ok()) << len;
    }
  }
  // Garbage after the fixed header: attributes of every claimed length.
  uint32_t seed = 12345;
  for (int i = 0; i < 2000; i++) {
    Bytes junk = full;
    for (size_t j = 16 + 72; j < junk.size(); j++) {
      seed = seed * 1103515245 + 12345;
      if ((seed >> 16) % 8 == 0) junk[j] = static_cast<uint8_t>(seed >> 24);
    }
    std::unique_ptr<uint8_t[]> buf(new uint8_t[junk.size()]);
    std::memcpy(buf.get(), junk.data(), junk.size());
    DiagSocket d;
    (void)ParseDiagMessage(reinterpret_cast<const nlmsghdr*>(buf.get()), kNetns, &d);
  }
}

// A control message (NLMSG_DONE or NLMSG_ERROR) of dump `seq` carrying `err`.
Bytes Control(uint16_t type, uint32_t seq, int32_t err) {
  Bytes b;
  Put<uint32_t>(b, 20);
  Put<uint16_t>(b, type);
  Put<uint16_t>(b, 2);
  Put<uint32_t>(b, seq);
  Put<uint32_t>(b, 0);
  Put<int32_t>(b, err);
  return b;
}

Status Walk(const Bytes& datagram, std::vector<DiagSocket>* out, DumpProgress* progress) {
  std::vector<uint32_t> aligned((datagram.size() + 3) / 4);
  std::memcpy(aligned.data(), datagram.data(), datagram.size());
  return ParseDumpDatagram(
      std::span<const char>(reinterpret_cast<const char*>(aligned.data()), datagram.size()), 7, 0,
      kNetns, out, progress);
}

TEST(ParseDumpDatagram, TakesThisDumpsSocketsUntilDone) {
  Spec a;
  a.src = V4(10, 0, 0, 1);
  a.sport = 80;
  a.state = kTcpListen;
  Spec b = a;
  b.sport = 443;
  Bytes other = Message(a);
  PutAt<uint32_t>(other, 8, 6);  // an abandoned dump's reply
  Bytes datagram = Message(a);
  for (const Bytes& m : {other, Message(b), Control(3 /* NLMSG_DONE */, 7, 0)})
    datagram.insert(datagram.end(), m.begin(), m.end());
  std::vector<DiagSocket> out;
  DumpProgress progress;
  ASSERT_TRUE(Walk(datagram, &out, &progress).ok());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].key.lport, 80);
  EXPECT_EQ(out[1].key.lport, 443);
  EXPECT_TRUE(progress.done);
  EXPECT_EQ(progress.malformed, 0u);
}

TEST(ParseDumpDatagram, ADumpEndingInAnErrorSaysWhich) {
  std::vector<DiagSocket> out;
  DumpProgress progress;
  Status st = Walk(Control(2 /* NLMSG_ERROR */, 7, -ENOENT), &out, &progress);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(progress.done);
  EXPECT_EQ(progress.error, ENOENT);
}

// Found by tests/fuzz/sock_diag_fuzz: libmnl's mnl_nlmsg_ok compares the
// length as an int, so 2^31 or more passed as fitting and the walk read far
// past the datagram.
TEST(ParseDumpDatagram, ALengthOf2To31OrMoreIsNotTrusted) {
  Spec a;
  a.src = V4(10, 0, 0, 1);
  Bytes datagram = Message(a);
  PutAt<uint32_t>(datagram, 0, 0xff4b4b4bu);
  std::vector<DiagSocket> out;
  DumpProgress progress;
  EXPECT_TRUE(Walk(datagram, &out, &progress).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(progress.done);
  EXPECT_EQ(progress.malformed, 1u);  // the trailing bytes
}

// Found by tests/fuzz/sock_diag_fuzz: negating an error of INT_MIN overflowed.
TEST(ParseDumpDatagram, AnErrorThatIsNoErrnoIsAProtocolError) {
  std::vector<DiagSocket> out;
  DumpProgress progress;
  EXPECT_FALSE(Walk(Control(3, 7, INT32_MIN), &out, &progress).ok());
  EXPECT_EQ(progress.error, EPROTO);
}

TEST(TcpStateName, NamesAsSsDoes) {
  EXPECT_EQ(TcpStateName(kTcpEstablished), "ESTABLISHED");
  EXPECT_EQ(TcpStateName(kTcpListen), "LISTEN");
  EXPECT_EQ(TcpStateName(kTcpNewSynRecv), "NEW_SYN_RECV");
  EXPECT_EQ(TcpStateName(0), "UNKNOWN");
  EXPECT_EQ(TcpStateName(200), "UNKNOWN");
}

}  // namespace
}  // namespace flowmesh
