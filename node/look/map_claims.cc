// MapClaims: the merge's address and endpoint owners (map_claims.h).
#include "node/look/map_claims.h"

namespace flowmesh {

void MapClaims::AddMembers(const std::vector<const LookMember*>& order) {
  for (const LookMember* m : order)
    for (const IpAddr& a : m->addresses) {
      by_addr_.emplace(a, m);
      owned_.emplace(m->name, a);
    }
  // Before its table arrives, a member's mesh address is the one known its.
  for (const LookMember* m : order)
    if (Result<Endpoint> reached = Endpoint::Parse(m->address); reached.ok()) {
      by_addr_.emplace(reached->addr, m);
      owned_.emplace(m->name, reached->addr);
    }
}

void MapClaims::AddListener(const LookMember& m, const Endpoint& at, const std::string& node) {
  listeners_[at.port].push_back({&m, at, node});
}

void MapClaims::AddFront(const LookMember& m, const Endpoint& front, const std::string& node) {
  auto& at = fronts_[front];
  for (const auto& [member, id] : at)
    if (member == &m) return;
  at.emplace_back(&m, node);
}

void MapClaims::AddPublished(const LookMember& m, const Endpoint& front, const Endpoint& target) {
  published_.emplace(front, std::make_pair(&m, target));
}

const LookMember* MapClaims::MemberOf(const IpAddr& addr, const LookMember& reporter) const {
  if (addr.is_loopback() || owned_.contains({reporter.name, addr})) return &reporter;
  return AnyMemberOf(addr);
}

const LookMember* MapClaims::AnyMemberOf(const IpAddr& addr) const {
  if (addr.is_loopback()) return nullptr;
  auto it = by_addr_.find(addr);
  return it == by_addr_.end() ? nullptr : it->second;
}

const std::vector<std::pair<const LookMember*, std::string>>& MapClaims::Fronts(
    const Endpoint& front) const {
  static const std::vector<std::pair<const LookMember*, std::string>> kNone;
  auto it = fronts_.find(front);
  return it == fronts_.end() ? kNone : it->second;
}

// Among claims of one address, the reporter's own comes first (the same
// address on its host is the one its process reached), then the members'
// order.
std::optional<std::string> MapClaims::Claimed(const LookMember& reporter, const Endpoint& e,
                                              int hops) const {
  const LookMember* wildcard_member = MemberOf(e.addr, reporter);
  // docker-proxy listens on the port it publishes too: the container
  // behind it is what serves, not the proxy.
  if (hops == 0 && wildcard_member != nullptr)
    for (auto [it, end] = published_.equal_range(e); it != end; ++it)
      if (it->second.first == wildcard_member)
        if (auto id = Claimed(*wildcard_member, it->second.second, hops + 1)) return id;
  // The reporter's own NAT rules rewrote its connections to a front before
  // any socket saw them (kube-ipvs0 puts a VIP on every node, where a
  // wildcard listener on the port would otherwise claim it).
  const auto& fronts = Fronts(e);
  for (const auto& [member, node] : fronts)
    if (member == &reporter) return node;
  const Claim* exact = nullptr;
  const Claim* wildcard = nullptr;
  if (auto port = listeners_.find(e.port); port != listeners_.end())
    for (const Claim& c : port->second) {
      if (e.addr.is_loopback() && c.member != &reporter) continue;
      if (c.at.addr == e.addr) {
        if (c.member == &reporter) return c.node;
        if (exact == nullptr) exact = &c;
      } else if (c.member == wildcard_member && ListenerServes(c.at.addr, e.addr) &&
                 wildcard == nullptr) {
        wildcard = &c;
      }
    }
  if (exact != nullptr) return exact->node;
  if (wildcard != nullptr) return wildcard->node;
  if (!fronts.empty()) return fronts.front().second;
  if (hops == 0)
    for (int own = 1; own >= 0; own--)
      for (auto [it, end] = published_.equal_range(e); it != end; ++it) {
        // The listener behind a published port.
        if ((it->second.first == &reporter) != static_cast<bool>(own)) continue;
        if (auto id = Claimed(*it->second.first, it->second.second, hops + 1)) return id;
      }
  return std::nullopt;
}

}  // namespace flowmesh
