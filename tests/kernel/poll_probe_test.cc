// The polling probe against the real kernel: loopback sockets made by this
// process, a listener in a child's own network namespace, and --netns lists
// of namespace files.
#include "node/probe/poll_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "node/probe/netns.h"
#include "node/probe/snapshot.h"
#include "node/probe/sock_diag.h"
#include "tests/kernel/conntrack_util.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};


uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

bool Send(int fd, size_t n) {
  std::vector<char> buf(n, 'x');
  for (size_t off = 0; off < n;) {
    ssize_t w = write(fd, buf.data() + off, n - off);
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

bool Receive(int fd, size_t n) {
  std::vector<char> buf(65536);
  while (n > 0) {
    ssize_t r = read(fd, buf.data(), std::min(n, buf.size()));
    if (r <= 0) return false;
    n -= static_cast<size_t>(r);
  }
  return true;
}

std::string OwnComm() {
  char name[17] = {};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  return name;
}

class Collector : public EventSink {
 public:
  void OnEvent(const ConnEvent& e) override { events.push_back(e); }
  // The latest event of `kind` (any kind if kind is nullopt) for this key.
  const ConnEvent* Last(std::optional<EventKind> kind, uint16_t lport, uint16_t rport) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      if ((!kind || it->kind == *kind) && it->key.lport == lport && it->key.rport == rport)
        return &*it;
    return nullptr;
  }
  std::vector<ConnEvent> events;
};

// Polls until `done` holds or three seconds pass.
void PumpUntil(PollProbe& probe, Collector& c, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    Result<int> n = probe.TransferData(c, 50);
    ASSERT_TRUE(n.ok()) << n.status().message();
  }
}

class PollProbeLoopback : public ::testing::TestWithParam<int> {};

