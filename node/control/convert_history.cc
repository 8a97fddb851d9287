// Conversions for what the store and the look engine answer: records,
// endpoints, store status, look queries and trees.
#include <sys/socket.h>

#include "node/control/convert.h"
#include "node/control/convert_wire.h"

namespace flowmesh {
namespace s = schema;

namespace wire {

void StoreToWire(const StoreStatus& st, s::StoreInfo::Builder b) {
  b.setDir(st.stats.dir);
  b.setDiskBytes(st.stats.disk_bytes);
  b.setRecords(st.stats.records);
  b.setOldestNs(st.stats.oldest_ns);
  b.setFlushes(st.flushes);
  b.setPendingRecords(st.pending_records);
  b.setDroppedRecords(st.dropped_records);
  b.setWriteErrors(st.stats.write_errors);
  b.setLastError(st.stats.last_error);
  b.setExpiredRecords(st.stats.expired_records);
  b.setFlows(st.flows);
  b.setDuplicates(st.duplicates);
  b.setRecordsOff(st.records_off);
}

StoreStatus StoreFromWire(s::StoreInfo::Reader r) {
  StoreStatus st;
  st.stats.dir = r.getDir();
  st.stats.disk_bytes = r.getDiskBytes();
  st.stats.records = r.getRecords();
  st.stats.oldest_ns = r.getOldestNs();
  st.flushes = r.getFlushes();
  st.pending_records = r.getPendingRecords();
  st.dropped_records = r.getDroppedRecords();
  st.stats.write_errors = r.getWriteErrors();
  st.stats.last_error = r.getLastError();
  st.stats.expired_records = r.getExpiredRecords();
  st.flows = r.getFlows();
  st.records_off = r.getRecordsOff();
  st.duplicates = r.getDuplicates();
  return st;
}

}  // namespace wire

using namespace wire;

namespace {

s::LookDirection LookDirectionToWire(LookDirection d) {
  switch (d) {
    case LookDirection::kBoth: return s::LookDirection::BOTH;
    case LookDirection::kIn: return s::LookDirection::IN;
    case LookDirection::kOut: return s::LookDirection::OUT;
  }
  return s::LookDirection::BOTH;
}

Result<LookDirection> LookDirectionFromWire(s::LookDirection d) {
  switch (d) {
    case s::LookDirection::BOTH: return LookDirection::kBoth;
    case s::LookDirection::IN: return LookDirection::kIn;
    case s::LookDirection::OUT: return LookDirection::kOut;
  }
  return InvalidArgument("unknown look direction " + std::to_string(static_cast<int>(d)));
}

s::LookStatus LookStatusToWire(LookStatus st) {
  switch (st) {
    case LookStatus::kOk: return s::LookStatus::OK;
    case LookStatus::kNoAgent: return s::LookStatus::NO_AGENT;
    case LookStatus::kUnreachable: return s::LookStatus::UNREACHABLE;
    case LookStatus::kCycle: return s::LookStatus::CYCLE;
    case LookStatus::kDepthLimit: return s::LookStatus::DEPTH_LIMIT;
    case LookStatus::kUnconfirmed: return s::LookStatus::UNCONFIRMED;
    case LookStatus::kUnsynced: return s::LookStatus::UNSYNCED;
  }
  return s::LookStatus::OK;
}

Result<LookStatus> LookStatusFromWire(s::LookStatus st) {
  switch (st) {
    case s::LookStatus::OK: return LookStatus::kOk;
    case s::LookStatus::NO_AGENT: return LookStatus::kNoAgent;
    case s::LookStatus::UNREACHABLE: return LookStatus::kUnreachable;
    case s::LookStatus::CYCLE: return LookStatus::kCycle;
    case s::LookStatus::DEPTH_LIMIT: return LookStatus::kDepthLimit;
    case s::LookStatus::UNCONFIRMED: return LookStatus::kUnconfirmed;
    case s::LookStatus::UNSYNCED: return LookStatus::kUnsynced;
  }
  return InvalidArgument("unknown look status " + std::to_string(static_cast<int>(st)));
}

Result<LookNode> LookNodeFromWire(s::LookNode::Reader r, int depth) {
  if (depth > 2 * kMaxLookDepth + 2) return InvalidArgument("look tree nested too deeply");
  LookNode n;
  n.host = r.getHost();
  FM_ASSIGN_OR_RETURN(n.addr, AddrFromWire(r.getAddr(), "look address"));
  n.port = r.getPort();
  if (r.getHasProcess()) n.process = DetailsFromWire(r.getProcess());
  FM_ASSIGN_OR_RETURN(n.status, LookStatusFromWire(r.getStatus()));
  n.status_detail = r.getStatusDetail();
  if (r.getHasStats()) n.stats = FlowStatsFromWire(r.getStats());
  n.balancer = r.getBalancer();
  if (r.hasVia()) {
    FM_ASSIGN_OR_RETURN(n.via, EndpointFromWire(r.getVia()));
  }
  for (s::Endpoint::Reader a : r.getAliases()) {
    FM_ASSIGN_OR_RETURN(Endpoint alias, EndpointFromWire(a));
    n.aliases.push_back(alias);
  }
  for (s::LookNode::Reader c : r.getClients()) {
    FM_ASSIGN_OR_RETURN(LookNode child, LookNodeFromWire(c, depth + 1));
    n.clients.push_back(std::move(child));
  }
  for (s::LookNode::Reader c : r.getDependencies()) {
    FM_ASSIGN_OR_RETURN(LookNode child, LookNodeFromWire(c, depth + 1));
    n.dependencies.push_back(std::move(child));
  }
  return n;
}

}  // namespace

void ToCapnp(const ConnRecord& r, s::Record::Builder b) {
  b.setTsNs(r.ts_ns);
  KeyToWire(r.key, b.initKey());
  b.setDirection(DirectionToWire(r.direction));
  ProcessToWire(r.proc, b.initProcess());
  CountersToWire(r.counters, b.initCounters());
  b.setDurationNs(r.duration_ns);
  b.setReconstructed(r.reconstructed);
}

Result<ConnRecord> FromCapnp(s::Record::Reader r) {
  ConnRecord rec;
  rec.ts_ns = r.getTsNs();
  FM_ASSIGN_OR_RETURN(rec.key, KeyFromWire(r.getKey()));
  FM_ASSIGN_OR_RETURN(rec.direction, DirectionFromWire(r.getDirection()));
  rec.proc = ProcessFromWire(r.getProcess());
  rec.counters = CountersFromWire(r.getCounters());
  rec.duration_ns = r.getDurationNs();
  rec.reconstructed = r.getReconstructed();
  return rec;
}

void ToCapnp(const EndpointView& e, s::EndpointInfo::Builder b) {
  b.setNetns(e.endpoint.netns);
  b.setFamily(e.endpoint.addr.family);
  b.setAddr(AddrBytes(e.endpoint.addr));
  b.setPort(e.endpoint.port);
  DetailsToWire(e.process, b.initProcess());
  b.setSinceNs(e.endpoint.since_ns);
  b.setNode(e.node);
  if (e.targets.empty()) return;
  auto targets = b.initTargets(static_cast<unsigned>(e.targets.size()));
  for (unsigned i = 0; i < e.targets.size(); i++) EndpointToWire(e.targets[i], targets[i]);
  b.setBalancer(e.balancer);
}

Result<EndpointView> FromCapnp(s::EndpointInfo::Reader r) {
  EndpointView e;
  e.endpoint.netns = r.getNetns();
  FM_ASSIGN_OR_RETURN(e.endpoint.addr, AddrFromWire(r.getAddr(), "endpoint address"));
  if (e.endpoint.addr.family != r.getFamily())
    return InvalidArgument("endpoint address does not match its family");
  e.endpoint.port = r.getPort();
  e.process = DetailsFromWire(r.getProcess());
  e.endpoint.proc.pid = e.process.pid;
  e.endpoint.proc.start_ticks = e.process.start_ticks;
  e.endpoint.proc.set_comm(e.process.comm);
  e.endpoint.since_ns = r.getSinceNs();
  e.node = r.getNode();
  for (s::Endpoint::Reader t : r.getTargets()) {
    FM_ASSIGN_OR_RETURN(Endpoint target, EndpointFromWire(t));
    if (target.port == 0 || target.addr.is_unspecified())
      return InvalidArgument("alias " + Endpoint{e.endpoint.addr, e.endpoint.port}.ToString() +
                             " has an incomplete target " + target.ToString());
    e.targets.push_back(target);
  }
  e.balancer = r.getBalancer();
  return e;
}

void ToCapnp(const LookQuery& q, s::LookQuery::Builder b) {
  b.setFamily(q.target.addr.family);
  b.setAddr(AddrBytes(q.target.addr));
  b.setPort(q.target.port);
  b.setDirection(LookDirectionToWire(q.direction));
  b.setDepth(static_cast<uint32_t>(q.depth));
  b.setSinceNs(q.window.since_ns);
  b.setUntilNs(q.window.until_ns);
  b.setHopTimeoutNs(q.hop_timeout_ns);
  b.setTimeoutNs(q.timeout_ns);
  b.setGroupBy(std::string(GroupByName(q.group_by)));
}

Result<LookQuery> FromCapnp(s::LookQuery::Reader r) {
  LookQuery q;
  FM_ASSIGN_OR_RETURN(q.target.addr, AddrFromWire(r.getAddr(), "look target"));
  if (q.target.addr.family != AF_INET && q.target.addr.family != AF_INET6)
    return InvalidArgument("look needs a target address");
  q.target.port = r.getPort();
  FM_ASSIGN_OR_RETURN(q.direction, LookDirectionFromWire(r.getDirection()));
  if (r.getDepth() < 1 || r.getDepth() > static_cast<uint32_t>(kMaxLookDepth))
    return InvalidArgument("look depth " + std::to_string(r.getDepth()) + " is out of range 1.." +
                           std::to_string(kMaxLookDepth));
  q.depth = static_cast<int>(r.getDepth());
  q.window.since_ns = r.getSinceNs();
  q.window.until_ns = r.getUntilNs();
  if (q.window.until_ns < q.window.since_ns)
    return InvalidArgument("look window ends before it starts");
  if (r.getHopTimeoutNs() < 0 || r.getTimeoutNs() < 0)
    return InvalidArgument("look timeouts must not be negative");
  if (r.getHopTimeoutNs() > 0) q.hop_timeout_ns = r.getHopTimeoutNs();
  if (r.getTimeoutNs() > 0) q.timeout_ns = r.getTimeoutNs();
  if (r.getGroupBy().size() == 0) {
    q.group_by = GroupBy::kPgid;
  } else {
    FM_ASSIGN_OR_RETURN(q.group_by, ParseGroupBy(r.getGroupBy().cStr()));
  }
  return q;
}

void ToCapnp(const LookNode& n, s::LookNode::Builder b) {
  b.setHost(n.host);
  b.setFamily(n.addr.family);
  b.setAddr(AddrBytes(n.addr));
  b.setPort(n.port);
  b.setHasProcess(n.process.has_value());
  if (n.process) DetailsToWire(*n.process, b.initProcess());
  b.setStatus(LookStatusToWire(n.status));
  if (!n.status_detail.empty()) b.setStatusDetail(n.status_detail);
  b.setHasStats(n.stats.has_value());
  if (n.stats) FlowStatsToWire(*n.stats, b.initStats());
  b.setBalancer(n.balancer);
  if (n.via.port != 0) EndpointToWire(n.via, b.initVia());
  if (!n.aliases.empty()) {
    auto aliases = b.initAliases(static_cast<unsigned>(n.aliases.size()));
    for (unsigned i = 0; i < n.aliases.size(); i++) EndpointToWire(n.aliases[i], aliases[i]);
  }
  auto clients = b.initClients(static_cast<unsigned>(n.clients.size()));
  for (unsigned i = 0; i < n.clients.size(); i++) ToCapnp(n.clients[i], clients[i]);
  auto deps = b.initDependencies(static_cast<unsigned>(n.dependencies.size()));
  for (unsigned i = 0; i < n.dependencies.size(); i++) ToCapnp(n.dependencies[i], deps[i]);
}

Result<LookNode> FromCapnp(s::LookNode::Reader r) { return LookNodeFromWire(r, 0); }

}  // namespace flowmesh
