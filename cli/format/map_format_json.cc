// The map as JSON (docs/api.md "GET /api/map"): what `meshctl map --format
// json` prints and what the page draws, from one function.
#include <cstdio>
#include <limits>
#include <string>

#include "cli/format/json.h"
#include "cli/format/look_format.h"
#include "cli/format/map_format.h"
#include "node/common/clock.h"

namespace flowmesh {
namespace {

std::string Quote(std::string_view s) { return JsonString(s); }
std::string OrNull(std::string_view s) { return s.empty() ? "null" : Quote(s); }
std::string EndpointOrNull(const Endpoint& e) { return e.port == 0 ? "null" : Quote(e.ToString()); }

// A window's bound: RFC 3339, or null for an open end (the beginning of
// the store, or now).
std::string Bound(int64_t ns, bool upper) {
  if (upper ? ns == std::numeric_limits<int64_t>::max() : ns == 0) return "null";
  return Quote(FormatRfc3339(ns));
}

std::string WindowJson(const TimeWindow& w) {
  return "{\"since\": " + Bound(w.since_ns, false) + ", \"until\": " + Bound(w.until_ns, true) +
         "}";
}

std::string NodeJson(const MapNode& n) {
  std::string out = "{\"id\": " + Quote(n.id) + ", \"kind\": " + Quote(MapNodeKindName(n.kind)) +
                    ", \"host\": " + OrNull(n.host) + ", \"label\": " + Quote(n.label) +
                    ", \"process\": " +
                    (n.process ? LookProcessJson(*n.process) : std::string("null")) +
                    ", \"endpoints\": [";
  for (size_t i = 0; i < n.endpoints.size(); i++)
    out += (i ? ", " : "") + Quote(n.endpoints[i].port ? n.endpoints[i].ToString()
                                                       : n.endpoints[i].addr.ToString());
  out += "], \"status\": " + Quote(LookStatusName(n.status)) +
         ", \"status_detail\": " + OrNull(n.status_detail) + "}";
  return out;
}

std::string EdgeFields(const MapEdge& e) {
  return "\"from\": " + Quote(e.from) + ", \"to\": " + Quote(e.to) +
         ", \"endpoint\": " + Quote(e.endpoint.ToString()) + ", \"via\": " + EndpointOrNull(e.via) +
         ", \"client_seen\": " + (e.client_seen ? "true" : "false") +
         ", \"server_seen\": " + (e.server_seen ? "true" : "false") +
         ", \"stats\": " + LookStatsJson(e.stats);
}

std::string MemberJson(const MapMember& m) {
  char latency[32];
  std::snprintf(latency, sizeof latency, "%.3f", static_cast<double>(m.latency_ns) / 1e6);
  return "{\"name\": " + Quote(m.name) + ", \"address\": " + OrNull(m.address) +
         ", \"state\": " + OrNull(m.state) + ", \"answered\": " + (m.answered ? "true" : "false") +
         ", \"error\": " + OrNull(m.error) + ", \"answer_bytes\": " +
         std::to_string(m.answer_bytes) + ", \"latency_ms\": " + latency +
         ", \"truncated\": " + (m.truncated ? "true" : "false") + "}";
}

std::string ChangeJson(const MapEdgeChange& c) {
  std::string factor = "null";
  if (c.kind == MapChangeKind::kChanged) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", c.factor);
    factor = buf;
  }
  return "{\"change\": " + Quote(MapChangeKindName(c.kind)) + ", " + EdgeFields(c.edge) +
         ", \"before\": " + (c.before ? LookStatsJson(*c.before) : std::string("null")) +
         ", \"factor\": " + factor + "}";
}

}  // namespace

std::string FormatMapJson(const MapResult& result) {
  const MapQuery& q = result.query;
  const MapGraph& g = result.graph;
  char factor[32];
  std::snprintf(factor, sizeof factor, "%.3f", q.change_factor);
  std::string out = "{\"query\": {\"window\": " + WindowJson(q.window) +
                    ", \"group_by\": " + Quote(GroupByName(q.group_by)) +
                    ", \"host\": " + OrNull(q.host) + ", \"workload\": " + OrNull(q.workload) +
                    ", \"depth\": " + std::to_string(q.depth) + ", \"baseline\": " +
                    (q.baseline ? WindowJson(*q.baseline) : std::string("null")) +
                    ", \"change_factor\": " + factor + "}";
  out += ", \"window\": " + WindowJson(g.window);

  size_t answered = 0, workloads = 0, balancers = 0, external = 0, unreachable = 0;
  for (const MapMember& m : g.members) answered += m.answered;
  for (const MapNode& n : g.nodes) {
    workloads += n.kind == MapNodeKind::kWorkload;
    balancers += n.kind == MapNodeKind::kBalancer;
    external += n.kind == MapNodeKind::kExternal;
    unreachable += n.status == LookStatus::kUnreachable;
  }
  out += ", \"summary\": {\"members\": " + std::to_string(g.members.size()) +
         ", \"answered\": " + std::to_string(answered) +
         ", \"workloads\": " + std::to_string(workloads) +
         ", \"balancers\": " + std::to_string(balancers) +
         ", \"external\": " + std::to_string(external) +
         ", \"unreachable_nodes\": " + std::to_string(unreachable) +
         ", \"edges\": " + std::to_string(g.edges.size()) + "}";

  out += ", \"nodes\": [";
  for (size_t i = 0; i < g.nodes.size(); i++) out += (i ? ", " : "") + NodeJson(g.nodes[i]);
  out += "], \"edges\": [";
  for (size_t i = 0; i < g.edges.size(); i++)
    out += (i ? ", {" : "{") + EdgeFields(g.edges[i]) + "}";
  out += "], \"members\": [";
  for (size_t i = 0; i < g.members.size(); i++) out += (i ? ", " : "") + MemberJson(g.members[i]);
  out += "], \"changes\": ";
  if (!q.baseline) {
    out += "null";
  } else {
    out += "[";
    for (size_t i = 0; i < result.changes.size(); i++)
      out += (i ? ", " : "") + ChangeJson(result.changes[i]);
    out += "]";
  }
  return out + "}\n";
}

}  // namespace flowmesh