TEST_P(PollProbeLoopback, OpenUpdateCloseWithProcessDirectionAndBytes) {
  FM_REQUIRE_ROOT();
  const int family = GetParam();
  constexpr size_t kClientSends = 3000, kServerSends = 70000;
  sockaddr_storage ss;

  Fd listener(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_GE(listener.get(), 0) << strerror(errno);
  socklen_t len = testing::LoopbackAddr(family, 0, &ss);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
  ASSERT_EQ(listen(listener.get(), 8), 0) << strerror(errno);
  const uint16_t port = LocalPort(listener.get());

  Result<uint32_t> self_ns = SelfNetnsInode();
  ASSERT_TRUE(self_ns.ok()) << self_ns.status().message();
  ProbeFilter filter;
  filter.netns = {NetnsRef{*self_ns, 0, ""}};
  filter.ports = {port};
  PollProbe probe(filter, std::chrono::milliseconds(100), "/proc");
  Status init = probe.Init();
  ASSERT_TRUE(init.ok()) << init.message();
  EXPECT_EQ(probe.Mode(), "polling");

  const uint32_t pid = static_cast<uint32_t>(getpid());
  const std::string comm = OwnComm();
  Collector c;
  PumpUntil(probe, c, [&] { return probe.Stats().polls >= 1; });
  ASSERT_NE(c.Last(EventKind::kListen, port, 0), nullptr);
  const ConnEvent listen_ev = *c.Last(EventKind::kListen, port, 0);  // a copy: c.events grows
  EXPECT_EQ(listen_ev.source, EventSource::kSeed);  // it was there before the first poll
  EXPECT_EQ(listen_ev.proc.pid, pid);
  EXPECT_EQ(listen_ev.proc.comm_view(), comm);
  EXPECT_EQ(listen_ev.key.netns, *self_ns);

  Fd client(socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  len = testing::LoopbackAddr(family, port, &ss);
  ASSERT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&ss), len), 0) << strerror(errno);
  Fd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_GE(server.get(), 0) << strerror(errno);
  const uint16_t cport = LocalPort(client.get());
  ASSERT_TRUE(Send(client.get(), kClientSends) && Receive(server.get(), kClientSends));
  ASSERT_TRUE(Send(server.get(), kServerSends) && Receive(client.get(), kServerSends));

  // The kernel counts sequence space: the active side's SYN is one byte of
  // bytes_acked. Wait until the (possibly delayed) ACKs show in a poll.
  auto settled = [&](uint16_t lport, uint16_t rport, uint64_t tx, uint64_t rx) {
    const ConnEvent* e = c.Last(std::nullopt, lport, rport);
    return e && e->counters.bytes_tx == tx && e->counters.bytes_rx == rx;
  };
  PumpUntil(probe, c, [&] {
    return settled(cport, port, kClientSends + 1, kServerSends) &&
           settled(port, cport, kServerSends, kClientSends);
  });
  const ConnEvent* a_open = c.Last(EventKind::kOpen, cport, port);
  const ConnEvent* p_open = c.Last(EventKind::kOpen, port, cport);
  ASSERT_NE(a_open, nullptr);
  ASSERT_NE(p_open, nullptr);
  EXPECT_TRUE(settled(cport, port, kClientSends + 1, kServerSends));
  EXPECT_TRUE(settled(port, cport, kServerSends, kClientSends));

  const IpAddr lo = family == AF_INET ? IpAddr::V4(127, 0, 0, 1) : *IpAddr::Parse("::1");
  for (const ConnEvent* e : {a_open, p_open}) {
    EXPECT_EQ(e->source, EventSource::kPoll);
    EXPECT_EQ(e->key.netns, *self_ns);
    EXPECT_EQ(e->key.laddr, lo);
    EXPECT_EQ(e->key.raddr, lo);
    EXPECT_EQ(e->proc.pid, pid);
    EXPECT_EQ(e->proc.comm_view(), comm);
    EXPECT_EQ(e->proc.start_ticks, listen_ev.proc.start_ticks);
  }
  EXPECT_EQ(a_open->direction, Direction::kActive);
  EXPECT_EQ(p_open->direction, Direction::kPassive);
  a_open = p_open = nullptr;  // pointers into c.events: invalid once it grows

  // Half-close: the client's FIN is acknowledged (FIN_WAIT2) and received
  // by the server (CLOSE_WAIT). A poll sees it as an UPDATE whose tcp_flags
  // say which counter now holds a FIN.
  ASSERT_EQ(shutdown(client.get(), SHUT_WR), 0) << strerror(errno);
  auto flags_are = [&](uint16_t lport, uint16_t rport, uint8_t flags) {
    const ConnEvent* e = c.Last(std::nullopt, lport, rport);
    return e && e->kind == EventKind::kUpdate && e->tcp_flags == flags;
  };
  PumpUntil(probe, c, [&] {
    return flags_are(cport, port, FM_TCP_FIN_ACKED) && flags_are(port, cport, FM_TCP_FIN_RECEIVED);
  });
  EXPECT_TRUE(flags_are(cport, port, FM_TCP_FIN_ACKED));
  EXPECT_TRUE(flags_are(port, cport, FM_TCP_FIN_RECEIVED));
  EXPECT_TRUE(settled(cport, port, kClientSends + 2, kServerSends));
  EXPECT_TRUE(settled(port, cport, kServerSends, kClientSends + 1));

  client.Reset();
  server.Reset();
  PumpUntil(probe, c, [&] {
    return c.Last(EventKind::kClose, cport, port) && c.Last(EventKind::kClose, port, cport);
  });
  const ConnEvent* a_close = c.Last(EventKind::kClose, cport, port);
  const ConnEvent* p_close = c.Last(EventKind::kClose, port, cport);
  ASSERT_NE(a_close, nullptr);
  ASSERT_NE(p_close, nullptr);
  EXPECT_EQ(a_close->direction, Direction::kActive);
  EXPECT_EQ(p_close->direction, Direction::kPassive);
  EXPECT_EQ(a_close->proc.pid, pid);
  EXPECT_EQ(p_close->proc.pid, pid);
  // The counters of the last poll that saw the connection, in sequence
  // space (the SYN, the client's FIN), and tcp_flags saying which FINs are
  // in them, so the payload comes out exact.
  EXPECT_EQ(a_close->counters.bytes_tx, kClientSends + 2);
  EXPECT_EQ(p_close->counters.bytes_rx, kClientSends + 1);
  EXPECT_EQ(a_close->tcp_flags, FM_TCP_FIN_ACKED);
  EXPECT_EQ(p_close->tcp_flags, FM_TCP_FIN_RECEIVED);
  TcpCounters a = PayloadCounters(a_close->counters, a_close->direction, a_close->tcp_flags);
  TcpCounters p = PayloadCounters(p_close->counters, p_close->direction, p_close->tcp_flags);
  EXPECT_EQ(a.bytes_tx, kClientSends);
  EXPECT_EQ(a.bytes_rx, kServerSends);
  EXPECT_EQ(p.bytes_tx, kServerSends);
  EXPECT_EQ(p.bytes_rx, kClientSends);
  EXPECT_GT(a_close->counters.segs_out, 0u);
  EXPECT_GT(p_close->counters.segs_in, 0u);
  EXPECT_GT(a_close->counters.rtt_us, 0u);
  EXPECT_GT(a_close->duration_ns, 0u);  // opened after the first poll
  EXPECT_GT(p_close->duration_ns, 0u);

  listener.Reset();
  PumpUntil(probe, c, [&] { return c.Last(EventKind::kUnlisten, port, 0) != nullptr; });
  EXPECT_NE(c.Last(EventKind::kUnlisten, port, 0), nullptr);

  ProbeStats st = probe.Stats();
  EXPECT_GE(st.polls, 3u);
  EXPECT_EQ(st.malformed, 0u);
  EXPECT_EQ(st.events, c.events.size());
  for (const ConnEvent& e : c.events)
    EXPECT_TRUE(e.key.lport == port || e.key.rport == port) << "unfiltered event";
}

