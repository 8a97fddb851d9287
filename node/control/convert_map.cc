// The map on the control socket: MapQuery and MapResult to and from
// control.capnp, every text and list bounded on the way in.
#include <cmath>
#include <string>

#include "node/control/convert.h"
#include "node/control/convert_wire.h"

namespace flowmesh {
namespace s = schema;
using namespace wire;

namespace {

// The casts below rely on the wire's enums keeping the structs' order.
static_assert(static_cast<int>(s::MapNodeKind::EXTERNAL) ==
              static_cast<int>(MapNodeKind::kExternal));
static_assert(static_cast<int>(s::MapChangeKind::CHANGED) ==
              static_cast<int>(MapChangeKind::kChanged));
static_assert(static_cast<int>(s::LookStatus::UNSYNCED) == static_cast<int>(LookStatus::kUnsynced));

// The wire's LookStatus (control.capnp) and the map's node statuses are
// the same enum; a value past the known ones is a newer meshd's.
Result<LookStatus> StatusFromWire(s::LookStatus st) {
  const auto n = static_cast<uint16_t>(st);
  if (n > static_cast<uint16_t>(s::LookStatus::UNSYNCED))
    return InvalidArgument("map node status " + std::to_string(n) +
                           " is unknown (is meshd newer than meshctl?)");
  return static_cast<LookStatus>(n);
}

// A text of the answer within `max` bytes; `what` names it in the error.
Result<std::string> Text(capnp::Text::Reader t, size_t max, const std::string& what) {
  if (t.size() > max)
    return InvalidArgument(what + " of " + std::to_string(t.size()) + " bytes is over the " +
                           std::to_string(max) + "-byte limit");
  return std::string(t.cStr(), t.size());
}

template <typename List>
Status ListFits(const List& l, size_t max, const char* what) {
  if (l.size() > max)
    return InvalidArgument(std::string("a map with ") + std::to_string(l.size()) + " " + what +
                           " is over the limit of " + std::to_string(max));
  return Status::Ok();
}

void WindowToWire(const TimeWindow& w, int64_t* since, int64_t* until) {
  *since = w.since_ns;
  *until = w.until_ns;
}

Result<TimeWindow> WindowFromWire(int64_t since, int64_t until, const char* what) {
  if (until < since) return InvalidArgument(std::string(what) + " ends before it starts");
  return TimeWindow{since, until};
}

// Every text is cut to the limit NodeFromWire and its kin hold it to: a
// label a process chose (a 3 KB container name) must not make meshctl
// refuse the whole map that /api/map shows.
void NodeToWire(const MapNode& n, s::MapNode::Builder b) {
  b.setId(ClampMapText(n.id, kMaxMapTextBytes));
  b.setKind(static_cast<s::MapNodeKind>(n.kind));
  b.setHost(ClampMapText(n.host, kMaxMapTextBytes));
  b.setHasProcess(n.process.has_value());
  if (n.process) DetailsToWire(*n.process, b.initProcess());
  auto eps = b.initEndpoints(static_cast<unsigned>(n.endpoints.size()));
  for (unsigned i = 0; i < n.endpoints.size(); i++) EndpointToWire(n.endpoints[i], eps[i]);
  b.setStatus(static_cast<s::LookStatus>(n.status));
  b.setStatusDetail(ClampMapText(n.status_detail, kMaxMapDetailBytes));
  b.setLabel(ClampMapText(n.label, kMaxMapTextBytes));
}

Result<MapNode> NodeFromWire(s::MapNode::Reader r) {
  MapNode n;
  FM_ASSIGN_OR_RETURN(n.id, Text(r.getId(), kMaxMapTextBytes, "a map node's id"));
  const auto kind = static_cast<uint16_t>(r.getKind());
  if (kind > static_cast<uint16_t>(s::MapNodeKind::EXTERNAL))
    return InvalidArgument("map node " + n.id + " has the unknown kind " + std::to_string(kind) +
                           " (is meshd newer than meshctl?)");
  n.kind = static_cast<MapNodeKind>(kind);
  FM_ASSIGN_OR_RETURN(n.host, Text(r.getHost(), kMaxMapTextBytes, "map node " + n.id + "'s host"));
  if (r.getHasProcess()) n.process = DetailsFromWire(r.getProcess());
  FM_RETURN_IF_ERROR(ListFits(r.getEndpoints(), kMaxMapNodeEndpoints, "endpoints on one node"));
  for (s::Endpoint::Reader e : r.getEndpoints()) {
    FM_ASSIGN_OR_RETURN(Endpoint ep, EndpointFromWire(e));
    n.endpoints.push_back(ep);
  }
  FM_ASSIGN_OR_RETURN(n.status, StatusFromWire(r.getStatus()));
  FM_ASSIGN_OR_RETURN(n.status_detail, Text(r.getStatusDetail(), kMaxMapDetailBytes,
                                            "map node " + n.id + "'s status detail"));
  FM_ASSIGN_OR_RETURN(n.label,
                      Text(r.getLabel(), kMaxMapTextBytes, "map node " + n.id + "'s label"));
  return n;
}

void EdgeToWire(const MapEdge& e, s::MapEdge::Builder b) {
  // Cut as NodeToWire cuts ids: the edge still names its nodes.
  b.setFrom(ClampMapText(e.from, kMaxMapTextBytes));
  b.setTo(ClampMapText(e.to, kMaxMapTextBytes));
  EndpointToWire(e.endpoint, b.initEndpoint());
  if (e.via.port != 0) EndpointToWire(e.via, b.initVia());
  FlowStatsToWire(e.stats, b.initStats());
  b.setClientSeen(e.client_seen);
  b.setServerSeen(e.server_seen);
}

Result<MapEdge> EdgeFromWire(s::MapEdge::Reader r) {
  MapEdge e;
  FM_ASSIGN_OR_RETURN(e.from, Text(r.getFrom(), kMaxMapTextBytes, "a map edge's from"));
  FM_ASSIGN_OR_RETURN(e.to, Text(r.getTo(), kMaxMapTextBytes, "a map edge's to"));
  FM_ASSIGN_OR_RETURN(e.endpoint, EndpointFromWire(r.getEndpoint()));
  if (r.hasVia()) {
    FM_ASSIGN_OR_RETURN(e.via, EndpointFromWire(r.getVia()));
  }
  e.stats = FlowStatsFromWire(r.getStats());
  e.client_seen = r.getClientSeen();
  e.server_seen = r.getServerSeen();
  return e;
}

void MemberToWire(const MapMember& m, s::MapMember::Builder b) {
  b.setName(ClampMapText(m.name, kMaxMapTextBytes));
  b.setAddress(ClampMapText(m.address, kMaxMapTextBytes));
  b.setState(ClampMapText(m.state, kMaxMapTextBytes));
  b.setAnswered(m.answered);
  b.setError(ClampMapText(m.error, kMaxMapDetailBytes));
  b.setAnswerBytes(m.answer_bytes);
  b.setLatencyNs(m.latency_ns);
  b.setTruncated(m.truncated);
}

Result<MapMember> MemberFromWire(s::MapMember::Reader r) {
  MapMember m;
  FM_ASSIGN_OR_RETURN(m.name, Text(r.getName(), kMaxMapTextBytes, "a map member's name"));
  FM_ASSIGN_OR_RETURN(m.address,
                      Text(r.getAddress(), kMaxMapTextBytes, "member " + m.name + "'s address"));
  FM_ASSIGN_OR_RETURN(m.state,
                      Text(r.getState(), kMaxMapTextBytes, "member " + m.name + "'s state"));
  m.answered = r.getAnswered();
  FM_ASSIGN_OR_RETURN(m.error,
                      Text(r.getError(), kMaxMapDetailBytes, "member " + m.name + "'s error"));
  m.answer_bytes = r.getAnswerBytes();
  m.latency_ns = r.getLatencyNs();
  m.truncated = r.getTruncated();
  return m;
}

void GraphToWire(const MapGraph& g, s::MapGraph::Builder b) {
  int64_t since, until;
  WindowToWire(g.window, &since, &until);
  b.setSinceNs(since);
  b.setUntilNs(until);
  auto nodes = b.initNodes(static_cast<unsigned>(g.nodes.size()));
  for (unsigned i = 0; i < g.nodes.size(); i++) NodeToWire(g.nodes[i], nodes[i]);
  auto edges = b.initEdges(static_cast<unsigned>(g.edges.size()));
  for (unsigned i = 0; i < g.edges.size(); i++) EdgeToWire(g.edges[i], edges[i]);
  auto members = b.initMembers(static_cast<unsigned>(g.members.size()));
  for (unsigned i = 0; i < g.members.size(); i++) MemberToWire(g.members[i], members[i]);
}

Result<MapGraph> GraphFromWire(s::MapGraph::Reader r, const char* what) {
  MapGraph g;
  FM_ASSIGN_OR_RETURN(g.window, WindowFromWire(r.getSinceNs(), r.getUntilNs(), what));
  // Sizes first: a hostile or broken answer is refused before it is read.
  FM_RETURN_IF_ERROR(ListFits(r.getNodes(), kMaxMapNodes, "nodes"));
  FM_RETURN_IF_ERROR(ListFits(r.getEdges(), kMaxControlMapEdges, "edges"));
  FM_RETURN_IF_ERROR(ListFits(r.getMembers(), kMaxMapMembers, "members"));
  g.nodes.reserve(r.getNodes().size());
  for (s::MapNode::Reader n : r.getNodes()) {
    FM_ASSIGN_OR_RETURN(MapNode node, NodeFromWire(n));
    g.nodes.push_back(std::move(node));
  }
  g.edges.reserve(r.getEdges().size());
  for (s::MapEdge::Reader e : r.getEdges()) {
    FM_ASSIGN_OR_RETURN(MapEdge edge, EdgeFromWire(e));
    g.edges.push_back(std::move(edge));
  }
  for (s::MapMember::Reader m : r.getMembers()) {
    FM_ASSIGN_OR_RETURN(MapMember member, MemberFromWire(m));
    g.members.push_back(std::move(member));
  }
  return g;
}

}  // namespace

void ToCapnp(const MapQuery& q, s::MapQuery::Builder b) {
  int64_t since, until;
  WindowToWire(q.window, &since, &until);
  b.setSinceNs(since);
  b.setUntilNs(until);
  b.setGroupBy(std::string(GroupByName(q.group_by)));
  b.setHost(q.host);
  b.setWorkload(q.workload);
  b.setDepth(static_cast<uint32_t>(q.depth < 0 ? 0 : q.depth));
  b.setConcurrency(static_cast<uint32_t>(q.concurrency < 0 ? 0 : q.concurrency));
  b.setHopTimeoutNs(q.hop_timeout_ns);
  b.setTimeoutNs(q.timeout_ns);
  b.setHasBaseline(q.baseline.has_value());
  if (q.baseline) {
    WindowToWire(*q.baseline, &since, &until);
    b.setBaselineSinceNs(since);
    b.setBaselineUntilNs(until);
  }
  b.setChangeFactor(q.change_factor);
}

Result<MapQuery> FromCapnp(s::MapQuery::Reader r) {
  MapQuery q;
  FM_ASSIGN_OR_RETURN(q.window, WindowFromWire(r.getSinceNs(), r.getUntilNs(), "the map window"));
  FM_ASSIGN_OR_RETURN(std::string group_by, Text(r.getGroupBy(), 16, "the map's group-by"));
  FM_ASSIGN_OR_RETURN(q.group_by, ParseGroupBy(group_by));
  FM_ASSIGN_OR_RETURN(q.host, Text(r.getHost(), kMaxMapQueryTextBytes, "map --host"));
  FM_ASSIGN_OR_RETURN(q.workload, Text(r.getWorkload(), kMaxMapQueryTextBytes, "map --workload"));
  if (r.getDepth() > static_cast<uint32_t>(kMaxMapDepth))
    return InvalidArgument("map depth " + std::to_string(r.getDepth()) + " is over " +
                           std::to_string(kMaxMapDepth));
  q.depth = static_cast<int>(r.getDepth());
  if (r.getConcurrency() > static_cast<uint32_t>(kMaxMapConcurrency))
    return InvalidArgument("map concurrency " + std::to_string(r.getConcurrency()) + " is over " +
                           std::to_string(kMaxMapConcurrency));
  if (r.getConcurrency() > 0) q.concurrency = static_cast<int>(r.getConcurrency());
  if (r.getHopTimeoutNs() < 0 || r.getTimeoutNs() < 0)
    return InvalidArgument("map timeouts must not be negative");
  if (r.getTimeoutNs() > kMaxMapTimeoutNs || r.getHopTimeoutNs() > kMaxMapTimeoutNs)
    return InvalidArgument("a map timeout of " + std::to_string(r.getTimeoutNs() / 1'000'000'000) +
                           "s is over the limit of " +
                           std::to_string(kMaxMapTimeoutNs / 1'000'000'000) + "s");
  if (r.getTimeoutNs() > 0) q.timeout_ns = r.getTimeoutNs();
  if (r.getHopTimeoutNs() > 0) q.hop_timeout_ns = r.getHopTimeoutNs();
  if (q.hop_timeout_ns > q.timeout_ns) q.hop_timeout_ns = q.timeout_ns;
  if (r.getHasBaseline()) {
    FM_ASSIGN_OR_RETURN(q.baseline, WindowFromWire(r.getBaselineSinceNs(), r.getBaselineUntilNs(),
                                                   "the map baseline window"));
  }
  const double f = r.getChangeFactor();
  if (f != 0) {
    if (!std::isfinite(f) || f <= 1.0)
      return InvalidArgument("map change factor " + std::to_string(f) + " is not a number above 1");
    q.change_factor = f;
  }
  return q;
}

void ToCapnp(const MapResult& m, s::MapResult::Builder b) {
  ToCapnp(m.query, b.initQuery());
  GraphToWire(m.graph, b.initGraph());
  b.setHasBaseline(m.baseline.has_value());
  if (m.baseline) GraphToWire(*m.baseline, b.initBaseline());
  auto changes = b.initChanges(static_cast<unsigned>(m.changes.size()));
  for (unsigned i = 0; i < m.changes.size(); i++) {
    const MapEdgeChange& c = m.changes[i];
    changes[i].setKind(static_cast<s::MapChangeKind>(c.kind));
    EdgeToWire(c.edge, changes[i].initEdge());
    changes[i].setHasBefore(c.before.has_value());
    if (c.before) FlowStatsToWire(*c.before, changes[i].initBefore());
    changes[i].setFactor(c.factor);
  }
}

Result<MapResult> FromCapnp(s::MapResult::Reader r) {
  MapResult m;
  FM_ASSIGN_OR_RETURN(m.query, FromCapnp(r.getQuery()));
  FM_ASSIGN_OR_RETURN(m.graph, GraphFromWire(r.getGraph(), "the map window"));
  if (r.getHasBaseline()) {
    FM_ASSIGN_OR_RETURN(m.baseline, GraphFromWire(r.getBaseline(), "the baseline window"));
  }
  FM_RETURN_IF_ERROR(ListFits(r.getChanges(), kMaxMapChanges, "changes"));
  for (s::MapEdgeChange::Reader c : r.getChanges()) {
    MapEdgeChange change;
    const auto kind = static_cast<uint16_t>(c.getKind());
    if (kind > static_cast<uint16_t>(s::MapChangeKind::CHANGED))
      return InvalidArgument("map change kind " + std::to_string(kind) +
                             " is unknown (is meshd newer than meshctl?)");
    change.kind = static_cast<MapChangeKind>(kind);
    FM_ASSIGN_OR_RETURN(change.edge, EdgeFromWire(c.getEdge()));
    if (c.getHasBefore()) change.before = FlowStatsFromWire(c.getBefore());
    change.factor = c.getFactor();
    if (!std::isfinite(change.factor) || change.factor < 0)
      return InvalidArgument("map change factor " + std::to_string(change.factor) +
                             " is not a number of 0 or more");
    m.changes.push_back(std::move(change));
  }
  return m;
}

}  // namespace flowmesh
