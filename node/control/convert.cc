// Conversions between meshd's structs and the control schema.
#include "node/control/convert.h"

#include <sys/socket.h>

#include <algorithm>

#include "node/control/convert_wire.h"

namespace flowmesh {
namespace s = schema;
namespace wire {

s::EventKind KindToWire(EventKind k) {
  switch (k) {
    case EventKind::kOpen: return s::EventKind::OPEN;
    case EventKind::kClose: return s::EventKind::CLOSE;
    case EventKind::kListen: return s::EventKind::LISTEN;
    case EventKind::kUnlisten: return s::EventKind::UNLISTEN;
    case EventKind::kUpdate: return s::EventKind::UPDATE;
  }
  return s::EventKind::OPEN;
}

Result<EventKind> KindFromWire(s::EventKind k) {
  switch (k) {
    case s::EventKind::OPEN: return EventKind::kOpen;
    case s::EventKind::CLOSE: return EventKind::kClose;
    case s::EventKind::LISTEN: return EventKind::kListen;
    case s::EventKind::UNLISTEN: return EventKind::kUnlisten;
    case s::EventKind::UPDATE: return EventKind::kUpdate;
  }
  return InvalidArgument("unknown event kind " + std::to_string(static_cast<int>(k)));
}

s::Direction DirectionToWire(Direction d) {
  switch (d) {
    case Direction::kActive: return s::Direction::ACTIVE;
    case Direction::kPassive: return s::Direction::PASSIVE;
    case Direction::kUnknown: return s::Direction::UNKNOWN;
    // Only flows are forwarded (a balancer's), and no flow key travels
    // over the control socket: records and events never say it.
    case Direction::kForwarded: return s::Direction::UNKNOWN;
  }
  return s::Direction::UNKNOWN;
}

Result<Direction> DirectionFromWire(s::Direction d) {
  switch (d) {
    case s::Direction::UNKNOWN: return Direction::kUnknown;
    case s::Direction::ACTIVE: return Direction::kActive;
    case s::Direction::PASSIVE: return Direction::kPassive;
  }
  return InvalidArgument("unknown direction " + std::to_string(static_cast<int>(d)));
}

s::Source SourceToWire(EventSource src) {
  switch (src) {
    case EventSource::kKernel: return s::Source::KERNEL;
    case EventSource::kPoll: return s::Source::POLL;
    case EventSource::kSeed: return s::Source::SEED;
  }
  return s::Source::KERNEL;
}

Result<EventSource> SourceFromWire(s::Source src) {
  switch (src) {
    case s::Source::KERNEL: return EventSource::kKernel;
    case s::Source::POLL: return EventSource::kPoll;
    case s::Source::SEED: return EventSource::kSeed;
  }
  return InvalidArgument("unknown event source " + std::to_string(static_cast<int>(src)));
}

void KeyToWire(const ConnKey& k, s::SocketKey::Builder b) {
  b.setNetns(k.netns);
  b.setFamily(k.family());
  b.setLaddr(AddrBytes(k.laddr));
  b.setLport(k.lport);
  b.setRaddr(AddrBytes(k.raddr));
  b.setRport(k.rport);
}

Result<ConnKey> KeyFromWire(s::SocketKey::Reader r) {
  ConnKey k;
  k.netns = r.getNetns();
  uint16_t family = r.getFamily();
  if (family != AF_INET && family != AF_INET6)
    return InvalidArgument("unknown address family " + std::to_string(family));
  FM_ASSIGN_OR_RETURN(k.laddr, AddrFromWire(r.getLaddr(), "local address"));
  if (k.laddr.family != family) return InvalidArgument("local address does not match its family");
  FM_ASSIGN_OR_RETURN(k.raddr, AddrFromWire(r.getRaddr(), "remote address"));
  k.lport = r.getLport();
  k.rport = r.getRport();
  return k;
}

void ProcessToWire(const ProcessRef& p, s::Process::Builder b) {
  b.setPid(p.pid);
  b.setStartTicks(p.start_ticks);
  b.setPgid(p.pgid);
  std::string_view comm = p.comm_view();
  b.setComm(capnp::Text::Reader(comm.data(), comm.size()));
}

ProcessRef ProcessFromWire(s::Process::Reader r) {
  ProcessRef p;
  p.pid = r.getPid();
  p.start_ticks = r.getStartTicks();
  p.pgid = r.getPgid();
  capnp::Text::Reader comm = r.getComm();
  p.set_comm(std::string_view(comm.cStr(), comm.size()));  // truncates to TASK_COMM_LEN
  return p;
}

void CountersToWire(const TcpCounters& c, s::Counters::Builder b) {
  b.setBytesTx(c.bytes_tx);
  b.setBytesRx(c.bytes_rx);
  b.setSegsOut(c.segs_out);
  b.setSegsIn(c.segs_in);
  b.setRetrans(c.retrans);
  b.setRttUs(c.rtt_us);
  b.setRttvarUs(c.rttvar_us);
}

TcpCounters CountersFromWire(s::Counters::Reader r) {
  TcpCounters c;
  c.bytes_tx = r.getBytesTx();
  c.bytes_rx = r.getBytesRx();
  c.segs_out = r.getSegsOut();
  c.segs_in = r.getSegsIn();
  c.retrans = r.getRetrans();
  c.rtt_us = r.getRttUs();
  c.rttvar_us = r.getRttvarUs();
  return c;
}

}  // namespace wire

using namespace wire;

bool WatchFilter::Matches(const ConnKey& key, uint32_t event_pid) const {
  if (pid != 0 && event_pid != pid) return false;
  if (family != 0 && key.family() != family) return false;
  if (!lports.empty() && std::find(lports.begin(), lports.end(), key.lport) == lports.end())
    return false;
  if (!rports.empty() && std::find(rports.begin(), rports.end(), key.rport) == rports.end())
    return false;
  return true;
}

bool WatchFilter::MatchesWorkload(const Workload& w) const {
  // --unit names a system unit: a user's manager may run one of any name.
  if (!unit.empty() &&
      (w.user_unit || (w.unit != unit && !(w.kind == WorkloadKind::kUnit && w.id == unit))))
    return false;
  if (!container.empty()) {
    if (w.kind != WorkloadKind::kContainer) return false;
    if (w.name != container && !w.id.starts_with(container)) return false;
  }
  return true;
}

namespace {

// What no unit or container name holds: a clear error beats an empty result.
Status CheckName(std::string_view option, std::string_view text, std::string_view example) {
  // Quoted as given, but no control character reaches the terminal.
  std::string quoted = "'" + std::string(text) + "'";
  for (char& c : quoted)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  if (text.empty())
    return InvalidArgument(std::string(option) + ": empty; e.g. " + std::string(example));
  if (text.size() > 255)
    return InvalidArgument(std::string(option) + ": " + std::to_string(text.size()) +
                           " bytes is longer than any name (255)");
  for (char c : text)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/')
      return InvalidArgument(std::string(option) + ": " + quoted +
                             " has a space, a slash or a control character; e.g. " +
                             std::string(example));
  return Status::Ok();
}

}  // namespace

Result<std::string> ParseUnitFilter(std::string_view text) {
  FM_RETURN_IF_ERROR(CheckName("--unit", text, "nginx.service"));
  if (text.find('.') == std::string_view::npos) return std::string(text) + ".service";
  return std::string(text);
}

Result<std::string> ParseContainerFilter(std::string_view text) {
  FM_RETURN_IF_ERROR(CheckName("--container", text, "web, or an id prefix 3f2a1c"));
  return std::string(text);
}

void ToCapnp(const ConnEvent& e, s::Event::Builder b) {
  b.setKind(KindToWire(e.kind));
  b.setDirection(DirectionToWire(e.direction));
  b.setSource(SourceToWire(e.source));
  b.setTsNs(e.ts_ns);
  KeyToWire(e.key, b.initKey());
  ProcessToWire(e.proc, b.initProcess());
  CountersToWire(e.counters, b.initCounters());
  b.setDurationNs(e.duration_ns);
}

Result<ConnEvent> FromCapnp(s::Event::Reader r) {
  ConnEvent e;
  FM_ASSIGN_OR_RETURN(e.kind, KindFromWire(r.getKind()));
  FM_ASSIGN_OR_RETURN(e.direction, DirectionFromWire(r.getDirection()));
  FM_ASSIGN_OR_RETURN(e.source, SourceFromWire(r.getSource()));
  e.ts_ns = r.getTsNs();
  FM_ASSIGN_OR_RETURN(e.key, KeyFromWire(r.getKey()));
  e.proc = ProcessFromWire(r.getProcess());
  e.counters = CountersFromWire(r.getCounters());
  e.duration_ns = r.getDurationNs();
  return e;
}

void ToCapnp(const OpenConnection& c, s::Connection::Builder b) {
  KeyToWire(c.key, b.initKey());
  b.setDirection(DirectionToWire(c.direction));
  b.setSource(SourceToWire(c.source));
  ProcessToWire(c.proc, b.initProcess());
  CountersToWire(c.counters, b.initCounters());
  b.setOpenedNs(c.opened_ns);
  b.setUpdatedNs(c.updated_ns);
}

Result<OpenConnection> FromCapnp(s::Connection::Reader r) {
  OpenConnection c;
  FM_ASSIGN_OR_RETURN(c.key, KeyFromWire(r.getKey()));
  FM_ASSIGN_OR_RETURN(c.direction, DirectionFromWire(r.getDirection()));
  FM_ASSIGN_OR_RETURN(c.source, SourceFromWire(r.getSource()));
  c.proc = ProcessFromWire(r.getProcess());
  c.counters = CountersFromWire(r.getCounters());
  c.opened_ns = r.getOpenedNs();
  c.updated_ns = r.getUpdatedNs();
  return c;
}

void ToCapnp(const NodeStatus& st, s::StatusInfo::Builder b) {
  b.setNodeName(st.node_name);
  b.setVersion(st.version);
  b.setPid(st.pid);
  b.setStartedNs(st.started_ns);
  b.setProbeMode(st.probe_mode);
  b.setProbeReason(st.probe_reason);
  b.setNetns(st.netns);
  b.setConntrack(st.conntrack);
  b.setWorkloads(st.workloads);
  b.setUi(st.ui);
  b.setEvents(st.probe.events);
  b.setLost(st.probe.lost);
  b.setMalformed(st.probe.malformed);
  std::vector<std::pair<std::string_view, uint64_t>> detail;
  for (const auto& [name, value] : st.probe.detail) detail.emplace_back(name, value);
  auto list = b.initDetail(static_cast<unsigned>(detail.size()));
  for (unsigned i = 0; i < detail.size(); i++) {
    list[i].setName(capnp::Text::Reader(detail[i].first.data(), detail[i].first.size()));
    list[i].setValue(detail[i].second);
  }
  b.setOpenConnections(st.table.open);
  b.setListeners(st.table.listeners);
  b.setOpens(st.table.opens);
  b.setCloses(st.table.closes);
  b.setWatchers(st.watchers);
  b.setFirstEventNs(st.first_event_ns);
  b.setPolls(st.probe.polls);
  b.setCloseWithoutOpen(st.table.close_without_open);
  b.setCloseUnattributed(st.table.close_unattributed);
  b.setReconstructedCloses(st.table.reconstructed_closes);
  b.setReconstructedUnlistens(st.table.reconstructed_unlistens);
  b.setLateClosesDropped(st.table.late_closes_dropped);
  StoreToWire(st.store, b.initStore());
  auto maps = b.initBpfMaps(static_cast<unsigned>(st.probe.bpf_maps.size()));
  for (unsigned i = 0; i < st.probe.bpf_maps.size(); i++) {
    maps[i].setName(st.probe.bpf_maps[i].name);
    maps[i].setMemlockBytes(st.probe.bpf_maps[i].memlock_bytes);
    maps[i].setMaxEntries(st.probe.bpf_maps[i].max_entries);
  }
  auto m = b.initMesh();
  m.setEnabled(st.mesh.enabled);
  m.setAddress(st.mesh.address);
  m.setSealed(st.mesh.sealed);
  m.setKeys(st.mesh.keys);
  m.setAlive(st.mesh.alive);
  m.setSuspect(st.mesh.suspect);
  m.setDead(st.mesh.dead);
  m.setLeft(st.mesh.left);
  m.setBytesIn(st.mesh.bytes_in);
  m.setBytesOut(st.mesh.bytes_out);
  m.setMalformed(st.mesh.malformed);
  m.setQueriesIn(st.mesh.queries_in);
  m.setLooks(st.mesh.looks);
  m.setLookRoundTrips(st.mesh.look_round_trips);
  auto refusals = m.initRefusals(static_cast<unsigned>(st.mesh.refusals.size()));
  for (unsigned i = 0; i < st.mesh.refusals.size(); i++) {
    refusals[i].setReason(st.mesh.refusals[i].reason);
    refusals[i].setCount(st.mesh.refusals[i].count);
    refusals[i].setHelp(st.mesh.refusals[i].help);
  }
  auto by_reason = [](auto list, const std::vector<Refusal>& counts) {
    for (unsigned i = 0; i < counts.size(); i++) {
      list[i].setReason(counts[i].reason);
      list[i].setCount(counts[i].count);
      list[i].setHelp(counts[i].help);
    }
  };
  by_reason(m.initLookUnanswered(static_cast<unsigned>(st.mesh.look_unanswered.size())),
            st.mesh.look_unanswered);
  m.setMaps(st.mesh.maps);
  by_reason(m.initMapUnanswered(static_cast<unsigned>(st.mesh.map_unanswered.size())),
            st.mesh.map_unanswered);
  m.setSuspicionsRaised(st.mesh.suspicions_raised);
  m.setSuspicionsReceived(st.mesh.suspicions_received);
  m.setRefutations(st.mesh.refutations);
  m.setIncarnationBumps(st.mesh.incarnation_bumps);
  m.setFalseDeaths(st.mesh.false_deaths);
  m.setFlaps(st.mesh.flaps);
  auto flapping = m.initFlapping(static_cast<unsigned>(st.mesh.flapping.size()));
  for (unsigned i = 0; i < st.mesh.flapping.size(); i++) {
    flapping[i].setName(st.mesh.flapping[i].name);
    flapping[i].setFlaps(st.mesh.flapping[i].flaps);
    flapping[i].setFalseDeaths(st.mesh.flapping[i].false_deaths);
  }
}

Result<NodeStatus> FromCapnp(s::StatusInfo::Reader r) {
  NodeStatus st;
  st.node_name = r.getNodeName();
  st.version = r.getVersion();
  st.pid = r.getPid();
  st.started_ns = r.getStartedNs();
  st.probe_mode = r.getProbeMode();
  st.probe_reason = r.getProbeReason();
  st.netns = r.getNetns();
  st.conntrack = r.getConntrack();
  st.workloads = r.getWorkloads();
  st.ui = r.getUi();
  st.probe.events = r.getEvents();
  st.probe.lost = r.getLost();
  st.probe.malformed = r.getMalformed();
  for (s::NamedCount::Reader d : r.getDetail())
    st.probe.detail.emplace_back(std::string(d.getName()), d.getValue());
  st.probe.polls = r.getPolls();
  st.table.close_without_open = r.getCloseWithoutOpen();
  st.table.close_unattributed = r.getCloseUnattributed();
  st.table.reconstructed_closes = r.getReconstructedCloses();
  st.table.reconstructed_unlistens = r.getReconstructedUnlistens();
  st.table.late_closes_dropped = r.getLateClosesDropped();
  st.store = StoreFromWire(r.getStore());
  for (s::BpfMapInfo::Reader m : r.getBpfMaps())
    st.probe.bpf_maps.push_back({m.getName(), m.getMemlockBytes(), m.getMaxEntries()});
  auto m = r.getMesh();
  st.mesh.enabled = m.getEnabled();
  st.mesh.address = m.getAddress();
  st.mesh.sealed = m.getSealed();
  st.mesh.keys = m.getKeys();
  st.mesh.alive = m.getAlive();
  st.mesh.suspect = m.getSuspect();
  st.mesh.dead = m.getDead();
  st.mesh.left = m.getLeft();
  st.mesh.bytes_in = m.getBytesIn();
  st.mesh.bytes_out = m.getBytesOut();
  st.mesh.malformed = m.getMalformed();
  st.mesh.queries_in = m.getQueriesIn();
  st.mesh.looks = m.getLooks();
  st.mesh.look_round_trips = m.getLookRoundTrips();
  for (s::Refusal::Reader r : m.getRefusals())
    st.mesh.refusals.push_back({r.getReason(), r.getCount(), r.getHelp()});
  for (s::Refusal::Reader r : m.getLookUnanswered())
    st.mesh.look_unanswered.push_back({r.getReason(), r.getCount(), r.getHelp()});
  st.mesh.maps = m.getMaps();
  for (s::Refusal::Reader r : m.getMapUnanswered())
    st.mesh.map_unanswered.push_back({r.getReason(), r.getCount(), r.getHelp()});
  st.mesh.suspicions_raised = m.getSuspicionsRaised();
  st.mesh.suspicions_received = m.getSuspicionsReceived();
  st.mesh.refutations = m.getRefutations();
  st.mesh.incarnation_bumps = m.getIncarnationBumps();
  st.mesh.false_deaths = m.getFalseDeaths();
  st.mesh.flaps = m.getFlaps();
  for (s::MemberFlapping::Reader f : m.getFlapping())
    st.mesh.flapping.push_back({f.getName(), f.getFlaps(), f.getFalseDeaths()});
  st.table.open = r.getOpenConnections();
  st.table.listeners = r.getListeners();
  st.table.opens = r.getOpens();
  st.table.closes = r.getCloses();
  st.watchers = r.getWatchers();
  st.first_event_ns = r.getFirstEventNs();
  return st;
}

void ToCapnp(const WatchFilter& f, s::Filter::Builder b) {
  b.setPid(f.pid);
  b.setFamily(f.family);
  auto lports = b.initLports(static_cast<unsigned>(f.lports.size()));
  for (unsigned i = 0; i < f.lports.size(); i++) lports.set(i, f.lports[i]);
  auto rports = b.initRports(static_cast<unsigned>(f.rports.size()));
  for (unsigned i = 0; i < f.rports.size(); i++) rports.set(i, f.rports[i]);
  b.setUnit(f.unit);
  b.setContainer(f.container);
}

Result<WatchFilter> FromCapnp(s::Filter::Reader r) {
  WatchFilter f;
  f.pid = r.getPid();
  f.family = r.getFamily();
  if (f.family != 0 && f.family != AF_INET && f.family != AF_INET6)
    return InvalidArgument("filter: unknown address family " + std::to_string(f.family));
  for (uint16_t p : r.getLports()) f.lports.push_back(p);
  for (uint16_t p : r.getRports()) f.rports.push_back(p);
  if (r.getUnit().size() != 0) {
    FM_ASSIGN_OR_RETURN(f.unit, ParseUnitFilter(r.getUnit().cStr()));
  }
  if (r.getContainer().size() != 0) {
    FM_ASSIGN_OR_RETURN(f.container, ParseContainerFilter(r.getContainer().cStr()));
  }
  return f;
}

}  // namespace flowmesh
