// LocalQuerier::Map: this node's part of the mesh's map, from one read of the
// window's flows, its listeners and its processes.
#include <unistd.h>

#include <algorithm>
#include <map>
#include <utility>

#include "node/look/local_directory.h"
#include "node/look/process_groups.h"

namespace flowmesh {
namespace {

struct Group {
  MapEntry entry;
  std::map<ProcId, uint64_t> members;  // -> connections
  std::vector<Flow> active;
  std::vector<Flow> passive;
};

bool Busier(const MapEntry& a, const MapEntry& b) {
  if (a.stats.active() != b.stats.active()) return a.stats.active() > b.stats.active();
  uint64_t ab = a.stats.bytes_tx + a.stats.bytes_rx, bb = b.stats.bytes_tx + b.stats.bytes_rx;
  if (ab != bb) return ab > bb;
  if (a.balancer != b.balancer) return b.balancer;
  if (a.process.pid != b.process.pid) return a.process.pid < b.process.pid;
  return a.endpoints < b.endpoints;
}

template <typename Edge>
void BusiestFirst(std::vector<Edge>& edges) {
  std::stable_sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.stats.active() > b.stats.active();
  });
}

// Keeps the busiest entries and edges that fit the answer's caps; says
// whether anything was left out.
bool Cut(std::vector<MapEntry>& entries) {
  bool cut = false;
  std::sort(entries.begin(), entries.end(), Busier);
  if (entries.size() > kMaxMapEntries) {
    entries.resize(kMaxMapEntries);
    cut = true;
  }
  size_t budget = kMaxMemberMapEdges;
  for (MapEntry& e : entries) {
    BusiestFirst(e.clients);
    BusiestFirst(e.dependencies);
    // Endpoints count too: the asker merges each into its node.
    size_t endpoints = std::min(budget, e.endpoints.size());
    budget -= endpoints;
    if (endpoints < e.endpoints.size()) cut = true;
    e.endpoints.resize(endpoints);
    size_t deps = std::min(budget, e.dependencies.size());
    budget -= deps;
    size_t clients = std::min(budget, e.clients.size());
    budget -= clients;
    if (deps < e.dependencies.size() || clients < e.clients.size()) cut = true;
    e.dependencies.resize(deps);
    e.clients.resize(clients);
  }
  return cut;
}

}  // namespace

Result<MemberMap> LocalQuerier::Map(const TimeWindow& w, GroupBy group_by) const {
  FM_ASSIGN_OR_RETURN(std::vector<WindowListener> listeners, Listeners(w));
  FM_ASSIGN_OR_RETURN(ProcessIndex procs, IndexOf(store_, listeners, group_by));
  FM_ASSIGN_OR_RETURN(std::vector<Flow> flows, store_.ReadFlows(w));

  std::map<std::string, Group> groups;
  std::map<Endpoint, std::vector<Flow>> forwarded;  // by front
  for (Flow& f : flows) {
    if (f.key.direction == Direction::kForwarded) {
      forwarded[{f.key.laddr, f.key.lport}].push_back(std::move(f));
      continue;
    }
    if (f.key.direction != Direction::kActive && f.key.direction != Direction::kPassive) continue;
    uint32_t pid = f.key.pid;
    uint64_t start = f.key.start_ticks;
    if (pid == 0 && f.key.direction == Direction::kPassive) {
      // An accepted connection the probe could not attribute: its listener's.
      for (const WindowListener& l : listeners)
        if (l.record.port == f.key.lport && l.record.netns == f.key.netns &&
            ListenerServes(l.record.addr, f.key.laddr) && l.record.proc.known()) {
          pid = l.record.proc.pid, start = l.record.proc.start_ticks;
          break;
        }
    }
    Group& g = groups[procs.Group(pid, start)];
    g.entry.stats.Merge(f.stats);
    g.members[{pid, start}] += f.stats.active();
    (f.key.direction == Direction::kActive ? g.active : g.passive).push_back(std::move(f));
  }
  for (const WindowListener& wl : listeners) {
    const EndpointRecord& l = wl.record;
    Group& g = groups[procs.Group(l.proc.pid, l.proc.start_ticks)];
    g.members.try_emplace({l.proc.pid, l.proc.start_ticks}, 0);
    const Endpoint at{l.addr, l.port};
    if (std::find(g.entry.endpoints.begin(), g.entry.endpoints.end(), at) ==
        g.entry.endpoints.end())
      g.entry.endpoints.push_back(at);
  }

  MemberMap out;
  out.entries.reserve(groups.size() + forwarded.size());
  // This meshd's own listeners (the mesh port, the page) are the agent, not
  // a workload of the host; the probe does not trace meshd's own sockets,
  // so only a caller's side can show an edge to it (MergeMap keeps it then).
  const uint32_t self = static_cast<uint32_t>(getpid());
  for (auto& [key, g] : groups) {
    g.entry.agent = g.members.size() == 1 && g.members.begin()->first.first == self;
    g.entry.process = procs.Representative(g.members);
    g.entry.dependencies = DependenciesOf(g.active);
    g.entry.clients = ClientEdgesOf(g.passive);
    std::sort(g.entry.endpoints.begin(), g.entry.endpoints.end());
    out.entries.push_back(std::move(g.entry));
  }
  // A live balancer front nobody called in the window is still a node.
  for (const NatAlias& a : Aliases())
    if (a.balancer) forwarded.try_emplace(a.front);
  for (auto& [front, fl] : forwarded) out.entries.push_back(BalancerEntryOf(front, fl));
  out.truncated = Cut(out.entries);
  return out;
}

}  // namespace flowmesh
