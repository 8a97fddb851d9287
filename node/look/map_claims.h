// MapClaims: whose an address and an endpoint are, as the map's merge
// (map_merge.cc) resolves them: members' addresses, listeners, balancer
// fronts and published ports, the reporting member's own first.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "node/common/net.h"
#include "node/look/remote_directory.h"

namespace flowmesh {

class MapClaims {
 public:
  // The members' addresses (and, before its table arrives, its mesh
  // address), in `order`: where several members have one address (docker0's
  // 172.17.0.1, a first container's 172.17.0.2, virbr0, VIPs), the first in
  // it is taken for a reporter that does not have it. The merge orders live
  // first, then by name, so that every asker draws the same graph.
  void AddMembers(const std::vector<const LookMember*>& order);
  // `node` listens at `at` on `m` (added in the members' order).
  void AddListener(const LookMember& m, const Endpoint& at, const std::string& node);
  // `m` balances `front`, drawn as `node`.
  void AddFront(const LookMember& m, const Endpoint& front, const std::string& node);
  // `m` publishes `front` to its `target` (docker -p).
  void AddPublished(const LookMember& m, const Endpoint& front, const Endpoint& target);

  // The member an address is on: `reporter` for loopback and for an address
  // it has itself (a bridge address every docker host has is, to a process
  // on that host, its own host), else the first member with it.
  const LookMember* MemberOf(const IpAddr& addr, const LookMember& reporter) const;
  // The first member with `addr` (not loopback), or none.
  const LookMember* AnyMemberOf(const IpAddr& addr) const;
  // The node `e` reached from `reporter`: a published port on the member
  // with the address (its container, before a proxy listening on the port);
  // the reporter's own balancer front; an exact listener, the reporter's
  // first; a wildcard one on the member with the address (loopback: the
  // reporter's); any balancer's front; any published port's listener.
  std::optional<std::string> Claimed(const LookMember& reporter, const Endpoint& e,
                                     int hops = 0) const;
  // Each member balancing `front`, and its node there.
  const std::vector<std::pair<const LookMember*, std::string>>& Fronts(const Endpoint& front) const;

 private:
  // A listener endpoints resolve to, and whose node it is.
  struct Claim {
    const LookMember* member;
    Endpoint at;
    std::string node;
  };

  std::map<IpAddr, const LookMember*> by_addr_;       // the first in order
  std::set<std::pair<std::string, IpAddr>> owned_;    // (member, an address it has)
  std::map<uint16_t, std::vector<Claim>> listeners_;  // by port
  std::map<Endpoint, std::vector<std::pair<const LookMember*, std::string>>> fronts_;
  std::multimap<Endpoint, std::pair<const LookMember*, Endpoint>> published_;  // front -> target
};

}  // namespace flowmesh
