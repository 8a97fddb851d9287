// Forked client/server pairs for the kernel tests.
#include "tests/kernel/traffic_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace flowmesh::testing {
namespace {


uint16_t PortOf(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int rc = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0) return 0;
  return ntohs(ss.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                       : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
}

bool WriteAll(int fd, size_t n) {
  std::vector<char> buf(16384, 'x');
  while (n > 0) {
    ssize_t w = write(fd, buf.data(), std::min(n, buf.size()));
    if (w <= 0) return false;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadExactly(int fd, size_t n) {
  std::vector<char> buf(16384);
  while (n > 0) {
    ssize_t r = read(fd, buf.data(), std::min(n, buf.size()));
    if (r <= 0) return false;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void WaitForEof(int fd) {
  char c;
  while (read(fd, &c, 1) > 0) {
  }
}

void Name(const std::string& comm) { prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0); }

bool WaitChild(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Child: listen, report the port, serve exactly one connection.
[[noreturn]] void ServerMain(const TrafficSpec& spec, int report_fd) {
  Name(spec.server_comm);
  if (!spec.server_cgroup.empty() && !JoinCgroup(spec.server_cgroup)) _exit(15);
  int ls = socket(spec.family, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss;
  socklen_t len = LoopbackAddr(spec.family, spec.port, &ss);
  if (bind(ls, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(ls, 16) != 0) _exit(10);
  uint16_t port = PortOf(ls, false);
  if (write(report_fd, &port, sizeof port) != sizeof port) _exit(11);
  int c = accept(ls, nullptr, nullptr);
  if (c < 0) _exit(12);
  if (!ReadExactly(c, spec.client_sends)) _exit(13);
  if (!WriteAll(c, spec.server_sends)) _exit(14);
  WaitForEof(c);
  close(c);
  close(ls);
  _exit(0);
}

// Child: connect, exchange, optionally wait for the go-ahead, close.
[[noreturn]] void ClientMain(const TrafficSpec& spec, uint16_t port, int report_fd, int go_fd) {
  Name(spec.client_comm);
  if (!spec.client_cgroup.empty() && !JoinCgroup(spec.client_cgroup)) _exit(25);
  int s = socket(spec.family, SOCK_STREAM, 0);
  sockaddr_storage ss;
  socklen_t len = LoopbackAddr(spec.family, port, &ss);
  if (connect(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) _exit(20);
  if (!WriteAll(s, spec.client_sends)) _exit(21);
  if (!ReadExactly(s, spec.server_sends)) _exit(22);
  uint16_t local = PortOf(s, false);
  if (write(report_fd, &local, sizeof local) != sizeof local) _exit(23);
  if (spec.hold_ms > 0) usleep(static_cast<useconds_t>(spec.hold_ms) * 1000);
  if (go_fd >= 0) {
    char c;
    if (read(go_fd, &c, 1) < 0) _exit(24);
  }
  close(s);
  _exit(0);
}

TrafficResult Start(const TrafficSpec& spec, int* go_write_fd) {
  TrafficResult r;
  int sp[2], cp[2], go[2] = {-1, -1};
  if (pipe(sp) != 0 || pipe(cp) != 0) return {.error = "pipe failed"};
  if (go_write_fd && pipe(go) != 0) return {.error = "pipe failed"};
  r.server_pid = fork();
  if (r.server_pid == 0) ServerMain(spec, sp[1]);
  if (read(sp[0], &r.server_port, sizeof r.server_port) != sizeof r.server_port) {
    r.error = "server did not start";
    return r;
  }
  r.client_pid = fork();
  if (r.client_pid == 0) ClientMain(spec, r.server_port, cp[1], go[0]);
  if (read(cp[0], &r.client_port, sizeof r.client_port) != sizeof r.client_port) {
    r.error = "client failed to exchange data";
    return r;
  }
  for (int fd : {sp[0], sp[1], cp[0], cp[1], go[0]})
    if (fd >= 0) close(fd);
  if (go_write_fd) *go_write_fd = go[1];
  r.ok = true;
  return r;
}

}  // namespace

TrafficResult RunTraffic(const TrafficSpec& spec) {
  TrafficResult r = Start(spec, nullptr);
  bool client_ok = r.client_pid > 0 && WaitChild(r.client_pid);
  bool server_ok = r.server_pid > 0 && WaitChild(r.server_pid);
  if (r.ok && !(client_ok && server_ok)) {
    r.ok = false;
    r.error = "a traffic child failed";
  }
  return r;
}

namespace {
std::vector<std::pair<pid_t, int>> g_held;  // client pid -> go pipe
}

TrafficResult StartHeldTraffic(const TrafficSpec& spec) {
  int go = -1;
  TrafficResult r = Start(spec, &go);
  if (r.ok) g_held.emplace_back(r.client_pid, go);
  return r;
}

bool FinishTraffic(TrafficResult& t) {
  for (auto it = g_held.begin(); it != g_held.end(); ++it) {
    if (it->first != t.client_pid) continue;
    ssize_t w = write(it->second, "g", 1);
    close(it->second);
    g_held.erase(it);
    if (w != 1) return false;
    break;
  }
  bool ok = WaitChild(t.client_pid);
  return WaitChild(t.server_pid) && ok;
}

int RunInNewNetns(const std::string& name, int (*fn)()) {
  pid_t pid = fork();
  if (pid == 0) {
    Name(name);
    if (unshare(CLONE_NEWNET) != 0) _exit(30);
    if (system("ip link set lo up") != 0) _exit(31);
    _exit(fn());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

bool JoinCgroup(const std::string& dir) {
  const std::string procs = dir + "/cgroup.procs";
  int fd = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const std::string pid = std::to_string(getpid());
  const bool ok = write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
  close(fd);
  return ok;
}

socklen_t LoopbackAddr(int family, uint16_t port, sockaddr_storage* ss) {
  std::memset(ss, 0, sizeof *ss);
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sizeof *sin;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_addr = in6addr_loopback;
  return sizeof *sin6;
}

uint16_t FreePort(int family) {
  int s = socket(family, SOCK_STREAM, 0);
  sockaddr_storage ss;
  socklen_t len = LoopbackAddr(family, 0, &ss);
  bind(s, reinterpret_cast<sockaddr*>(&ss), len);
  uint16_t port = PortOf(s, false);
  close(s);
  return port;
}

Loopback::Loopback() {
  // CLOEXEC: a meshd the test starts afterwards must not inherit the
  // listener, or it owns it in /proc too and gets its connections.
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
  listen(listen_fd_, 1024);
  port_ = PortOf(listen_fd_, false);
}

Loopback::~Loopback() {
  CloseHeld();
  close(listen_fd_);
}

bool Loopback::Connect(int* client, int* server) {
  *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_);
  if (connect(*client, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(*client);
    return false;
  }
  *server = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (*server < 0) close(*client);
  return *server >= 0;
}

bool Loopback::Hold(int n) {
  for (int i = 0; i < n; i++) {
    int c, s;
    if (!Connect(&c, &s)) return false;
    held_.emplace_back(c, s);
  }
  return true;
}

std::set<uint16_t> Loopback::HeldClientPorts() const {
  std::set<uint16_t> out;
  for (auto [c, s] : held_) out.insert(PortOf(c, false));
  return out;
}

void Loopback::CloseHeld() {
  for (auto [c, s] : held_) {
    close(c);
    close(s);
  }
  held_.clear();
}

bool Loopback::Churn(int n) {
  for (int i = 0; i < n; i++) {
    int c, s;
    if (!Connect(&c, &s)) return false;
    close(c);
    close(s);
  }
  return true;
}

}  // namespace flowmesh::testing
