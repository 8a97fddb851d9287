// LocalDirectory, LocalQuerier and AskOne: look's questions answered from
// this node's store, its listen history and live listeners, with processes
// grouped as the look asks (by workload, pgid or pid).
#include "node/look/local_directory.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/process_groups.h"
#include "node/probe/netns.h"

namespace flowmesh {
namespace {

bool SameEndpoint(const EndpointRecord& a, const EndpointRecord& b) {
  return a.netns == b.netns && a.addr == b.addr && a.port == b.port;
}

bool SameListener(const EndpointRecord& a, const EndpointRecord& b) {
  return SameEndpoint(a, b) && a.proc.pid == b.proc.pid && a.proc.start_ticks == b.proc.start_ticks;
}

bool ListensOn(const EndpointRecord& l, const IpAddr& addr) { return ListenerServes(l.addr, addr); }

bool FromMatches(const IpAddr& laddr, const IpAddr& from) {
  if (from.is_unspecified()) return true;
  // Any loopback address may be the source of a connection to another.
  if (from.is_loopback()) return laddr.is_loopback();
  return laddr == from;
}

}  // namespace

Result<ProcessIndex> IndexOf(const Store& store,
                             const std::vector<LocalQuerier::WindowListener>& listeners,
                             GroupBy group_by) {
  FM_ASSIGN_OR_RETURN(std::vector<ProcessDetails> all, store.Processes());
  ProcessIndex procs(std::move(all), group_by);
  for (const LocalQuerier::WindowListener& l : listeners) procs.AddListenerOwner(l.record);
  return procs;
}

std::vector<IpAddr> LocalAddresses() {
  Result<std::vector<IpAddr>> all = InterfaceAddresses(/*with_loopback=*/true);
  if (!all.ok()) {
    FM_LOG(Warn, "look") << "cannot list this host's addresses: " << all.status().message()
                         << "; look sees only loopback as local";
    return {};
  }
  return std::move(all).value();
}

LocalQuerier::LocalQuerier(const Store& store, ListenerSource listeners)
    : store_(store), listeners_(std::move(listeners)) {}

Result<std::vector<EndpointRecord>> LocalQuerier::CurrentListeners() const {
  std::vector<EndpointRecord> out = listeners_ ? listeners_() : std::vector<EndpointRecord>{};
  FM_ASSIGN_OR_RETURN(std::vector<EndpointRecord> stored, store_.Endpoints());
  for (EndpointRecord& s : stored) {
    bool live = std::any_of(out.begin(), out.end(),
                            [&](const EndpointRecord& l) { return SameEndpoint(l, s); });
    if (!live) out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<LocalQuerier::WindowListener>> LocalQuerier::Listeners(
    const TimeWindow& w) const {
  std::vector<WindowListener> out;
  // Listening now, so in the window unless they began after it.
  FM_ASSIGN_OR_RETURN(std::vector<EndpointRecord> current, CurrentListeners());
  for (EndpointRecord& e : current)
    if (e.since_ns <= w.until_ns) out.push_back({std::move(e), 0});
  FM_ASSIGN_OR_RETURN(std::vector<ListenPeriod> past, store_.ListenHistory(w));
  for (ListenPeriod& p : past) {
    // A period of a listener already listed adds nothing: a current one is
    // the live table's view of the same owner, and periods come latest first.
    bool listed = std::any_of(out.begin(), out.end(), [&](const WindowListener& l) {
      return SameListener(l.record, p.endpoint);
    });
    if (!listed) out.push_back({std::move(p.endpoint), p.open() ? 0 : p.until_ns});
  }
  return out;
}

Result<EndpointDescription> LocalQuerier::Describe(const Endpoint& endpoint, const TimeWindow& w,
                                                   GroupBy group_by) {
  FM_ASSIGN_OR_RETURN(EndpointDescription d, DescribeListener(endpoint, w, group_by));
  if (d.found) return d;
  // Nothing listens there: a published port this node's NAT sends on to a
  // listener here, or a balancer's front.
  FM_ASSIGN_OR_RETURN(std::optional<Endpoint> target, PublishedTarget(endpoint, w));
  if (target) {
    FM_ASSIGN_OR_RETURN(EndpointDescription real, DescribeListener(*target, w, group_by));
    if (real.found) {
      real.endpoint = endpoint;
      real.listener = *target;
      return real;
    }
  }
  return DescribeBalancer(endpoint, w);
}

Result<EndpointDescription> LocalQuerier::DescribeListener(const Endpoint& endpoint,
                                                           const TimeWindow& w, GroupBy group_by) {
  EndpointDescription d;
  d.endpoint = endpoint;
  FM_ASSIGN_OR_RETURN(std::vector<WindowListener> listeners, Listeners(w));
  // The listener of the window: the one that listened latest in it (one
  // still listening first), then an exact address over a wildcard, then the
  // live table's over the store's.
  auto later = [](const WindowListener& a, const WindowListener& b) {
    if ((a.until_ns == 0) != (b.until_ns == 0)) return a.until_ns == 0;
    return a.until_ns > b.until_ns;
  };
  const EndpointRecord* listener = nullptr;
  const WindowListener* best = nullptr;
  for (const WindowListener& l : listeners) {
    if (l.record.port != endpoint.port || !ListensOn(l.record, endpoint.addr)) continue;
    if (best == nullptr || later(l, *best) ||
        (!later(*best, l) && l.record.addr == endpoint.addr && best->record.addr != endpoint.addr))
      best = &l;
  }
  if (best != nullptr) listener = &best->record;
  FM_ASSIGN_OR_RETURN(ProcessIndex procs, IndexOf(store_, listeners, group_by));

  FM_ASSIGN_OR_RETURN(std::vector<Flow> passive, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kPassive && k.lport == endpoint.port &&
           (endpoint.addr.is_unspecified() || k.laddr == endpoint.addr) &&
           (listener == nullptr || k.netns == listener->netns);
  }));
  std::map<ProcId, uint64_t> by_owner;
  for (const Flow& f : passive) by_owner[{f.key.pid, f.key.start_ticks}] += f.stats.active();
  d.clients = ClientEdgesOf(passive);
  d.aliases = PublishedFronts(passive, endpoint);

  if (listener != nullptr) {
    d.process =
        procs.Details(listener->proc.pid, listener->proc.start_ticks, listener->proc.comm_view());
  } else if (!by_owner.empty()) {
    // Nothing listens there now, but it was served in the window: by whom.
    auto most = std::max_element(by_owner.begin(), by_owner.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    d.process = procs.Details(most->first.first, most->first.second);
  } else {
    return d;  // found = false
  }
  d.found = true;
  if (d.process.pid == 0) return d;  // an unknown owner has no dependencies of its own

  const std::string group = procs.Group(d.process.pid, d.process.start_ticks);
  FM_ASSIGN_OR_RETURN(std::vector<Flow> active, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kActive && k.pid != 0 &&
           procs.Group(k.pid, k.start_ticks) == group;
  }));
  d.dependencies = DependenciesOf(active);
  return d;
}

