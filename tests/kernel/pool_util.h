// tests/tools/pool.py as a child process (pooled, long-lived connections),
// optionally inside a lab host's network namespace, and what tests of windows
// read from look's JSON.
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
  uint64_t connections = 0, opened = 0, bytes = 0, segs = 0;  // bytes and segments both ways
  bool operator==(const LookEdge&) const = default;
};
std::ostream& operator<<(std::ostream& os, const LookEdge& e);
LookEdge EdgeOf(const std::string& look_json, const std::string& comm);

// Sleeps until the realtime clock reads `unix_ns` (RealtimeNs, node/common/clock.h).
void SleepUntilNs(int64_t unix_ns);

}  // namespace flowmesh::testing
