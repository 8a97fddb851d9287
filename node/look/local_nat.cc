// What this node's NAT did, for look: published ports resolved to their
// listeners, a balancer's fronts to their backends and clients, and flows
// turned into edges that keep both sides of a translation.
#include <algorithm>
#include <map>
#include <utility>

#include "node/look/local_directory.h"

namespace flowmesh {
namespace {

bool AddressMatches(const IpAddr& addr, const IpAddr& wanted) {
  return wanted.is_unspecified() || addr == wanted;
}

void AddOnce(std::vector<Endpoint>& list, const Endpoint& e) {
  if (std::find(list.begin(), list.end(), e) == list.end()) list.push_back(e);
}

}  // namespace

bool Reaches(const Endpoint& e, const Endpoint& target) {
  return e.port == target.port && AddressMatches(e.addr, target.addr);
}

std::vector<ClientEdge> ClientEdgesOf(const std::vector<Flow>& flows) {
  std::map<std::pair<IpAddr, Endpoint>, FlowStats> by_client;
  for (const Flow& f : flows) {
    const Endpoint dialled = f.key.direction == Direction::kPassive && f.key.translated()
                                 ? Endpoint{f.key.xaddr, f.key.xport}
                                 : Endpoint{f.key.laddr, f.key.lport};
    by_client[{f.key.raddr, dialled}].Merge(f.stats);
  }
  std::vector<ClientEdge> out;
  out.reserve(by_client.size());
  for (const auto& [k, stats] : by_client) out.push_back(ClientEdge{k.first, stats, k.second});
  return out;
}

std::vector<DependencyEdge> DependenciesOf(const std::vector<Flow>& active) {
  std::map<std::pair<Endpoint, Endpoint>, FlowStats> by_remote;  // (went to, via)
  for (const Flow& f : active) {
    const Endpoint dialled{f.key.raddr, f.key.rport};
    if (f.key.translated()) {
      by_remote[{Endpoint{f.key.xaddr, f.key.xport}, dialled}].Merge(f.stats);
    } else {
      by_remote[{dialled, Endpoint{}}].Merge(f.stats);
    }
  }
  std::vector<DependencyEdge> out;
  out.reserve(by_remote.size());
  for (const auto& [k, stats] : by_remote) out.push_back(DependencyEdge{k.first, stats, k.second});
  return out;
}

std::vector<DependencyEdge> BackendsOf(const std::vector<Flow>& forwarded) {
  std::map<Endpoint, FlowStats> by_backend;
  for (const Flow& f : forwarded) by_backend[{f.key.xaddr, f.key.xport}].Merge(f.stats);
  std::vector<DependencyEdge> out;
  out.reserve(by_backend.size());
  for (const auto& [backend, stats] : by_backend) out.push_back(DependencyEdge{backend, stats, {}});
  return out;
}

MapEntry BalancerEntryOf(const Endpoint& front, const std::vector<Flow>& forwarded) {
  MapEntry e;
  e.balancer = true;
  e.endpoints.push_back(front);
  for (const Flow& f : forwarded) e.stats.Merge(f.stats);
  e.clients = ClientEdgesOf(forwarded);
  e.dependencies = BackendsOf(forwarded);
  return e;
}

Result<std::optional<Endpoint>> LocalQuerier::PublishedTarget(const Endpoint& front,
                                                              const TimeWindow& w) const {
  FM_ASSIGN_OR_RETURN(std::vector<Flow> passive, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kPassive && k.translated() &&
           Reaches({k.xaddr, k.xport}, front);
  }));
  // The listener most connections reached (a port republished to another
  // container inside the window reached both; the busier one is the answer).
  std::map<Endpoint, uint64_t> by_listener;
  for (const Flow& f : passive) by_listener[{f.key.laddr, f.key.lport}] += f.stats.active();
  if (!by_listener.empty()) {
    auto most = std::max_element(by_listener.begin(), by_listener.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    return std::optional<Endpoint>(most->first);
  }
  // No connection in the window, but the port is published now.
  for (const NatAlias& a : Aliases())
    if (!a.balancer && Reaches(a.front, front)) return std::optional<Endpoint>(a.target);
  return std::optional<Endpoint>();
}

std::vector<Endpoint> LocalQuerier::PublishedFronts(const std::vector<Flow>& passive,
                                                    const Endpoint& listener) const {
  std::vector<Endpoint> out;
  for (const Flow& f : passive)
    if (f.key.translated()) AddOnce(out, Endpoint{f.key.xaddr, f.key.xport});
  for (const NatAlias& a : Aliases())
    if (!a.balancer && Reaches(a.target, listener)) AddOnce(out, a.front);
  std::sort(out.begin(), out.end());
  return out;
}

Result<EndpointDescription> LocalQuerier::DescribeBalancer(const Endpoint& front,
                                                           const TimeWindow& w) const {
  EndpointDescription d;
  d.endpoint = front;
  FM_ASSIGN_OR_RETURN(std::vector<Flow> forwarded, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kForwarded && Reaches({k.laddr, k.lport}, front);
  }));
  const std::vector<NatAlias> aliases = Aliases();
  const bool live = std::any_of(aliases.begin(), aliases.end(), [&](const NatAlias& a) {
    return a.balancer && Reaches(a.front, front);
  });
  if (forwarded.empty() && !live) return d;  // found = false
  d.found = true;
  d.balancer = true;
  d.clients = ClientEdgesOf(forwarded);
  d.dependencies = BackendsOf(forwarded);
  for (const Flow& f : forwarded) {
    const Endpoint at{f.key.laddr, f.key.lport};
    if (at != front) AddOnce(d.aliases, at);  // asked with a wildcard address
  }
  return d;
}

Result<std::vector<ClientProcess>> LocalQuerier::ForwardedTo(const Endpoint& backend,
                                                             const TimeWindow& w) const {
  FM_ASSIGN_OR_RETURN(std::vector<Flow> forwarded, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kForwarded && Reaches({k.xaddr, k.xport}, backend);
  }));
  std::map<Endpoint, std::vector<Flow>> by_front;
  for (Flow& f : forwarded) by_front[{f.key.laddr, f.key.lport}].push_back(std::move(f));
  std::vector<ClientProcess> out;
  for (auto& [front, flows] : by_front) {
    MapEntry e = BalancerEntryOf(front, flows);
    ClientProcess cp;
    cp.balancer = true;
    cp.endpoints = std::move(e.endpoints);
    cp.stats = e.stats;
    cp.clients = std::move(e.clients);
    out.push_back(std::move(cp));
  }
  return out;
}

}  // namespace flowmesh