Result<std::vector<ClientProcess>> LocalQuerier::Clients(const Endpoint& target, const IpAddr& from,
                                                         const TimeWindow& w, GroupBy group_by) {
  FM_ASSIGN_OR_RETURN(std::vector<WindowListener> listeners, Listeners(w));
  FM_ASSIGN_OR_RETURN(ProcessIndex procs, IndexOf(store_, listeners, group_by));
  FM_ASSIGN_OR_RETURN(std::vector<Flow> active, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kActive && FromMatches(k.laddr, from) &&
           (Reaches({k.raddr, k.rport}, target) || (k.translated() && Reaches({k.xaddr, k.xport}, target)));
  }));
  // Of loopback sources, the exact one when there is one: clients that bind
  // their own loopback addresses are one line each, not all of them on every
  // line.
  if (from.is_loopback() && std::any_of(active.begin(), active.end(), [&](const Flow& f) {
        return f.key.laddr == from;
      }))
    std::erase_if(active, [&](const Flow& f) { return f.key.laddr != from; });
  struct Group {
    std::string id;  // the process group
    ClientProcess cp;
    std::map<ProcId, uint64_t> members;  // -> connections
  };
  // By process group and what it dialled: connections that this node's NAT
  // sent to the target from a VIP are apart from those that dialled it.
  std::map<std::pair<std::string, Endpoint>, Group> groups;
  for (const Flow& f : active) {
    const Endpoint dialled{f.key.raddr, f.key.rport};
    const Endpoint via = Reaches(dialled, target) ? Endpoint{} : dialled;
    const std::string id = procs.Group(f.key.pid, f.key.start_ticks);
    Group& g = groups[{id, via}];
    g.id = id;
    g.cp.via = via;
    g.cp.stats.Merge(f.stats);
    g.members[{f.key.pid, f.key.start_ticks}] += f.stats.active();
  }
  std::vector<ClientProcess> out;
  // A balancer's forwarded connections to the target: they reached it from
  // this node's (masquerading) address, and came from the real clients.
  if (!from.is_loopback()) {
    FM_ASSIGN_OR_RETURN(out, ForwardedTo(target, w));
  }
  if (groups.empty()) return out;

  for (auto& [key, g] : groups) {
    g.cp.process = procs.Representative(g.members);
    if (g.cp.process.pid == 0) continue;  // the unknown process listens nowhere we know
    std::vector<const EndpointRecord*> mine;
    for (const WindowListener& wl : listeners) {
      const EndpointRecord& l = wl.record;
      if (procs.Group(l.proc.pid, l.proc.start_ticks) != g.id) continue;
      const Endpoint at{l.addr, l.port};
      if (std::find(g.cp.endpoints.begin(), g.cp.endpoints.end(), at) != g.cp.endpoints.end())
        continue;  // listened there more than once in the window
      mine.push_back(&l);
      g.cp.endpoints.push_back(at);
    }
    if (mine.empty()) continue;
    FM_ASSIGN_OR_RETURN(std::vector<Flow> passive, store_.ReadFlows(w, [&](const FlowKey& k) {
      if (k.direction != Direction::kPassive) return false;
      return std::any_of(mine.begin(), mine.end(), [&](const auto* l) {
        return l->port == k.lport && l->netns == k.netns && ListensOn(*l, k.laddr);
      });
    }));
    g.cp.clients = ClientEdgesOf(passive);
  }
  for (auto& [key, g] : groups) out.push_back(std::move(g.cp));
  std::sort(out.begin(), out.end(), [](const ClientProcess& a, const ClientProcess& b) {
    if (a.stats.active() != b.stats.active())
      return a.stats.active() > b.stats.active();
    return a.process.pid < b.process.pid;
  });
  return out;
}

