// The map as a Graphviz digraph: a cluster per host, shapes by node kind,
// edges labelled with their traffic, and with a baseline the changes in
// colour (appeared green, disappeared red and dashed, changed orange).
#include <map>
#include <set>
#include <vector>

#include "cli/format/map_format.h"
#include "cli/format/map_format_internal.h"

namespace flowmesh {
namespace {

using namespace map_format_internal;

// Every text is made printable first; DotQuote then escapes quotes and
// backslashes, and only the label's own line breaks survive as \n.
std::string VertexLabel(const MapNode& n) {
  std::string s = Safe(n.label.empty() ? n.id : n.label);
  if (n.process && !n.process->workload.empty() && !n.label.starts_with("'"))
    s += "\n" + Safe(n.process->comm) +
         (n.process->pgid ? " (pgid=" + std::to_string(n.process->pgid) + ")"
                          : " (pid=" + std::to_string(n.process->pid) + ")");
  // A balancer's label names its front ("balancer 10.96.0.10:80").
  if (n.kind != MapNodeKind::kBalancer)
    for (const Endpoint& e : n.endpoints)
      if (e.port != 0 && e.ToString() != n.label) s += "\n" + e.ToString();
  if (n.status != LookStatus::kOk && n.status != LookStatus::kNoAgent)
    s += "\n[" + std::string(LookStatusName(n.status)) + "]";
  return s;
}

std::string Vertex(const MapNode& n, bool gone, const char* indent) {
  std::string attrs = "label=" + DotQuote(VertexLabel(n));
  if (n.kind == MapNodeKind::kBalancer) attrs += ", shape=diamond";
  if (n.kind == MapNodeKind::kExternal) attrs += ", shape=ellipse";
  // What is not known first hand reads as such: no answer, no process.
  if (n.status == LookStatus::kUnreachable || n.status == LookStatus::kUnconfirmed ||
      n.status == LookStatus::kUnsynced)
    attrs += ", style=dashed, color=grey, fontcolor=grey";
  else if (gone)
    attrs += ", style=dashed, color=red, fontcolor=red";
  if (n.status_detail.size() > 0) attrs += ", tooltip=" + DotQuote(Safe(n.status_detail));
  return indent + DotQuote(Safe(n.id)) + " [" + attrs + "];\n";
}

std::string EdgeLabel(const MapEdge& e) {
  std::string s =
      FormatLookConns(e.stats) + "\n" + FormatLookBytes(e.stats.bytes_tx + e.stats.bytes_rx);
  if (e.via.port != 0) s += "\nvia " + e.via.ToString();
  return s;
}

std::string Arrow(const MapEdge& e, const std::string& label, const std::string& style) {
  return "  " + DotQuote(Safe(e.from)) + " -> " + DotQuote(Safe(e.to)) +
         " [label=" + DotQuote(label) + style + "];\n";
}

}  // namespace

std::string FormatMapDot(const MapResult& r) {
  const MapGraph& g = r.graph;
  // With a baseline: this window's edges that appeared or changed, and the
  // baseline's edges (and their ends) that are gone.
  std::map<std::string, const MapEdgeChange*> change_of;
  std::vector<const MapEdge*> gone_edges;
  std::set<std::string> present;
  for (const MapNode& n : g.nodes) present.insert(n.id);
  std::vector<const MapNode*> nodes;
  for (const MapNode& n : g.nodes) nodes.push_back(&n);
  std::set<std::string> gone_nodes;
  NodeIndex index(r);
  for (const MapEdgeChange& c : r.changes) {
    if (c.kind != MapChangeKind::kDisappeared) {
      change_of.emplace(EdgeKey(c.edge), &c);
      continue;
    }
    gone_edges.push_back(&c.edge);
    for (const std::string& id : {c.edge.from, c.edge.to}) {
      const MapNode* n = index.Find(id);
      if (n != nullptr && present.insert(id).second) {
        nodes.push_back(n);
        gone_nodes.insert(id);
      }
    }
  }

  std::string out = "digraph map {\n  rankdir=LR;\n  node [shape=box];\n";
  std::map<std::string, std::string> clusters;  // host -> its vertices
  std::string loose;                            // external: no host
  for (const MapNode* n : nodes) {
    const bool gone = gone_nodes.count(n->id) > 0;
    if (n->host.empty())
      loose += Vertex(*n, gone, "  ");
    else
      clusters[n->host] += Vertex(*n, gone, "    ");
  }
  for (const auto& [host, vertices] : clusters)
    out += "  subgraph " + DotQuote("cluster_" + Safe(host)) +
           " {\n    label=" + DotQuote(Safe(host)) + ";\n" + vertices + "  }\n";
  out += loose;
  for (const MapEdge& e : g.edges) {
    auto it = change_of.find(EdgeKey(e));
    if (it == change_of.end()) {
      out += Arrow(e, EdgeLabel(e), "");
    } else if (it->second->kind == MapChangeKind::kAppeared) {
      out += Arrow(e, "+ " + EdgeLabel(e), ", color=green, fontcolor=green");
    } else {
      out += Arrow(e, Factor(it->second->factor) + " " + EdgeLabel(e),
                   ", color=orange, fontcolor=orange, penwidth=2");
    }
  }
  for (const MapEdge* e : gone_edges)
    out += Arrow(*e, "- " + EdgeLabel(*e), ", color=red, fontcolor=red, style=dashed");
  return out + "}\n";
}

}  // namespace flowmesh
