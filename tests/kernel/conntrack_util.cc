// Namespaces, veths and nftables rules for the conntrack tests and bench.
#include "tests/kernel/conntrack_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "node/probe/netns.h"

namespace flowmesh::testing {

int Sh(const std::string& cmd, std::string* out) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  std::string text;
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  int status = pclose(p);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

NatNetns::NatNetns(const std::string& tag)
    : prefix_("fmct" + std::to_string(getpid()) + tag) {}

NatNetns::~NatNetns() {
  for (const std::string& ns : made_) Sh("ip netns del " + ns);
}

bool NatNetns::Add(const std::string& name, std::string* error) {
  std::string out;
  if (Sh("ip netns add " + Full(name), &out) != 0) {
    *error = "ip netns add " + Full(name) + ": " + out;
    return false;
  }
  made_.push_back(Full(name));
  std::string cmd = "ip link set lo up";
  for (const char* state : {"time_wait", "close", "fin_wait", "close_wait", "last_ack"})
    cmd += std::string(" && sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_") + state + "=1";
  return Run(name, cmd, error);
}

std::pair<std::string, std::string> NatNetns::Link(const std::string& a,
                                                   const std::vector<std::string>& a_addrs,
                                                   const std::string& b,
                                                   const std::vector<std::string>& b_addrs,
                                                   std::string* error) {
  // Interface names stay within IFNAMSIZ (15): the pid's last digits and a count.
  const std::string base = "ct" + std::to_string(getpid() % 100000) + "x" + std::to_string(links_++);
  const std::string ia = base + "a", ib = base + "b";
  std::string out;
  if (Sh("ip link add " + ia + " netns " + Full(a) + " type veth peer name " + ib + " netns " +
             Full(b),
         &out) != 0) {
    *error = "veth " + ia + "/" + ib + ": " + out;
    return {};
  }
  auto setup = [&](const std::string& ns, const std::string& dev,
                   const std::vector<std::string>& addrs) {
    std::string cmd = "ip link set " + dev + " up";
    for (const std::string& addr : addrs)
      cmd += " && ip addr add " + addr + " dev " + dev +
             (addr.find(':') != std::string::npos ? " nodad" : "");
    return Run(ns, cmd, error);
  };
  if (!setup(a, ia, a_addrs) || !setup(b, ib, b_addrs)) return {};
  return {ia, ib};
}

bool NatNetns::Run(const std::string& name, const std::string& cmd, std::string* error) {
  std::string out;
  if (Sh("ip netns exec " + Full(name) + " sh -c '" + cmd + "'", &out) != 0) {
    *error = "in " + Full(name) + ": " + cmd + ": " + out;
    return false;
  }
  return true;
}

bool NatNetns::Nft(const std::string& name, const std::string& ruleset, std::string* error) {
  char path[] = "/tmp/fmct-nft-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return false;
  bool wrote = write(fd, ruleset.data(), ruleset.size()) == static_cast<ssize_t>(ruleset.size());
  close(fd);
  bool ok = wrote && Run(name, std::string("nft -f ") + path, error);
  unlink(path);
  return ok;
}

bool NatNetns::LoopbackVip(const std::string& name, uint16_t port, std::string* error) {
  return Nft(name,
             "table ip fmctvip {\n chain out {\n  type nat hook output priority -100;\n"
             "  ip daddr 127.0.0.100 tcp dport 80 dnat to 127.0.0.1:" + std::to_string(port) +
                 "\n }\n}\n",
             error);
}

std::string NatNetns::Path(const std::string& name) const { return "/var/run/netns/" + Full(name); }

uint32_t NatNetns::Inode(const std::string& name) const {
  struct stat st {};
  return stat(Path(name).c_str(), &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

int NatNetns::Socket(const std::string& name, int family) const {
  int fd = -1;
  Status s = RunInNetns(Path(name), 0, [&] {
    fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? Status::FromErrno(errno, "socket") : Status::Ok();
  });
  return s.ok() ? fd : -1;
}

int NatNetns::Listen(const std::string& name, int family, uint16_t port) const {
  int fd = Socket(name, family);
  if (fd < 0) return -1;
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    len = sizeof *a;
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

namespace {

Endpoint FromSockaddr(const sockaddr_storage& ss) {
  Endpoint e;
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    e.addr = IpAddr::FromRaw(AF_INET6, a->sin6_addr.s6_addr);
    e.port = ntohs(a->sin6_port);
  } else if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    e.addr = IpAddr::V4(a->sin_addr.s_addr);
    e.port = ntohs(a->sin_port);
  }
  return e;
}

}  // namespace

Endpoint LocalOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return FromSockaddr(ss);
}

Endpoint PeerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return FromSockaddr(ss);
}

bool Connect(int fd, const Endpoint& to) {
  sockaddr_storage ss{};
  socklen_t len;
  if (to.addr.family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    std::memcpy(a->sin6_addr.s6_addr, to.addr.bytes.data(), 16);
    a->sin6_port = htons(to.port);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    std::memcpy(&a->sin_addr.s_addr, to.addr.bytes.data(), 4);
    a->sin_port = htons(to.port);
    len = sizeof *a;
  }
  return connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
}

namespace {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

bool EnterNetns(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && setns(fd, CLONE_NEWNET) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

}  // namespace

int64_t Churn(const std::string& ns, uint16_t port, int total, int threads) {
  std::atomic<bool> stop{false};
  std::thread server([&] {
    EnterNetns(ns);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(l, 4096);
    while (!stop) {
      pollfd p{l, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept(l, nullptr, nullptr);
      if (c < 0) continue;
      (void)!write(c, "x", 1);
      close(c);
    }
    close(l);
  });
  usleep(100'000);
  const int64_t start = MonotonicNs();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; t++) {
    clients.emplace_back([&, t] {
      EnterNetns(ns);
      sockaddr_in vip{};
      vip.sin_family = AF_INET;
      vip.sin_port = htons(80);
      inet_pton(AF_INET, "127.0.0.100", &vip.sin_addr);
      for (int i = t; i < total; i += threads) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c, reinterpret_cast<sockaddr*>(&vip), sizeof vip) == 0) {
          char b;
          (void)!read(c, &b, 1);
          linger lg{1, 0};
          setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(c);
      }
    });
  }
  for (auto& c : clients) c.join();
  const int64_t wall = MonotonicNs() - start;
  stop = true;
  server.join();
  return wall;
}

}  // namespace flowmesh::testing