Result<std::vector<ActiveProcess>> LocalQuerier::Active(const IpAddr& host, const TimeWindow& w,
                                                        GroupBy group_by) {
  FM_ASSIGN_OR_RETURN(std::vector<WindowListener> listeners, Listeners(w));
  FM_ASSIGN_OR_RETURN(ProcessIndex procs, IndexOf(store_, listeners, group_by));
  FM_ASSIGN_OR_RETURN(std::vector<Flow> active, store_.ReadFlows(w, [&](const FlowKey& k) {
    return k.direction == Direction::kActive && FromMatches(k.laddr, host);
  }));
  struct Group {
    ActiveProcess ap;
    std::map<ProcId, uint64_t> members;  // -> connections
    std::vector<Flow> flows;
  };
  std::map<std::string, Group> groups;
  for (Flow& f : active) {
    Group& g = groups[procs.Group(f.key.pid, f.key.start_ticks)];
    g.ap.stats.Merge(f.stats);
    g.members[{f.key.pid, f.key.start_ticks}] += f.stats.active();
    g.flows.push_back(std::move(f));
  }
  std::vector<ActiveProcess> out;
  for (auto& [key, g] : groups) {
    g.ap.process = procs.Representative(g.members);
    g.ap.dependencies = DependenciesOf(g.flows);
    out.push_back(std::move(g.ap));
  }
  std::sort(out.begin(), out.end(), [](const ActiveProcess& a, const ActiveProcess& b) {
    if (a.stats.active() != b.stats.active())
      return a.stats.active() > b.stats.active();
    return a.process.pid < b.process.pid;
  });
  return out;
}

