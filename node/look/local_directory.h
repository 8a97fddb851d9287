// `look` answered from this node alone: a Directory in which this node owns
// every local address and listener, and a NodeQuerier that answers from the
// store (plus the live listener table). The mesh-wide walk replaces the
// Directory (remote_directory.h); the querier is what each node runs for
// remote questions too.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "node/look/look.h"
#include "node/look/process_groups.h"
#include "node/store/store.h"

namespace flowmesh {

using ListenerSource = std::function<std::vector<EndpointRecord>()>;
// The NAT aliases this node translates now (Aggregator::Aliases).
using AliasSource = std::function<std::vector<NatAlias>()>;

// This host's interface addresses (getifaddrs), loopback included; empty
// when they cannot be read.
std::vector<IpAddr> LocalAddresses();

class LocalQuerier final : public NodeQuerier {
 public:
  // `listeners` gives the live listening sockets (may be empty); the store's
  // endpoints are the fallback.
  LocalQuerier(const Store& store, ListenerSource listeners);
  // Set before questions are asked; none = only the store's flows say what
  // this node's NAT translated.
  void set_aliases(AliasSource aliases) { aliases_ = std::move(aliases); }
  std::vector<NatAlias> Aliases() const { return aliases_ ? aliases_() : std::vector<NatAlias>{}; }

  // The process listening on `endpoint` in the window (a wildcard listener
  // matches; of several, the one that listened latest), its clients by
  // address, and the dependencies of its whole group (`group_by`). Where nothing
  // listens, a published port (docker -p) is described as the listener it
  // reaches, and a balancer's front as its backends and clients.
  Result<EndpointDescription> Describe(const Endpoint& endpoint, const TimeWindow& w,
                                       GroupBy group_by) override;
  // The process groups whose active flows go to `target` from `from` (any
  // loopback address when `from` is loopback, any address when unspecified),
  // each with its listening endpoints and their clients.
  Result<std::vector<ClientProcess>> Clients(const Endpoint& target, const IpAddr& from,
                                             const TimeWindow& w, GroupBy group_by) override;

  // The process groups with active flows from `host` (any loopback address
  // when `host` is loopback), each with the endpoints it connected to.
  Result<std::vector<ActiveProcess>> Active(const IpAddr& host, const TimeWindow& w,
                                            GroupBy group_by) override;

  // Live listeners first, then stored ones not also live: who listens now.
  Result<std::vector<EndpointRecord>> CurrentListeners() const;
  // Who listened in the window: the current listeners that began by its
  // end, then the store's listen history (the latest start first) for the
  // rest. until_ns 0 = still listening.
  struct WindowListener {
    EndpointRecord record;
    int64_t until_ns = 0;
  };
  Result<std::vector<WindowListener>> Listeners(const TimeWindow& w) const;

  // This node's part of the map (map_local.cc): every process group with
  // flows or a listener in the window, and every balancer front, busiest
  // first, cut at kMaxMapEntries entries and kMaxMemberMapEdges edges (`truncated`).
  Result<MemberMap> Map(const TimeWindow& w, GroupBy group_by) const;

 private:
  Result<EndpointDescription> DescribeListener(const Endpoint& endpoint, const TimeWindow& w,
                                               GroupBy group_by);
  // NAT (local_nat.cc): the listener a published port reached in the window
  // (or reaches now), the fronts that reached a listener, a balancer front's
  // backends and clients, and a balancer's forwarded connections to a backend.
  Result<std::optional<Endpoint>> PublishedTarget(const Endpoint& front, const TimeWindow& w) const;
  std::vector<Endpoint> PublishedFronts(const std::vector<Flow>& passive,
                                        const Endpoint& listener) const;
  Result<EndpointDescription> DescribeBalancer(const Endpoint& front, const TimeWindow& w) const;
  Result<std::vector<ClientProcess>> ForwardedTo(const Endpoint& backend,
                                                 const TimeWindow& w) const;

  const Store& store_;
  ListenerSource listeners_;
  AliasSource aliases_;
};

// What one member's map answer may carry: beyond these, the busiest are
// kept and the answer says `truncated`. 16384 edges (clients, dependencies
// and endpoints together) of ~200 wire bytes each stay under look_wire.h's
// kMaxQueryBytes, and bound the asker's merge of one answer.
constexpr size_t kMaxMapEntries = 4096;
constexpr size_t kMaxMemberMapEdges = 16384;

// The store's processes, and the owners of the window's listeners as the
// listeners kept them where the store has no row (or no workload) for them.
Result<ProcessIndex> IndexOf(const Store& store,
                             const std::vector<LocalQuerier::WindowListener>& listeners,
                             GroupBy group_by);

// Flows to edges, translations included (local_nat.cc).
// Does `e` reach `target` (an unspecified target address: any address)?
bool Reaches(const Endpoint& e, const Endpoint& target);
// Passive (or forwarded) flows by client address and what it dialled: the
// front a NAT translated, else the concrete endpoint (laddr:lport).
std::vector<ClientEdge> ClientEdgesOf(const std::vector<Flow>& flows);
// Active flows by where they really went, with what was dialled when
// translated.
std::vector<DependencyEdge> DependenciesOf(const std::vector<Flow>& active);
// A balancer's forwarded flows by the backend they went to.
std::vector<DependencyEdge> BackendsOf(const std::vector<Flow>& forwarded);
// One front's forwarded flows as the map (and look's clients question) show
// a balancer: its front, the real clients, the backends.
MapEntry BalancerEntryOf(const Endpoint& front, const std::vector<Flow>& forwarded);

class LocalDirectory final : public Directory {
 public:
  LocalDirectory(const Store& store, std::string node_name, std::vector<IpAddr> local_addrs,
                 ListenerSource listeners);

  std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& endpoint) override;
  std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) override;
  std::vector<Endpoint> FrontsOf(const Endpoint& target) override;
  // Each question answered here, in turn; past the deadline, each is
  // answered "the look's deadline has passed" without reading the store.
  std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& questions,
                              const TimeWindow& w) override;

  LocalQuerier& querier() { return querier_; }
  const std::string& name() const { return node_name_; }
  // The look's overall deadline (MonotonicNs; 0 = none): a look nobody
  // waits for any more must not go on reading the store.
  void set_deadline(int64_t monotonic_ns) { deadline_ns_ = monotonic_ns; }
  int64_t deadline() const { return deadline_ns_; }

 private:
  bool IsLocal(const IpAddr& addr) const;

  int64_t deadline_ns_ = 0;
  std::string node_name_;
  std::vector<IpAddr> local_addrs_;
  LocalQuerier querier_;
};

}  // namespace flowmesh