INSTANTIATE_TEST_SUITE_P(Families, PollProbeLoopback, ::testing::Values(AF_INET, AF_INET6),
                         [](const auto& info) { return info.param == AF_INET ? "IPv4" : "IPv6"; });

// A listening socket on 127.0.0.1, an ephemeral port; -1 if that failed.
int LoopbackListener(int backlog) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss;
  const socklen_t len = testing::LoopbackAddr(AF_INET, 0, &ss);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, backlog) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

TEST(SockDiagKernel, DumpFindsOwnListenerByInode) {
  // Needs no privilege: sock_diag shows every socket of our own namespace.
  Fd listener(LoopbackListener(1));
  ASSERT_GE(listener.get(), 0) << strerror(errno);
  struct stat st {};
  ASSERT_EQ(fstat(listener.get(), &st), 0);

  Result<SockDiag> diag = SockDiag::Open();
  ASSERT_TRUE(diag.ok()) << diag.status().message();
  Result<std::vector<DiagSocket>> socks = diag->Dump(AF_INET, 7);
  ASSERT_TRUE(socks.ok()) << socks.status().message();
  const DiagSocket* found = nullptr;
  for (const DiagSocket& s : *socks)
    if (s.inode == st.st_ino) found = &s;
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->state, kTcpListen);
  EXPECT_EQ(found->key.lport, LocalPort(listener.get()));
  EXPECT_EQ(found->key.laddr, IpAddr::V4(127, 0, 0, 1));
  EXPECT_EQ(found->key.netns, 7u);
  EXPECT_EQ(found->uid, geteuid());
  EXPECT_NE(found->cookie, 0u);
  EXPECT_TRUE(found->has_info);
  EXPECT_EQ(diag->malformed(), 0u);
}

