// Long-running forked servers and client loops for the history tests: a
// server that answers each connection (optionally after calling an upstream
// server itself), so a client -> app -> store chain runs on loopback with
// known processes, connection counts and bytes. Each child is its own
// process group, as a real daemon is.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace flowmesh::testing {

struct ServerSpec {
  std::string comm = "fm-server";
  uint16_t port = 0;           // 0 = a free port
  size_t reply_bytes = 1000;   // sent to each client after its request ended
  uint16_t upstream_port = 0;  // nonzero: for each client, first call this loopback port
  size_t upstream_request_bytes = 0;
};

class ServerProcess {
 public:
  ServerProcess() = default;
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Forks, listens on 127.0.0.1, returns once it listens.
  bool Start(const ServerSpec& spec, std::string* error);
  void Stop();  // SIGKILL and reap
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

struct ClientLoopResult {
  pid_t pid = 0;
  uint64_t done = 0;  // connections completed
  bool ok = false;
  int pipe_fd = -1;  // a started loop reports its count here
};

// A child named `comm` (own process group) that makes `count` connections
// one after the other to 127.0.0.1:port, each sending request_bytes, then
// reading the reply to EOF; stops early after `max_ms` (0 = no limit).
// Waits for it and returns how many completed.
ClientLoopResult RunClientLoop(const std::string& comm, uint16_t port, uint64_t count,
                               size_t request_bytes, int max_ms = 0);

// The same, started in the background; FinishClientLoop waits for it.
ClientLoopResult StartClientLoop(const std::string& comm, uint16_t port, uint64_t count,
                                 size_t request_bytes, int max_ms);
ClientLoopResult FinishClientLoop(ClientLoopResult started);

}  // namespace flowmesh::testing
