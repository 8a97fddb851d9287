// ConntrackReader against the real kernel (root): network namespaces made
// for the test, nftables DNAT and masquerade rules, real TCP connections
// through them; the NEW event, the dump and the lookup give the exact tuples,
// and the DESTROY follows the close. Also: no CAP_NET_ADMIN, a clear error.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "node/nat/conntrack.h"
#include "node/nat/nat_table.h"
#include "node/probe/netns.h"
#include "tests/kernel/conntrack_util.h"
#include "tests/kernel/kernel_test_util.h"

namespace flowmesh {
namespace {

using testing::Connect;
using testing::LocalOf;
using testing::NatNetns;
using testing::PeerOf;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { Close(); }
  void Close() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

std::unique_ptr<ConntrackReader> OpenIn(const NatNetns& nets, const std::string& ns) {
  std::unique_ptr<ConntrackReader> reader;
  Status s = RunInNetns(nets.Path(ns), 0, [&] {
    auto r = ConntrackReader::Open();
    if (!r.ok()) return r.status();
    reader = std::move(*r);
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  return reader;
}

// Drains events until one satisfies `match`, for at most `ms`; a dump every
// second evicts expired entries (the kernel sends their DESTROY then).
std::optional<CtEvent> WaitEvent(ConntrackReader& reader,
                                 const std::function<bool(const CtEvent&)>& match, int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  auto next_dump = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < end) {
    pollfd pfd{reader.fd(), POLLIN, 0};
    poll(&pfd, 1, 100);
    std::vector<CtEvent> events;
    bool lost = false;
    EXPECT_TRUE(reader.Drain(&events, 1024, &lost).ok());
    EXPECT_FALSE(lost);
    for (const CtEvent& ev : events)
      if (match(ev)) return ev;
    if (std::chrono::steady_clock::now() >= next_dump) {
      std::vector<CtEntry> ignored;
      EXPECT_TRUE(reader.Dump(&ignored).ok());
      next_dump += std::chrono::seconds(1);
    }
  }
  return std::nullopt;
}

std::optional<CtEvent> WaitDestroy(ConntrackReader& reader, const CtTuple& original) {
  // The entry expires 1 s after the close (NatNetns's timeouts); a dump
  // every second evicts it.
  return WaitEvent(
      reader,
      [&](const CtEvent& ev) {
        return ev.kind == CtEventKind::kDestroy && ev.entry.original == original;
      },
      15000);
}

std::optional<CtEntry> InDump(ConntrackReader& reader, const CtTuple& original) {
  std::vector<CtEntry> all;
  Status s = reader.Dump(&all);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (const CtEntry& e : all)
    if (e.original == original) return e;
  return std::nullopt;
}

// Client namespace c with a DNAT rule for a VIP in its output hook (the
// kube-proxy placement), server namespace s on a veth.
class ConntrackDnat : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    std::string err;
    ASSERT_TRUE(nets_.Add("c", &err)) << err;
    ASSERT_TRUE(nets_.Add("s", &err)) << err;
    auto [ic, is] = nets_.Link("c", {"10.98.0.1/24", "fd98::1/64"}, "s",
                               {"10.98.0.2/24", "fd98::2/64"}, &err);
    ASSERT_FALSE(ic.empty()) << err;
    ASSERT_TRUE(nets_.Run("c", "ip route add 10.98.250.0/24 dev " + ic +
                                   " && ip -6 route add fd98:250::/64 dev " + ic, &err))
        << err;
    ASSERT_TRUE(nets_.Nft("c", R"(
table ip fmct {
  chain out {
    type nat hook output priority -100;
    ip daddr 10.98.250.1 tcp dport 80 dnat to 10.98.0.2:8080
  }
}
table ip6 fmct6 {
  chain out {
    type nat hook output priority -100;
    ip6 daddr fd98:250::1 tcp dport 80 dnat to [fd98::2]:8080
  }
}
)", &err)) << err;
  }

  // One connection to `vip`:80 through the rule, checked end to end.
  void ThroughVip(int family, const char* vip, const char* server) {
    auto reader = OpenIn(nets_, "c");
    ASSERT_NE(reader, nullptr);
    EXPECT_EQ(reader->netns(), nets_.Inode("c"));
    Fd listener(nets_.Listen("s", AF_INET6, 8080));
    ASSERT_GE(listener.fd, 0);
    Fd client(nets_.Socket("c", family));
    ASSERT_TRUE(Connect(client.fd, Ep(vip))) << strerror(errno);
    Fd accepted(accept(listener.fd, nullptr, nullptr));
    ASSERT_GE(accepted.fd, 0);
    const Endpoint local = LocalOf(client.fd);
    const CtTuple original{local, Ep(vip)};
    const CtTuple reply{Ep(server), PeerOf(accepted.fd)};
    EXPECT_EQ(reply.dst, local);  // no SNAT here: the server sees the client as it is

    auto created = WaitEvent(
        *reader, [&](const CtEvent& ev) { return ev.entry.original == original; }, 3000);
    ASSERT_TRUE(created.has_value()) << "no NEW event for " << local.ToString();
    EXPECT_EQ(created->kind, CtEventKind::kNew);
    EXPECT_EQ(created->entry.reply, reply);
    EXPECT_EQ(created->entry.netns, nets_.Inode("c"));
    EXPECT_TRUE(created->entry.dnat());
    EXPECT_FALSE(created->entry.snat());
    EXPECT_NE(created->entry.id, 0u);

    auto dumped = InDump(*reader, original);
    ASSERT_TRUE(dumped.has_value());
    EXPECT_EQ(dumped->reply, reply);
    EXPECT_EQ(dumped->id, created->entry.id);

    auto got = reader->Get(original);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ((*got)->reply, reply);
    EXPECT_EQ((*got)->id, created->entry.id);
    auto none = reader->Get({Ep(vip), local});  // no such connection
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none->has_value());

    // What the aggregator will do with it: the client's socket finds the
    // server behind the VIP, the server's socket finds the VIP.
    NatTable table;
    table.Apply(*created, 0);
    auto claimed = table.ClaimOriginal(local, Ep(vip));
    ASSERT_TRUE(claimed.has_value());
    EXPECT_EQ(claimed->reply.src, Ep(server));
    ASSERT_TRUE(table.ClaimReply(Ep(server), PeerOf(accepted.fd)).has_value());

    client.Close();
    accepted.Close();
    auto destroyed = WaitDestroy(*reader, original);
    ASSERT_TRUE(destroyed.has_value()) << "no DESTROY for " << local.ToString();
    EXPECT_EQ(destroyed->entry.reply, reply);
    EXPECT_EQ(destroyed->entry.id, created->entry.id);
    EXPECT_FALSE(InDump(*reader, original).has_value());
    auto gone = reader->Get(original);
    ASSERT_TRUE(gone.ok());
    EXPECT_FALSE(gone->has_value());
    const ConntrackStats stats = reader->Stats();
    EXPECT_GE(stats.events, 2u);
    EXPECT_EQ(stats.malformed, 0u);
    EXPECT_EQ(stats.overflows, 0u);
    EXPECT_GE(stats.gets, 3u);
  }