TEST(SnapshotterKernel, TellsHowManyConnectionsFollowBeforeTheFirstRun) {
  FM_REQUIRE_ROOT();
  // The start-up seed sizes meshd's tables from this count (Pipeline::Reserve):
  // the kernel's own count of the namespace's TCP sockets in use (sockstat
  // and sockstat6), less its listeners. In a namespace of our own nothing
  // else is open, so the count is exact.
  testing::NatNetns nets("expect");
  std::string error;
  ASSERT_TRUE(nets.Add("a", &error)) << error;
  Fd listener(nets.Listen("a", AF_INET6, 0));  // [::]: takes IPv4 too
  ASSERT_GE(listener.get(), 0) << strerror(errno);
  const uint16_t port = testing::LocalOf(listener.get()).port;
  std::vector<std::unique_ptr<Fd>> ends;
  auto connect_from = [&](int family, const char* to) {
    auto client = std::make_unique<Fd>(nets.Socket("a", family));
    ASSERT_GE(client->get(), 0);
    ASSERT_TRUE(testing::Connect(client->get(), Endpoint{*IpAddr::Parse(to), port}));
    ends.push_back(std::move(client));
    ends.push_back(std::make_unique<Fd>(accept(listener.get(), nullptr, nullptr)));
    ASSERT_GE(ends.back()->get(), 0);
  };
  for (int i = 0; i < 5; ++i) connect_from(AF_INET, "127.0.0.1");
  for (int i = 0; i < 3; ++i) connect_from(AF_INET6, "::1");
  ProbeFilter filter;
  filter.netns = {NetnsRef{nets.Inode("a"), 0, nets.Path("a")}};
  Snapshotter snap(filter, "/proc");
  int told = 0;
  size_t expected = 0, opens = 0, runs = 0, runs_before_told = 0;
  const SnapshotExpect expect = [&](size_t n) {
    told++;
    expected = n;
    runs_before_told = runs;
  };
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    runs++;
    for (const ConnEvent& ev : events) opens += ev.kind == EventKind::kOpen;
  };
  Result<Snapshot> s = snap.Take(EventSource::kSeed, /*with_owners=*/false, &sink, &expect);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(told, 1);
  EXPECT_EQ(runs_before_told, 0u);
  // Both ends of each connection; the listener is not a connection.
  EXPECT_EQ(expected, 16u);
  EXPECT_EQ(opens, 16u);
  EXPECT_EQ(s->listeners.size(), 1u);
  EXPECT_EQ(s->netns_dumped, std::vector<uint32_t>{nets.Inode("a")});

  // Only IPv4: the count of sockstat alone (the five clients; the accepted
  // ends are IPv6 sockets of the dual-stack listener).
  ProbeFilter v4 = filter;
  v4.family = AF_INET;
  Snapshotter snap_v4(v4, "/proc");
  told = 0;
  ASSERT_TRUE(snap_v4.Take(EventSource::kSeed, false, &sink, &expect).ok());
  EXPECT_EQ(told, 1);
  EXPECT_EQ(expected, 5u);

  // A port filter keeps an unknown part of the count: nothing is told.
  ProbeFilter ported = filter;
  ported.ports = {port};
  Snapshotter snap_ported(ported, "/proc");
  told = 0;
  opens = 0;
  ASSERT_TRUE(snap_ported.Take(EventSource::kSeed, false, &sink, &expect).ok());
  EXPECT_EQ(told, 0);
  EXPECT_EQ(opens, 16u);
}

TEST(SnapshotterKernel, StreamedAndWholeSnapshotsAgree) {
  FM_REQUIRE_ROOT();
  // The sink's snapshot reads listeners and connections in two dumps, the
  // connections a datagram at a time; the poller's reads one dump whole.
  // Enough connections for several datagrams (one holds about a hundred).
  testing::NatNetns nets("stream");
  std::string error;
  ASSERT_TRUE(nets.Add("a", &error)) << error;
  Fd listener(nets.Listen("a", AF_INET, 0));
  ASSERT_GE(listener.get(), 0) << strerror(errno);
  const uint16_t port = testing::LocalOf(listener.get()).port;
  std::vector<std::unique_ptr<Fd>> ends;
  for (int i = 0; i < 300; ++i) {
    auto client = std::make_unique<Fd>(nets.Socket("a", AF_INET));
    ASSERT_GE(client->get(), 0);
    ASSERT_TRUE(testing::Connect(client->get(), Endpoint{*IpAddr::Parse("127.0.0.1"), port}));
    ends.push_back(std::move(client));
    ends.push_back(std::make_unique<Fd>(accept(listener.get(), nullptr, nullptr)));
    ASSERT_GE(ends.back()->get(), 0);
  }
  ProbeFilter filter;
  filter.netns = {NetnsRef{nets.Inode("a"), 0, nets.Path("a")}};
  Snapshotter snapshotter(filter, "/proc");
  Result<Snapshot> whole = snapshotter.Take(EventSource::kPoll, /*with_owners=*/true);
  ASSERT_TRUE(whole.ok()) << whole.status().message();
  std::vector<ConnEvent> streamed;
  size_t listens = 0;
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    for (const ConnEvent& ev : events) {
      if (ev.kind == EventKind::kListen) {
        // A namespace's listeners come before its connections.
        EXPECT_TRUE(streamed.empty());
        listens++;
      } else {
        streamed.push_back(ev);
      }
    }
  };
  Result<Snapshot> s = snapshotter.Take(EventSource::kPoll, /*with_owners=*/true, &sink);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(listens, 1u);
  ASSERT_EQ(whole->connections.size(), 600u);
  ASSERT_EQ(streamed.size(), 600u);
  auto by_key = [](const ConnEvent& a, const ConnEvent& b) {
    return std::tie(a.key.lport, a.key.rport) < std::tie(b.key.lport, b.key.rport);
  };
  std::sort(whole->connections.begin(), whole->connections.end(), by_key);
  std::sort(streamed.begin(), streamed.end(), by_key);
  size_t passive = 0;
  for (size_t i = 0; i < streamed.size(); i++) {
    const ConnEvent& a = whole->connections[i];
    const ConnEvent& b = streamed[i];
    ASSERT_EQ(a.key, b.key);
    EXPECT_EQ(a.direction, b.direction);
    EXPECT_EQ(a.proc.pid, b.proc.pid);
    EXPECT_EQ(b.proc.pid, static_cast<uint32_t>(getpid()));
    passive += b.direction == Direction::kPassive;
  }
  EXPECT_EQ(passive, 300u);
}

