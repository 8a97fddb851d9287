// Ring-buffer record decoding and the names of event fields.
#include "node/probe/event.h"

#include <sys/socket.h>

#include <cstddef>

#include "node/common/clock.h"

namespace flowmesh {

// fm_event's layout as tcptrace.bpf.c (clang -target bpf) writes it and as
// DecodeEventInto reads it in place. Both compile bpf/flowmesh.h, but only
// this side can check it: a field added, moved or resized without the
// explicit padding the header promises fails here, not as garbage in the
// ring buffer. 138 bytes of fields and 6 of tail padding to the 8-byte
// alignment, the size the BPF side reserves. Change these numbers only
// together with the BPF side.
static_assert(sizeof(fm_event) == 144 && alignof(fm_event) == 8);
#define FM_EVENT_FIELD(f, off, size) \
  static_assert(offsetof(fm_event, f) == (off) && sizeof(fm_event::f) == (size), #f)
FM_EVENT_FIELD(ts_ns, 0, 8);
FM_EVENT_FIELD(duration_ns, 8, 8);
FM_EVENT_FIELD(proc_start_ns, 16, 8);
FM_EVENT_FIELD(cgroup_id, 24, 8);
FM_EVENT_FIELD(bytes_acked, 32, 8);
FM_EVENT_FIELD(bytes_received, 40, 8);
FM_EVENT_FIELD(segs_out, 48, 4);
FM_EVENT_FIELD(segs_in, 52, 4);
FM_EVENT_FIELD(total_retrans, 56, 4);
FM_EVENT_FIELD(srtt_us, 60, 4);
FM_EVENT_FIELD(rttvar_us, 64, 4);
FM_EVENT_FIELD(pid, 68, 4);
FM_EVENT_FIELD(netns, 72, 4);
FM_EVENT_FIELD(pgid, 76, 4);
FM_EVENT_FIELD(family, 80, 2);
FM_EVENT_FIELD(lport, 82, 2);
FM_EVENT_FIELD(rport, 84, 2);
FM_EVENT_FIELD(kind, 86, 1);
FM_EVENT_FIELD(direction, 87, 1);
FM_EVENT_FIELD(tcp_flags, 88, 1);
FM_EVENT_FIELD(pad, 89, 1);
FM_EVENT_FIELD(laddr, 90, 16);
FM_EVENT_FIELD(raddr, 106, 16);
FM_EVENT_FIELD(comm, 122, 16);
#undef FM_EVENT_FIELD
// The listeners map's value, which BpfProbe::SeedListener writes from here.
static_assert(sizeof(fm_listen_owner) == 40 && offsetof(fm_listen_owner, cgroup_id) == 8 &&
              offsetof(fm_listen_owner, pid) == 16 && offsetof(fm_listen_owner, comm) == 24);

std::string_view KindName(EventKind k) {
  switch (k) {
    case EventKind::kOpen: return "open";
    case EventKind::kClose: return "close";
    case EventKind::kListen: return "listen";
    case EventKind::kUnlisten: return "unlisten";
    case EventKind::kUpdate: return "update";
  }
  return "?";
}

std::string_view DirectionName(Direction d) {
  switch (d) {
    case Direction::kActive: return "active";
    case Direction::kPassive: return "passive";
    case Direction::kUnknown: return "unknown";
    case Direction::kForwarded: return "forwarded";
  }
  return "?";
}

std::string_view SourceName(EventSource s) {
  switch (s) {
    case EventSource::kKernel: return "kernel";
    case EventSource::kPoll: return "poll";
    case EventSource::kSeed: return "seed";
  }
  return "?";
}

size_t ConnKeyHash::operator()(const ConnKey& k) const noexcept {
  IpAddrHash h;
  size_t v = h(k.laddr) * 31 + h(k.raddr);
  v = v * 0x9e3779b97f4a7c15ULL + ((uint64_t{k.lport} << 16) | k.rport);
  return v ^ (uint64_t{k.netns} << 32);
}

Status DecodeEventInto(const void* data, size_t size, ConnEvent* out, int64_t realtime_offset_ns) {
  if (size < sizeof(fm_event))
    return InvalidArgument("ring buffer record of " + std::to_string(size) + " bytes, expected " +
                           std::to_string(sizeof(fm_event)));
  // Read in place: the record is aligned (ring buffer records are 8-byte
  // aligned) and nothing else writes it until it is consumed.
  const fm_event& raw = *static_cast<const fm_event*>(data);
  if (raw.kind < FM_EV_OPEN || raw.kind > FM_EV_UNLISTEN)
    return InvalidArgument("unknown event kind " + std::to_string(raw.kind));
  if (raw.family != AF_INET && raw.family != AF_INET6)
    return InvalidArgument("unknown address family " + std::to_string(raw.family));
  if (raw.direction > FM_DIR_PASSIVE)
    return InvalidArgument("unknown direction " + std::to_string(raw.direction));

  ConnEvent& ev = *out;
  ev.kind = static_cast<EventKind>(raw.kind);
  ev.direction = static_cast<Direction>(raw.direction);
  ev.source = EventSource::kKernel;
  ev.ts_ns = static_cast<int64_t>(raw.ts_ns) + realtime_offset_ns;
  ev.key.netns = raw.netns;
  ev.key.laddr = IpAddr::FromRaw(raw.family, raw.laddr);
  ev.key.lport = raw.lport;
  if (ev.kind == EventKind::kOpen || ev.kind == EventKind::kClose) {
    ev.key.raddr = IpAddr::FromRaw(raw.family, raw.raddr);
    ev.key.rport = raw.rport;
  } else {
    ev.key.raddr = IpAddr{};
    ev.key.rport = 0;
  }
  ev.proc.pid = raw.pid;
  ev.proc.pgid = raw.pgid;
  ev.proc.start_ticks = raw.pid ? BoottimeNsToTicks(raw.proc_start_ns) : 0;
  ev.proc.cgroup_id = raw.cgroup_id;
  std::memcpy(ev.proc.comm, raw.comm, sizeof ev.proc.comm);
  ev.proc.comm[sizeof ev.proc.comm - 1] = '\0';
  ev.counters.bytes_tx = raw.bytes_acked;
  ev.counters.bytes_rx = raw.bytes_received;
  ev.counters.segs_out = raw.segs_out;
  ev.counters.segs_in = raw.segs_in;
  ev.counters.retrans = raw.total_retrans;
  ev.counters.rtt_us = raw.srtt_us;
  ev.counters.rttvar_us = raw.rttvar_us;
  ev.tcp_flags = raw.tcp_flags;
  ev.reconstructed = false;
  ev.duration_ns = raw.duration_ns;
  return Status::Ok();
}

Status DecodeEventInto(const void* data, size_t size, ConnEvent* out) {
  return DecodeEventInto(data, size, out, MonotonicToRealtimeOffsetNs());
}

Result<ConnEvent> DecodeEvent(const void* data, size_t size) {
  if (size < sizeof(fm_event)) return DecodeEventInto(data, size, nullptr);
  // Callers may hand any buffer; align it before reading it as fm_event.
  fm_event raw;
  std::memcpy(&raw, data, sizeof raw);
  ConnEvent ev;
  Status s = DecodeEventInto(&raw, sizeof raw, &ev);
  if (!s.ok()) return s;
  return ev;
}

TcpCounters PayloadCounters(const TcpCounters& raw, Direction direction, uint8_t tcp_flags) {
  TcpCounters c = raw;
  auto take = [](uint64_t& v, uint64_t n) { v = v >= n ? v - n : 0; };
  if (direction == Direction::kActive) take(c.bytes_tx, 1);
  if (tcp_flags & FM_TCP_FIN_ACKED) take(c.bytes_tx, 1);
  if (tcp_flags & FM_TCP_FIN_RECEIVED) take(c.bytes_rx, 1);
  return c;
}

uint8_t TcpFlagsForState(uint8_t tcp_state) {
  enum { kFinWait2 = 5, kTimeWait = 6, kCloseWait = 8, kLastAck = 9, kClosing = 11 };
  uint8_t f = 0;
  if (tcp_state == kFinWait2 || tcp_state == kTimeWait) f |= FM_TCP_FIN_ACKED;
  if (tcp_state == kCloseWait || tcp_state == kLastAck || tcp_state == kClosing ||
      tcp_state == kTimeWait)
    f |= FM_TCP_FIN_RECEIVED;
  return f;
}

}  // namespace flowmesh
