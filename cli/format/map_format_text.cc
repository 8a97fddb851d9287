// The map as text for a terminal: a summary, each host's workloads with
// their clients and dependencies, external addresses, the members that did
// not answer, and with a baseline the edges that changed.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <vector>

#include "cli/format/map_format.h"
#include "cli/format/map_format_internal.h"
#include "node/common/clock.h"

namespace flowmesh {
namespace {

using namespace map_format_internal;

std::string Window(const TimeWindow& w) {
  std::string since = w.since_ns == 0 ? "the beginning" : FormatRfc3339(w.since_ns);
  std::string until =
      w.until_ns == std::numeric_limits<int64_t>::max() ? "now" : FormatRfc3339(w.until_ns);
  return since + " to " + until;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string Status(const MapNode* n) {
  if (n == nullptr || n->status == LookStatus::kOk) return "";
  return " [" + std::string(LookStatusName(n->status)) + "]";
}

std::string Summary(const MapResult& r) {
  const MapGraph& g = r.graph;
  size_t answered = 0, workloads = 0, balancers = 0, external = 0;
  for (const MapMember& m : g.members) answered += m.answered;
  for (const MapNode& n : g.nodes) {
    workloads += n.kind == MapNodeKind::kWorkload;
    balancers += n.kind == MapNodeKind::kBalancer;
    external += n.kind == MapNodeKind::kExternal;
  }
  std::string s = "map: " + std::to_string(answered) + " of " +
                  Plural(g.members.size(), "member", "members") + " answered";
  if (answered < g.members.size()) {
    // A few names keep the line a line; the section below lists them all.
    constexpr size_t kNamed = 5;
    std::string missing;
    size_t unanswered = 0;
    for (const MapMember& m : g.members)
      if (!m.answered && unanswered++ < kNamed)
        missing += (missing.empty() ? "" : ", ") + Safe(m.name);
    if (unanswered > kNamed) missing += " and " + std::to_string(unanswered - kNamed) + " more";
    s += " (not " + missing + ")";
  }
  s += ", " + Plural(workloads, "workload", "workloads") + ", " + std::to_string(external) +
       " external, " + Plural(balancers, "balancer", "balancers") + ", " +
       Plural(g.edges.size(), "edge", "edges") + ", " + Window(g.window) + "\n";
  return s;
}

// The first line of a node: its label, the process behind it, where it
// listens, its status and why.
std::string NodeLine(const MapNode& n) {
  std::string s = "  " + Safe(n.label.empty() ? n.id : n.label);
  // A workload's label is its unit or container; the process tells which
  // program. A label that is the process already ("'curl' pgid 12", a login
  // session's group) says it once.
  if (n.process && !n.process->workload.empty() && !n.label.starts_with("'")) {
    const ProcessDetails& p = *n.process;
    s += " ('" + Safe(p.comm) + "', " +
         (p.pgid != 0 ? "pgid=" + std::to_string(p.pgid) : "pid=" + std::to_string(p.pid)) + ")";
  }
  std::string listens;
  for (const Endpoint& e : n.endpoints)
    if (e.port != 0 && n.kind != MapNodeKind::kBalancer && e.ToString() != n.label)
      listens += (listens.empty() ? "" : ", ") + e.ToString();
  if (!listens.empty()) s += "  " + listens;
  s += Status(&n);
  if (!n.status_detail.empty()) s += "  (" + Safe(n.status_detail) + ")";
  return s + "\n";
}

// "    <-- 'curl' pgid 5982 on client-1  10.213.0.2:80  3 conns 1.4 KB"
std::string EdgeLine(const NodeIndex& index, const MapEdge& e, bool client) {
  const std::string& peer = client ? e.from : e.to;
  const MapNode* n = index.Find(peer);
  std::string s = std::string(client ? "    <-- " : "    --> ") + NodeName(index, peer);
  // An external server's label is the endpoint itself.
  if (n == nullptr || n->label != e.endpoint.ToString()) s += "  " + e.endpoint.ToString();
  if (e.via.port != 0) s += " via " + e.via.ToString();
  s += Status(n) + "  " + Traffic(e.stats);
  return s + "\n";
}

void NodeBlock(const NodeIndex& index, const MapNode& n,
               const std::multimap<std::string, const MapEdge*>& in,
               const std::multimap<std::string, const MapEdge*>& out, std::string& text) {
  text += NodeLine(n);
  for (bool client : {true, false}) {
    const auto& edges = client ? in : out;
    auto [lo, hi] = edges.equal_range(n.id);
    std::vector<std::pair<std::string, const MapEdge*>> lines;
    for (auto it = lo; it != hi; ++it)
      lines.emplace_back(NodeName(index, client ? it->second->from : it->second->to), it->second);
    std::stable_sort(lines.begin(), lines.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [name, e] : lines) text += EdgeLine(index, *e, client);
  }
}

std::string ChangeLine(const NodeIndex& index, const MapEdgeChange& c) {
  static constexpr const char* kMark[] = {"+ ", "- ", "~ "};
  std::string s = std::string("  ") + kMark[static_cast<int>(c.kind)] +
                  NodeName(index, c.edge.from) + " --> " + NodeName(index, c.edge.to) + "  " +
                  c.edge.endpoint.ToString();
  if (c.edge.via.port != 0) s += " via " + c.edge.via.ToString();
  switch (c.kind) {
    case MapChangeKind::kAppeared: s += "  appeared, " + Traffic(c.edge.stats); break;
    case MapChangeKind::kDisappeared:
      s += "  disappeared, had " + Traffic(c.before ? *c.before : c.edge.stats);
      break;
    case MapChangeKind::kChanged:
      s += "  changed " + Factor(c.factor) + ", " +
           (c.before ? Traffic(*c.before) + " -> " : std::string()) + Traffic(c.edge.stats);
      break;
  }
  return s + "\n";
}

}  // namespace

std::string FormatMapText(const MapResult& r) {
  const MapGraph& g = r.graph;
  NodeIndex index(r);
  std::string text = Summary(r);
  std::multimap<std::string, const MapEdge*> in, out;
  for (const MapEdge& e : g.edges) {
    in.emplace(e.to, &e);
    out.emplace(e.from, &e);
  }
  // Hosts in order, each host's nodes by label; external addresses last.
  std::map<std::string, std::vector<const MapNode*>> by_host;
  std::vector<const MapNode*> external;
  for (const MapNode& n : g.nodes) (n.host.empty() ? external : by_host[n.host]).push_back(&n);
  auto by_label = [](const MapNode* a, const MapNode* b) {
    return std::tie(a->label, a->id) < std::tie(b->label, b->id);
  };
  for (auto& [host, nodes] : by_host) {
    std::sort(nodes.begin(), nodes.end(), by_label);
    text += "\n" + Safe(host) + "\n";
    for (const MapNode* n : nodes) NodeBlock(index, *n, in, out, text);
  }
  if (!external.empty()) {
    std::sort(external.begin(), external.end(), by_label);
    text += "\nexternal (no meshd)\n";
    for (const MapNode* n : external) NodeBlock(index, *n, in, out, text);
  }
  if (g.nodes.empty()) text += "\n(no connections in the window)\n";

  std::string missing;
  for (const MapMember& m : g.members) {
    if (m.answered && !m.truncated) continue;
    missing += "  " + Safe(m.name);
    if (!m.address.empty() || !m.state.empty())
      missing += " (" + Safe(m.address) + (m.address.empty() || m.state.empty() ? "" : ", ") +
                 Safe(m.state) + ")";
    missing += m.answered ? ": answered in part: it had more than an answer may carry"
                          : ": " + (m.error.empty() ? std::string("no answer") : Safe(m.error));
    missing += "\n";
  }
  if (!missing.empty()) text += "\nmembers that did not answer in full\n" + missing;

  if (r.query.baseline) {
    char factor[32];
    std::snprintf(factor, sizeof factor, "%g", r.query.change_factor);
    text += "\nchanges since " + Window(*r.query.baseline) + " (changed: more than x" + factor +
            " either way)\n";
    for (const MapEdgeChange& c : r.changes) text += ChangeLine(index, c);
    if (r.changes.empty()) text += "  (none)\n";
  }
  return text;
}

}  // namespace flowmesh
