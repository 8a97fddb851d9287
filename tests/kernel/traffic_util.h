// Real TCP traffic for kernel tests: a server and a client, each a forked
// child with a known name, exchanging a known number of bytes over loopback.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace flowmesh::testing {

struct TrafficSpec {
  int family = 2;                  // AF_INET or AF_INET6
  std::string server_comm = "fm-server";
  std::string client_comm = "fm-client";
  size_t client_sends = 3000;      // bytes client -> server
  size_t server_sends = 70000;     // bytes server -> client
  int hold_ms = 0;                 // keep the connection open this long after the exchange
  uint16_t port = 0;               // 0 = any free port
  // A cgroup v2 directory ("/sys/fs/cgroup/unified/fmtest-1/srv") each child
  // moves itself into before it listens or connects; "" = stay in ours.
  std::string server_cgroup;
  std::string client_cgroup;
};

struct TrafficResult {
  pid_t server_pid = 0;
  pid_t client_pid = 0;
  uint16_t server_port = 0;
  uint16_t client_port = 0;
  bool ok = false;
  std::string error;
};

// Runs one connection to completion (both children exited 0).
TrafficResult RunTraffic(const TrafficSpec& spec);

// Starts the exchange and returns once the connection is established and the
// bytes are exchanged; the connection stays open until FinishTraffic.
TrafficResult StartHeldTraffic(const TrafficSpec& spec);
bool FinishTraffic(TrafficResult& t);

// Runs `fn` in a child process inside a fresh network namespace with lo up.
// Returns the child's exit status (0 = ok).
int RunInNewNetns(const std::string& name, int (*fn)());

// Fills `ss` with the loopback address of `family` and `port`; returns its length.
socklen_t LoopbackAddr(int family, uint16_t port, sockaddr_storage* ss);

// Moves the calling process into the cgroup v2 directory `dir` (writes its
// pid to cgroup.procs); false on error.
bool JoinCgroup(const std::string& dir);

// A free TCP port on loopback.
uint16_t FreePort(int family);

// A listener on 127.0.0.1 in this process and connections to it, both ends
// held here: many connections fast, without a process per connection.
class Loopback {
 public:
  Loopback();
  ~Loopback();
  Loopback(const Loopback&) = delete;
  Loopback& operator=(const Loopback&) = delete;
  uint16_t port() const { return port_; }
  // One connection, established on both ends.
  bool Connect(int* client, int* server);
  // Opens n connections and keeps them open until CloseHeld.
  bool Hold(int n);
  std::set<uint16_t> HeldClientPorts() const;
  void CloseHeld();
  // Opens and closes n connections (4 ring buffer events each).
  bool Churn(int n);

 private:
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::vector<std::pair<int, int>> held_;
};

}  // namespace flowmesh::testing
