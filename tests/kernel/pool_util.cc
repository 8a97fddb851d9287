// PoolProcess: fork, exec python3 pool.py (through ip netns exec when asked),
// and read its stdout line by line with a deadline.
#include "tests/kernel/pool_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "node/common/clock.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {

bool PoolProcess::Start(std::vector<std::string> args, const std::string& netns) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  args.insert(args.begin(), {"python3", POOL_PY});
  if (!netns.empty()) args.insert(args.begin(), {"ip", "netns", "exec", netns});
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  fd_ = fds[0];
  return pid_ > 0;
}

std::string PoolProcess::WaitLine(const std::string& prefix, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (line.rfind(prefix, 0) == 0) return line;
    }
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      char chunk[256];
      ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  return "";
}

uint64_t PoolProcess::Toggle() {
  kill(pid_, SIGUSR1);
  std::string line = WaitLine("sent ");
  return line.empty() ? 0 : std::stoull(line.substr(5));
}

void PoolProcess::Stop() {
  if (pid_ > 0) {
    // ip netns exec execs python3, so pid_ is the pool itself.
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

std::ostream& operator<<(std::ostream& os, const LookEdge& e) {
  return os << (e.found ? "" : "(missing) ") << e.connections << " conns, " << e.opened
            << " opened, " << e.bytes << " bytes, " << e.segs << " segments";
}

LookEdge EdgeOf(const std::string& json, const std::string& comm) {
  LookEdge e;
  const size_t at = json.find("\"comm\": \"" + comm + "\"");
  if (at == std::string::npos) return e;
  static const std::regex stats(
      R"re("stats": \{"connections": (\d+), "opened": (\d+), "bytes_tx": (\d+), "bytes_rx": (\d+), "segs_out": (\d+), "segs_in": (\d+))re");
  std::smatch m;
  const std::string rest = json.substr(at);
  if (!std::regex_search(rest, m, stats)) return e;
  e.found = true;
  e.connections = std::stoull(m[1]);
  e.opened = std::stoull(m[2]);
  e.bytes = std::stoull(m[3]) + std::stoull(m[4]);
  e.segs = std::stoull(m[5]) + std::stoull(m[6]);
  return e;
}

void SleepUntilNs(int64_t unix_ns) {
  const int64_t d = unix_ns - RealtimeNs();
  if (d > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(d));
}

}  // namespace flowmesh::testing