LookAnswer AskBefore(const LookQuestion& q, const TimeWindow& w, int64_t deadline_ns) {
  if (deadline_ns == 0 || MonotonicNs() < deadline_ns) return AskOne(q, w);
  LookAnswer a;
  a.status = Unavailable("the look's deadline has passed");
  return a;
}

LookAnswer AskOne(const LookQuestion& q, const TimeWindow& w) {
  LookAnswer a;
  if (q.node.querier == nullptr) {
    a.status = Unavailable("no way to ask node '" + q.node.name + "'");
    return a;
  }
  switch (q.kind) {
    case LookQuestion::Kind::kDescribe: {
      Result<EndpointDescription> r = q.node.querier->Describe(q.endpoint, w, q.group_by);
      a.status = r.status();
      if (r.ok()) a.description = std::move(r).value();
      break;
    }
    case LookQuestion::Kind::kClients: {
      Result<std::vector<ClientProcess>> r =
          q.node.querier->Clients(q.endpoint, q.from, w, q.group_by);
      a.status = r.status();
      if (r.ok()) a.clients = std::move(r).value();
      break;
    }
    case LookQuestion::Kind::kActive: {
      Result<std::vector<ActiveProcess>> r = q.node.querier->Active(q.from, w, q.group_by);
      a.status = r.status();
      if (r.ok()) a.active = std::move(r).value();
      break;
    }
  }
  return a;
}

LocalDirectory::LocalDirectory(const Store& store, std::string node_name,
                               std::vector<IpAddr> local_addrs, ListenerSource listeners)
    : node_name_(std::move(node_name)),
      local_addrs_(std::move(local_addrs)),
      querier_(store, std::move(listeners)) {}

bool LocalDirectory::IsLocal(const IpAddr& addr) const {
  return addr.is_loopback() ||
         std::find(local_addrs_.begin(), local_addrs_.end(), addr) != local_addrs_.end();
}

std::optional<NodeRef> LocalDirectory::OwnerOfEndpoint(const Endpoint& endpoint) {
  Result<std::vector<EndpointRecord>> listeners = querier_.CurrentListeners();
  if (!listeners.ok()) {
    FM_LOG(Warn, "look") << "cannot read this node's endpoints: " << listeners.status().message();
    return std::nullopt;
  }
  for (const EndpointRecord& l : *listeners) {
    if (l.port != endpoint.port) continue;
    // A wildcard listener owns the port on this host's addresses only.
    if (l.addr == endpoint.addr || endpoint.addr.is_unspecified() ||
        (ListensOn(l, endpoint.addr) && IsLocal(endpoint.addr)))
      return NodeRef{node_name_, &querier_};
  }
  // A front this node's NAT translates (a balancer's VIP may be no address
  // of ours).
  for (const NatAlias& a : querier_.Aliases())
    if (Reaches(a.front, endpoint)) return NodeRef{node_name_, &querier_};
  return std::nullopt;
}

std::vector<Endpoint> LocalDirectory::FrontsOf(const Endpoint& target) {
  std::vector<Endpoint> out;
  for (const NatAlias& a : querier_.Aliases())
    if (a.balancer && a.target == target &&
        std::find(out.begin(), out.end(), a.front) == out.end())
      out.push_back(a.front);
  return out;
}

std::optional<NodeRef> LocalDirectory::OwnerOfAddress(const IpAddr& addr) {
  if (IsLocal(addr)) return NodeRef{node_name_, &querier_};
  return std::nullopt;
}

std::vector<LookAnswer> LocalDirectory::Ask(const std::vector<LookQuestion>& questions,
                                            const TimeWindow& w) {
  std::vector<LookAnswer> out;
  out.reserve(questions.size());
  for (const LookQuestion& q : questions) out.push_back(AskBefore(q, w, deadline_ns_));
  return out;
}

}  // namespace flowmesh
