// CutMap: the map around the nodes a --host or --workload names, --depth
// edges either way.
#include <deque>
#include <map>
#include <set>

#include "node/look/map_merge.h"

namespace flowmesh {
namespace {

bool Contains(const std::string& text, const std::string& part) {
  return !text.empty() && text.find(part) != std::string::npos;
}

bool Names(const MapNode& n, const std::string& workload) {
  if (Contains(n.id, workload) || Contains(n.label, workload)) return true;
  for (const Endpoint& e : n.endpoints)
    if (Contains(e.ToString(), workload)) return true;
  if (!n.process) return false;
  const Workload& w = n.process->workload;
  return Contains(n.process->comm, workload) || Contains(w.unit, workload) ||
         Contains(w.name, workload) || (w.pod && Contains(w.pod->name, workload));
}

}  // namespace

MapGraph CutMap(const MapGraph& graph, const std::string& host, const std::string& workload,
                int depth) {
  if (host.empty() && workload.empty()) return graph;
  MapGraph out;
  out.window = graph.window;
  out.members = graph.members;
  std::map<std::string, int> dist;  // node id -> edges from the nearest seed
  std::deque<std::string> queue;
  for (const MapNode& n : graph.nodes)
    if ((host.empty() || n.host == host) && (workload.empty() || Names(n, workload))) {
      dist[n.id] = 0;
      queue.push_back(n.id);
    }
  std::map<std::string, std::vector<std::string>> next;  // either way
  for (const MapEdge& e : graph.edges) {
    next[e.from].push_back(e.to);
    next[e.to].push_back(e.from);
  }
  while (!queue.empty()) {
    std::string id = std::move(queue.front());
    queue.pop_front();
    int d = dist[id];
    if (d >= depth) continue;
    for (const std::string& other : next[id])
      if (dist.emplace(other, d + 1).second) queue.push_back(other);
  }
  for (const MapNode& n : graph.nodes)
    if (dist.count(n.id)) out.nodes.push_back(n);
  for (const MapEdge& e : graph.edges)
    if (dist.count(e.from) && dist.count(e.to)) out.edges.push_back(e);
  return out;
}

std::string CutMiss(const MapGraph& whole, const MapGraph& cut, const std::string& host,
                    const std::string& workload) {
  if (!cut.nodes.empty() || (host.empty() && workload.empty())) return "";
  std::string flags;
  if (!host.empty()) flags += " --host " + host;
  if (!workload.empty()) flags += " --workload " + workload;
  return "no node matches" + flags + " (of " + std::to_string(whole.nodes.size()) +
         " nodes in the window); check the names with `meshctl map` alone, or widen --since";
}

}  // namespace flowmesh