  NatNetns nets_{"d"};
};

TEST_F(ConntrackDnat, Ipv4VipToServer) {
  if (IsSkipped() || HasFatalFailure()) return;
  ThroughVip(AF_INET, "10.98.250.1:80", "10.98.0.2:8080");
}

TEST_F(ConntrackDnat, Ipv6VipToServer) {
  if (IsSkipped() || HasFatalFailure()) return;
  ThroughVip(AF_INET6, "[fd98:250::1]:80", "[fd98::2]:8080");
}

// An entry the kernel made without its event cache never gets a DESTROY
// event: only a later dump shows it gone (NatTable::Replace notices). With
// net.netfilter.nf_conntrack_events=2 (the default) that is every entry made
// while no conntrack event listener existed anywhere on the host (the
// kernel's nf_ctnetlink_has_listener is global: "can't be pernet due to
// NETLINK_LISTEN_ALL_NSID"), e.g. those open before meshd started. Another
// listener on the host (a lab's meshd) would give this entry its cache, so
// the test makes it with events off (0), which has the same effect, then
// turns them on for the reader.
TEST_F(ConntrackDnat, EntryOlderThanTheReaderIsGoneOnlyFromTheDump) {
  if (IsSkipped() || HasFatalFailure()) return;
  std::string err;
  ASSERT_TRUE(nets_.Run("c", "sysctl -qw net.netfilter.nf_conntrack_events=0", &err)) << err;
  Fd listener(nets_.Listen("s", AF_INET6, 8080));
  Fd client(nets_.Socket("c", AF_INET));
  ASSERT_TRUE(Connect(client.fd, Ep("10.98.250.1:80")));
  Fd accepted(accept(listener.fd, nullptr, nullptr));
  const CtTuple original{LocalOf(client.fd), Ep("10.98.250.1:80")};
  ASSERT_TRUE(nets_.Run("c", "sysctl -qw net.netfilter.nf_conntrack_events=2", &err)) << err;

  auto reader = OpenIn(nets_, "c");
  ASSERT_NE(reader, nullptr);
  std::vector<CtEntry> dump;
  ASSERT_TRUE(reader->Dump(&dump).ok());
  NatTable table;
  table.Replace(dump, 0);
  ASSERT_TRUE(table.ClaimOriginal(original.src, original.dst).has_value());

  client.Close();
  accepted.Close();
  auto destroyed = WaitEvent(
      *reader, [&](const CtEvent& ev) { return ev.entry.original == original; }, 4000);
  EXPECT_FALSE(destroyed.has_value()) << "a DESTROY for an entry made without its event cache";
  ASSERT_TRUE(reader->Dump(&dump).ok());
  table.Replace(dump, 5'000'000'000);
  table.TakeForwarded(5'000'000'000 + NatTableOptions{}.destroy_grace_ns);
  EXPECT_FALSE(table.ClaimOriginal(original.src, original.dst).has_value());
}

// A balancer namespace b between client c and backend s: DNAT in prerouting
// and masquerade toward the backend, which has no route back to the client
// network (so only the SNAT makes the connection work).
TEST(ConntrackMasquerade, BalancerSeesBothTranslations) {
  FM_REQUIRE_ROOT();
  NatNetns nets("m");
  std::string err;
  for (const char* ns : {"c", "b", "s"}) ASSERT_TRUE(nets.Add(ns, &err)) << err;
  auto [cb, bc] = nets.Link("c", {"10.98.1.1/24"}, "b", {"10.98.1.2/24"}, &err);
  ASSERT_FALSE(cb.empty()) << err;
  auto [bs, sb] = nets.Link("b", {"10.98.2.1/24"}, "s", {"10.98.2.2/24"}, &err);
  ASSERT_FALSE(bs.empty()) << err;
  ASSERT_TRUE(nets.Run("b", "sysctl -qw net.ipv4.ip_forward=1", &err)) << err;
  ASSERT_TRUE(nets.Nft("b", R"(
table ip fmct {
  chain pre {
    type nat hook prerouting priority -100;
    ip daddr 10.98.1.2 tcp dport 80 dnat to 10.98.2.2:8080
  }
  chain post {
    type nat hook postrouting priority 100;
    oifname ")" + bs + R"(" masquerade
  }
}
)", &err)) << err;
  auto reader = OpenIn(nets, "b");
  ASSERT_NE(reader, nullptr);
  Fd listener(nets.Listen("s", AF_INET, 8080));
  ASSERT_GE(listener.fd, 0);
  Fd client(nets.Socket("c", AF_INET));
  ASSERT_TRUE(Connect(client.fd, Ep("10.98.1.2:80"))) << strerror(errno);
  Fd accepted(accept(listener.fd, nullptr, nullptr));
  ASSERT_GE(accepted.fd, 0);
  const Endpoint seen_client = PeerOf(accepted.fd);
  EXPECT_EQ(seen_client.addr, Ep("10.98.2.1:1").addr);  // the balancer's address
  const CtTuple original{LocalOf(client.fd), Ep("10.98.1.2:80")};

  auto created = WaitEvent(
      *reader, [&](const CtEvent& ev) { return ev.entry.original == original; }, 3000);
  ASSERT_TRUE(created.has_value());
  EXPECT_EQ(created->entry.reply.src, Ep("10.98.2.2:8080"));
  EXPECT_EQ(created->entry.reply.dst, seen_client);
  EXPECT_TRUE(created->entry.dnat());
  EXPECT_TRUE(created->entry.snat());
  EXPECT_EQ(created->entry.netns, nets.Inode("b"));

  // No socket of b's claims it: after the grace it is a forwarded open.
  NatTableOptions opts;
  opts.claim_grace_ns = 1;
  NatTable table(opts);
  table.Apply(*created, 100);
  auto fwd = table.TakeForwarded(200);
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_FALSE(fwd[0].closed);
  EXPECT_EQ(fwd[0].entry.reply.dst, seen_client);

  client.Close();
  accepted.Close();
  auto destroyed = WaitDestroy(*reader, original);
  ASSERT_TRUE(destroyed.has_value());
  table.Apply(*destroyed, 300);
  fwd = table.TakeForwarded(300);
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_TRUE(fwd[0].closed);
}

// A reader that does not keep up: the kernel drops events for it, and
// Drain says so (lost, overflows) and goes on with what is still queued.
TEST(ConntrackOverflow, UnreadEventsOverflowAndDrainSaysSo) {
  FM_REQUIRE_ROOT();
  NatNetns nets("o");
  std::string err;
  ASSERT_TRUE(nets.Add("n", &err)) << err;
  ASSERT_TRUE(nets.LoopbackVip("n", 8080, &err)) << err;
  auto reader = OpenIn(nets, "n");
  ASSERT_NE(reader, nullptr);
  // ~16 MiB of receive buffer (8 MiB forced, doubled by the kernel) holds
  // about 14,000 events of ~1.2 KiB of skb each: 40,000 NEW overflow it.
  constexpr int kConnections = 40000;
  testing::Churn(nets.Path("n"), 8080, kConnections, 2);
  bool any_lost = false;
  uint64_t news = 0;
  for (;;) {
    std::vector<CtEvent> events;
    bool lost = false;
    ASSERT_TRUE(reader->Drain(&events, 100000, &lost).ok());
    any_lost |= lost;
    for (const CtEvent& ev : events) news += ev.kind == CtEventKind::kNew;
    if (events.empty() && !lost) break;
  }
  EXPECT_TRUE(any_lost);
  EXPECT_GE(reader->Stats().overflows, 1u);
  EXPECT_GT(news, 0u);
  EXPECT_LT(news, static_cast<uint64_t>(kConnections));
  EXPECT_EQ(reader->Stats().malformed, 0u);
  // Still usable: the next connection's event arrives.
  Fd listener(nets.Listen("n", AF_INET, 8081));
  ASSERT_TRUE(nets.Nft("n", R"(
table ip fmct2 {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.101 tcp dport 80 dnat to 127.0.0.1:8081
  }
}
)", &err)) << err;
  Fd client(nets.Socket("n", AF_INET));
  ASSERT_TRUE(Connect(client.fd, Ep("127.0.0.101:80")));
  const CtTuple original{LocalOf(client.fd), Ep("127.0.0.101:80")};
  EXPECT_TRUE(WaitEvent(*reader, [&](const CtEvent& ev) { return ev.entry.original == original; },
                        3000)
                  .has_value());
}

// Without CAP_NET_ADMIN (a root child that dropped it from its effective
// set), Open fails with PermissionDenied and names the capability.
TEST(ConntrackUnavailable, WithoutCapNetAdminOpenSaysWhy) {
  FM_REQUIRE_ROOT();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    syscall(SYS_capget, &hdr, data);
    data[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
    data[CAP_NET_ADMIN / 32].permitted &= ~(1u << (CAP_NET_ADMIN % 32));
    if (syscall(SYS_capset, &hdr, data) != 0) _exit(2);
    auto r = ConntrackReader::Open();
    std::string text = r.ok() ? std::string("opened")
                              : std::to_string(static_cast<int>(r.status().code())) + " " +
                                    r.status().message();
    (void)!write(fds[1], text.data(), text.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(text.rfind(std::to_string(static_cast<int>(Status::Code::kPermissionDenied)) + " ", 0),
            0u)
      << text;
  EXPECT_NE(text.find("Operation not permitted"), std::string::npos) << text;
  EXPECT_NE(text.find("needs CAP_NET_ADMIN"), std::string::npos) << text;
}

}  // namespace
}  // namespace flowmesh
