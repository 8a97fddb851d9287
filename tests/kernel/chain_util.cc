// Forked loopback servers and client loops (see chain_util.h).
#include "tests/kernel/chain_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <vector>

namespace flowmesh::testing {
namespace {

bool SendAll(int fd, size_t n) {
  static const std::vector<char> buf(16384, 'q');
  while (n > 0) {
    ssize_t w = write(fd, buf.data(), std::min(n, buf.size()));
    if (w <= 0) return false;
    n -= static_cast<size_t>(w);
  }
  return true;
}

size_t DrainToEof(int fd) {
  char buf[16384];
  size_t total = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0) return total;
    total += static_cast<size_t>(r);
  }
}

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// One request/response exchange as a client: send, half-close, read to EOF.
bool Exchange(uint16_t port, size_t request_bytes) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a = Loopback(port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            SendAll(fd, request_bytes) && shutdown(fd, SHUT_WR) == 0;
  if (ok) DrainToEof(fd);
  close(fd);
  return ok;
}

[[noreturn]] void ServeForever(int listener, const ServerSpec& spec) {
  for (;;) {
    int c = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    DrainToEof(c);
    if (spec.upstream_port != 0) Exchange(spec.upstream_port, spec.upstream_request_bytes);
    SendAll(c, spec.reply_bytes);
    close(c);
  }
}

void BecomeDaemonLike(const std::string& comm) {
  setpgid(0, 0);
  prctl(PR_SET_NAME, comm.c_str(), 0, 0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

}  // namespace

ServerProcess::~ServerProcess() { Stop(); }

bool ServerProcess::Start(const ServerSpec& spec, std::string* error) {
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = Loopback(spec.port);
  int pipefd[2];
  if (pipe(pipefd) != 0) {
    *error = "pipe failed";
    return false;
  }
  pid_ = fork();
  if (pid_ == 0) {
    // listen() in the child: the listener's owner (what meshd attributes
    // accepted connections to) is the server process, not the test.
    BecomeDaemonLike(spec.comm);
    close(pipefd[0]);
    uint16_t port = 0;
    if (bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        listen(listener, 512) == 0) {
      socklen_t len = sizeof a;
      getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
      port = ntohs(a.sin_port);
    }
    if (write(pipefd[1], &port, sizeof port) != sizeof port || port == 0) _exit(1);
    close(pipefd[1]);
    ServeForever(listener, spec);
  }
  close(listener);
  close(pipefd[1]);
  uint16_t port = 0;
  ssize_t n = read(pipefd[0], &port, sizeof port);
  close(pipefd[0]);
  if (n != sizeof port || port == 0) {
    *error = "server " + spec.comm + " could not listen on port " + std::to_string(spec.port);
    Stop();
    return false;
  }
  port_ = port;
  return true;
}

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

ClientLoopResult StartClientLoop(const std::string& comm, uint16_t port, uint64_t count,
                                 size_t request_bytes, int max_ms) {
  ClientLoopResult r;
  int pipefd[2];
  if (pipe(pipefd) != 0) return r;
  r.pid = fork();
  if (r.pid == 0) {
    BecomeDaemonLike(comm);
    close(pipefd[0]);
    auto start = std::chrono::steady_clock::now();
    uint64_t done = 0;
    bool ok = true;
    for (uint64_t i = 0; i < count; i++) {
      if (max_ms > 0 &&
          std::chrono::steady_clock::now() - start > std::chrono::milliseconds(max_ms))
        break;
      if (!Exchange(port, request_bytes)) {
        ok = false;
        break;
      }
      done++;
    }
    (void)!write(pipefd[1], &done, sizeof done);
    _exit(ok ? 0 : 1);
  }
  close(pipefd[1]);
  r.pipe_fd = pipefd[0];
  return r;
}

ClientLoopResult FinishClientLoop(ClientLoopResult started) {
  ClientLoopResult r;
  r.pid = started.pid;
  int fd = started.pipe_fd;
  uint64_t done = 0;
  bool got = read(fd, &done, sizeof done) == sizeof done;
  close(fd);
  int status = 0;
  waitpid(started.pid, &status, 0);
  r.done = done;
  r.ok = got && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

ClientLoopResult RunClientLoop(const std::string& comm, uint16_t port, uint64_t count,
                               size_t request_bytes, int max_ms) {
  return FinishClientLoop(StartClientLoop(comm, port, count, request_bytes, max_ms));
}

}  // namespace flowmesh::testing