TEST(PollProbeNetns, SeesAListenerInAChildNamespace) {
  FM_REQUIRE_ROOT();
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe2(to_child, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(from_child, O_CLOEXEC), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // only syscalls from here on: we forked a threaded process
    prctl(PR_SET_NAME, "fm-netns-child", 0, 0, 0);
    close(to_child[1]);  // or the EOF we wait for below never comes
    close(from_child[0]);
    uint16_t port = 0;
    if (unshare(CLONE_NEWNET) == 0) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in sin{};
      sin.sin_family = AF_INET;
      if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 &&
          listen(fd, 1) == 0)
        port = LocalPort(fd);
    }
    if (write(from_child[1], &port, sizeof port) != sizeof port) _exit(1);
    char c;
    (void)!read(to_child[0], &c, 1);  // until the parent closes its end
    _exit(port ? 0 : 1);
  }
  close(to_child[0]);
  close(from_child[1]);
  Fd release(to_child[1]);
  Fd ready(from_child[0]);
  uint16_t port = 0;
  ASSERT_EQ(read(ready.get(), &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ASSERT_NE(port, 0) << "the child could not listen in a new network namespace";
  struct stat ns {};
  ASSERT_EQ(stat(("/proc/" + std::to_string(child) + "/ns/net").c_str(), &ns), 0);

  ProbeFilter filter;  // every namespace
  filter.ports = {port};
  PollProbe probe(filter, std::chrono::milliseconds(100), "/proc");
  ASSERT_TRUE(probe.Init().ok());
  Collector c;
  PumpUntil(probe, c, [&] { return probe.Stats().polls >= 1; });
  const ConnEvent* l = nullptr;
  for (const ConnEvent& e : c.events)
    if (e.kind == EventKind::kListen && e.key.netns == ns.st_ino) l = &e;
  ASSERT_NE(l, nullptr) << "no listener seen in network namespace " << ns.st_ino;
  EXPECT_EQ(l->key.lport, port);
  EXPECT_EQ(l->proc.pid, static_cast<uint32_t>(child));
  EXPECT_EQ(l->proc.comm_view(), "fm-netns-child");

  release.Reset();  // the child exits, and its namespace with it
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  PumpUntil(probe, c, [&] { return c.Last(EventKind::kUnlisten, port, 0) != nullptr; });
  const ConnEvent* gone = c.Last(EventKind::kUnlisten, port, 0);
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->key.netns, ns.st_ino);
}

