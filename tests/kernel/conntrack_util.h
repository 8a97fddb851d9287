// Network namespaces wired with veths and nftables NAT rules, for the
// conntrack kernel tests and bench/conntrack_bench: created with unique
// names, always deleted, and sockets opened inside them from this process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "node/common/net.h"

namespace flowmesh::testing {

// Runs `cmd` with sh -c; returns its exit status. Its stdout and stderr go
// to *out when given.
int Sh(const std::string& cmd, std::string* out = nullptr);

class NatNetns {
 public:
  // Namespaces are named fmct<pid><tag>-<name>; tag tells tests apart.
  explicit NatNetns(const std::string& tag);
  ~NatNetns();  // deletes every namespace it made
  NatNetns(const NatNetns&) = delete;
  NatNetns& operator=(const NatNetns&) = delete;

  // Adds namespace `name` with lo up and short TCP conntrack timeouts for
  // the closing states (1 s), so a closed connection's entry expires fast.
  bool Add(const std::string& name, std::string* error);
  // A veth between two namespaces with addresses ("10.0.0.1/24",
  // "fd00::1/64"); returns the interface names {in a, in b}.
  std::pair<std::string, std::string> Link(const std::string& a,
                                           const std::vector<std::string>& a_addrs,
                                           const std::string& b,
                                           const std::vector<std::string>& b_addrs,
                                           std::string* error);
  bool Run(const std::string& name, const std::string& cmd, std::string* error);
  bool Nft(const std::string& name, const std::string& ruleset, std::string* error);
  // The rule Churn goes through: 127.0.0.100:80 DNAT'd to 127.0.0.1:port in
  // the output hook (loopback needs no veth).
  bool LoopbackVip(const std::string& name, uint16_t port, std::string* error);

  std::string Path(const std::string& name) const;  // /var/run/netns/<full name>
  uint32_t Inode(const std::string& name) const;
  // A TCP socket of `family` created inside namespace `name` (-1 on error).
  int Socket(const std::string& name, int family) const;
  // A listening socket on [::]:port (dual stack) or 0.0.0.0:port inside `name`.
  int Listen(const std::string& name, int family, uint16_t port) const;

 private:
  std::string Full(const std::string& name) const { return prefix_ + "-" + name; }
  std::string prefix_;
  std::vector<std::string> made_;
  int links_ = 0;
};

Endpoint LocalOf(int fd);
Endpoint PeerOf(int fd);
// Connects `fd` to `to` (blocking); false on failure.
bool Connect(int fd, const Endpoint& to);

// Connections at full speed inside the namespace at `ns` (a path): a server
// on 127.0.0.1:port answering one byte, and `threads` clients making `total`
// connections to 127.0.0.100:80 between them (a DNAT rule there sends them
// to the server), each closed with a RST so that no TIME_WAIT piles up.
// Returns the clients' wall time in ns.
int64_t Churn(const std::string& ns, uint16_t port, int total, int threads);

}  // namespace flowmesh::testing
