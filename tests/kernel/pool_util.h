// tests/tools/pool.py as a child process (pooled, long-lived connections),
// optionally inside a lab host's network namespace, and the RFC 3339 times
// that meshctl's --since/--until take, for tests of windows.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace flowmesh::testing {

class PoolProcess {
 public:
  PoolProcess() = default;
  ~PoolProcess() { Stop(); }
  PoolProcess(const PoolProcess&) = delete;
  PoolProcess& operator=(const PoolProcess&) = delete;

  // Runs `pool.py args...`, inside `netns` unless it is empty.
  bool Start(std::vector<std::string> args, const std::string& netns = "");
  // The next line of its output that starts with `prefix`, or "" after the timeout.
  std::string WaitLine(const std::string& prefix,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // clients: turns pinging on or off; returns the payload bytes sent so far.
  uint64_t Toggle();
  void Stop();  // SIGKILL and reap
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_;
};

// The stats of the first node of process `comm` in `meshctl look --format
// json` output: its edge to the parent line.
struct LookEdge {
  bool found = false;
  uint64_t connections = 0, opened = 0, bytes = 0;  // bytes both ways
  bool operator==(const LookEdge&) const = default;
};
std::ostream& operator<<(std::ostream& os, const LookEdge& e);
LookEdge EdgeOf(const std::string& look_json, const std::string& comm);

int64_t RealtimeNowNs();
void SleepUntilNs(int64_t unix_ns);
// "2026-12-06T10:00:00Z": whole seconds, as --since/--until take it.
std::string Rfc3339Seconds(int64_t unix_ns);

}  // namespace flowmesh::testing