// A namespace made with `ip netns add` (a bind mount under /run/netns, no
// process in it), removed at the end.
class NamedNetns {
 public:
  explicit NamedNetns(std::string name) : name_(std::move(name)) {
    ok_ = std::system(("ip netns add " + name_ + " && ip -n " + name_ + " link set lo up").c_str()) == 0;
  }
  ~NamedNetns() { (void)!std::system(("ip netns del " + name_ + " 2>/dev/null").c_str()); }
  bool ok() const { return ok_; }
  std::string path() const { return "/run/netns/" + name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// A listener on 127.0.0.1 made inside the namespace at `path` by this
// thread: the socket stays there, held by this process.
Result<int> ListenIn(const std::string& path, uint16_t* port) {
  int fd = -1;
  Status s = RunInNetns(path, 0, [&] {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        listen(fd, 1) != 0)
      return Status::FromErrno(errno, "listen");
    return Status::Ok();
  });
  if (!s.ok()) return s;
  *port = LocalPort(fd);
  return fd;
}

TEST(PollProbeNetns, DumpsEachListedNamespaceFileAndNoOther) {
  FM_REQUIRE_ROOT();
  const std::string tag = std::to_string(getpid());
  NamedNetns a("fm-kt-a-" + tag), b("fm-kt-b-" + tag);
  ASSERT_TRUE(a.ok() && b.ok());
  Result<uint32_t> ino_a = NetnsInodeOfPath(a.path());
  Result<uint32_t> ino_b = NetnsInodeOfPath(b.path());
  ASSERT_TRUE(ino_a.ok() && ino_b.ok());
  uint16_t port_a = 0, port_b = 0;
  Result<int> fd_a = ListenIn(a.path(), &port_a);
  Result<int> fd_b = ListenIn(b.path(), &port_b);
  ASSERT_TRUE(fd_a.ok() && fd_b.ok()) << fd_a.status().message() << fd_b.status().message();
  Fd hold_a(*fd_a), hold_b(*fd_b);

  ProbeFilter filter;
  Result<uint32_t> self = SelfNetnsInode();
  ASSERT_TRUE(self.ok());
  filter.netns = {NetnsRef{*self, 0, ""}, NetnsRef{*ino_a, 0, a.path()}};
  PollProbe probe(filter, std::chrono::milliseconds(100), "/proc");
  ASSERT_TRUE(probe.Init().ok());
  Collector c;
  PumpUntil(probe, c, [&] { return probe.Stats().polls >= 2; });
  int in_a = 0, in_b = 0;
  for (const ConnEvent& e : c.events) {
    if (e.kind != EventKind::kListen) continue;
    in_a += e.key.netns == *ino_a && e.key.lport == port_a;
    in_b += e.key.netns == *ino_b;
  }
  EXPECT_EQ(in_a, 1);
  EXPECT_EQ(in_b, 0) << "a namespace not listed was dumped";
  const ConnEvent* l = c.Last(EventKind::kListen, port_a, 0);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->proc.pid, static_cast<uint32_t>(getpid()));  // no process lives in a: the file was entered
}

TEST(PollProbeNetns, ANamespaceFileThatIsGoneIsSkippedAndCounted) {
  FM_REQUIRE_ROOT();
  const std::string tag = std::to_string(getpid());
  auto a = std::make_unique<NamedNetns>("fm-kt-gone-" + tag);
  ASSERT_TRUE(a->ok());
  Result<uint32_t> ino = NetnsInodeOfPath(a->path());
  ASSERT_TRUE(ino.ok());
  Result<uint32_t> self = SelfNetnsInode();
  ASSERT_TRUE(self.ok());
  ProbeFilter filter;
  filter.netns = {NetnsRef{*self, 0, ""}, NetnsRef{*ino, 0, a->path()}};
  Snapshotter snap(filter, "/proc");
  ASSERT_TRUE(snap.Init().ok());
  a.reset();  // ip netns del
  Result<Snapshot> s = snap.Take(EventSource::kPoll);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->namespaces, 1u);
  EXPECT_EQ(s->namespaces_skipped, 1u);
  // Listed alone, it is an error at start-up, naming the file.
  filter.netns = {NetnsRef{*ino, 0, "/run/netns/fm-kt-gone-" + tag}};
  Status init = Snapshotter(filter, "/proc").Init();
  EXPECT_FALSE(init.ok());
  EXPECT_NE(init.message().find("fm-kt-gone-" + tag), std::string::npos) << init.message();
}

}  // namespace
}  // namespace flowmesh
