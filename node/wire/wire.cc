// Conversions of the common schema's structs.
#include "node/wire/wire.h"

#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <string_view>

namespace flowmesh::wire {
namespace s = schema;

kj::ArrayPtr<const kj::byte> AddrBytes(const IpAddr& a) {
  size_t n = a.family == AF_INET ? 4 : a.family == AF_INET6 ? 16 : 0;
  return {a.bytes.data(), n};
}

// Decodes an address by its length (4, 16, or 0 for "none"), so a listener's
// empty remote address round-trips as unset.
Result<IpAddr> AddrFromWire(capnp::Data::Reader d, const char* what) {
  IpAddr a;
  if (d.size() == 0) return a;
  if (d.size() != 4 && d.size() != 16)
    return InvalidArgument(std::string(what) + " of " + std::to_string(d.size()) +
                           " bytes (expected 4 or 16)");
  a.family = d.size() == 4 ? AF_INET : AF_INET6;
  std::copy(d.begin(), d.end(), a.bytes.begin());
  return a;
}

void AddrToWire(const IpAddr& a, s::Addr::Builder b) { b.setBytes(AddrBytes(a)); }

Result<IpAddr> AddrFromWire(s::Addr::Reader r, const char* what) {
  return AddrFromWire(r.getBytes(), what);
}

void EndpointToWire(const Endpoint& e, s::Endpoint::Builder b) {
  AddrToWire(e.addr, b.initAddr());
  b.setPort(e.port);
}

Result<Endpoint> EndpointFromWire(s::Endpoint::Reader r) {
  Endpoint e;
  FM_ASSIGN_OR_RETURN(e.addr, AddrFromWire(r.getAddr().getBytes(), "endpoint address"));
  e.port = r.getPort();
  return e;
}

void DetailsToWire(const ProcessDetails& p, s::ProcessDetails::Builder b) {
  b.setPid(p.pid);
  b.setStartTicks(p.start_ticks);
  b.setPgid(p.pgid);
  b.setPpid(p.ppid);
  b.setComm(p.comm);
  b.setExe(p.exe);
  b.setCgroupId(p.cgroup_id);
  if (!p.workload.empty() && WorkloadFitsWire(p.workload))
    WorkloadToWire(p.workload, b.initWorkload());
}

namespace {

bool Fits(std::string_view t, size_t max) {
  return t.size() <= max && t.find('\0') == std::string_view::npos;
}

bool FitsText(capnp::Text::Reader t, size_t max) {
  return Fits(std::string_view(t.begin(), t.size()), max);
}

}  // namespace

bool WorkloadFitsWire(const Workload& w, size_t max_text) {
  bool fits = Fits(w.runtime, max_text) && Fits(w.id, max_text) && Fits(w.name, max_text) &&
              Fits(w.unit, max_text) && Fits(w.cgroup, kMaxWorkloadCgroupBytes);
  if (fits && w.pod)
    fits = Fits(w.pod->uid, max_text) && Fits(w.pod->name, max_text) && Fits(w.pod->ns, max_text) &&
           Fits(w.pod->qos, max_text);
  return fits;
}

void WorkloadToWire(const Workload& w, s::Workload::Builder b) {
  b.setKind(std::string(WorkloadKindName(w.kind)));
  b.setRuntime(w.runtime);
  b.setId(w.id);
  b.setName(w.name);
  b.setUnit(w.unit);
  b.setUserUnit(w.user_unit);
  if (w.pod) {
    b.setHasPod(true);
    b.setPodUid(w.pod->uid);
    b.setPodName(w.pod->name);
    b.setPodNamespace(w.pod->ns);
    b.setPodQos(w.pod->qos);
  }
  b.setCgroup(w.cgroup);
}

Workload WorkloadFromWire(s::Workload::Reader r) {
  Workload w;
  // An unknown kind (a newer node's) is shown as no workload, not refused.
  std::optional<WorkloadKind> kind = ParseWorkloadKind(r.getKind().cStr());
  if (!kind || *kind == WorkloadKind::kNone) return w;
  // Another node's or meshd's answer: a text past the bounds is no workload
  // rather than a megabyte name in every tree and JSON line.
  const size_t max = kMaxWorkloadTextBytes;
  if (!FitsText(r.getRuntime(), max) || !FitsText(r.getId(), max) || !FitsText(r.getName(), max) ||
      !FitsText(r.getUnit(), max) || !FitsText(r.getCgroup(), kMaxWorkloadCgroupBytes))
    return w;
  if (r.getHasPod() && (!FitsText(r.getPodUid(), max) || !FitsText(r.getPodName(), max) ||
                        !FitsText(r.getPodNamespace(), max) || !FitsText(r.getPodQos(), max)))
    return w;
  w.kind = *kind;
  w.runtime = r.getRuntime();
  w.id = r.getId();
  w.name = r.getName();
  w.unit = r.getUnit();
  w.user_unit = r.getUserUnit();
  if (r.getHasPod()) {
    Pod p;
    p.uid = r.getPodUid();
    p.name = r.getPodName();
    p.ns = r.getPodNamespace();
    p.qos = r.getPodQos();
    w.pod = std::move(p);
  }
  w.cgroup = r.getCgroup();
  return w;
}

ProcessDetails DetailsFromWire(s::ProcessDetails::Reader r) {
  ProcessDetails p;
  p.pid = r.getPid();
  p.start_ticks = r.getStartTicks();
  p.pgid = r.getPgid();
  p.ppid = r.getPpid();
  p.comm = r.getComm();
  p.exe = r.getExe();
  p.cgroup_id = r.getCgroupId();
  if (r.hasWorkload()) p.workload = WorkloadFromWire(r.getWorkload());
  return p;
}

void FlowStatsToWire(const FlowStats& f, s::FlowStats::Builder b) {
  b.setConnections(f.connections);
  b.setBytesTx(f.bytes_tx);
  b.setBytesRx(f.bytes_rx);
  b.setSegsOut(f.segs_out);
  b.setSegsIn(f.segs_in);
  b.setRetrans(f.retrans);
  b.setRttSumUs(f.rtt_sum_us);
  b.setRttSamples(f.rtt_samples);
  b.setRttMaxUs(f.rtt_max_us);
  b.setFirstSeenNs(f.first_seen_ns);
  b.setLastSeenNs(f.last_seen_ns);
  b.setCarried(f.carried);
  b.setCarriedFromNs(f.carried_from_ns);
}

FlowStats FlowStatsFromWire(s::FlowStats::Reader r) {
  FlowStats f;
  f.connections = r.getConnections();
  f.bytes_tx = r.getBytesTx();
  f.bytes_rx = r.getBytesRx();
  f.segs_out = r.getSegsOut();
  f.segs_in = r.getSegsIn();
  f.retrans = r.getRetrans();
  f.rtt_sum_us = r.getRttSumUs();
  f.rtt_samples = r.getRttSamples();
  f.rtt_max_us = r.getRttMaxUs();
  f.first_seen_ns = r.getFirstSeenNs();
  f.last_seen_ns = r.getLastSeenNs();
  f.carried = r.getCarried();
  f.carried_from_ns = r.getCarriedFromNs();
  return f;
}

}  // namespace flowmesh::wire
