// The C++ companion of bpf/flowmesh.h: connection events as meshd handles
// them once they leave the ring buffer (or the sock_diag poller), with
// decoding, hashing and naming. Every probe produces ConnEvent.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "bpf/flowmesh.h"
#include "node/common/net.h"
#include "node/common/status.h"
#include "node/proc/process_ref.h"

namespace flowmesh {

static_assert(FM_TASK_COMM_LEN == kTaskCommLen, "fm_event.comm and ProcessRef.comm copy whole");

enum class EventKind : uint8_t {
  kOpen = FM_EV_OPEN,
  kClose = FM_EV_CLOSE,
  kListen = FM_EV_LISTEN,
  kUnlisten = FM_EV_UNLISTEN,
  // Live counters of a connection that is still open, from sock_diag. Never
  // produced by BPF (which reports counters at CLOSE), so not in flowmesh.h.
  kUpdate = 5,
};

enum class Direction : uint8_t {
  kUnknown = FM_DIR_UNKNOWN,
  kActive = FM_DIR_ACTIVE,
  kPassive = FM_DIR_PASSIVE,
  // Never from a probe: a connection this node's NAT forwarded between two
  // other hosts (a balancer's), seen only in connection tracking. Flows of
  // it are keyed front (laddr:lport) <- client (raddr) -> backend (xaddr).
  kForwarded = 3,
};

// Where an event came from: the BPF ring buffer, a sock_diag poll, or the
// sock_diag snapshot taken at start-up.
enum class EventSource : uint8_t { kKernel = 0, kPoll = 1, kSeed = 2 };

std::string_view KindName(EventKind k);       // "open", "close", "listen", "unlisten"
std::string_view DirectionName(Direction d);  // "active", "passive", "unknown"
std::string_view SourceName(EventSource s);   // "kernel", "poll", "seed"

struct TcpCounters {
  uint64_t bytes_tx = 0;  // bytes sent and acknowledged
  uint64_t bytes_rx = 0;  // bytes received
  uint32_t segs_out = 0;
  uint32_t segs_in = 0;
  uint32_t retrans = 0;
  uint32_t rtt_us = 0;
  uint32_t rttvar_us = 0;
  bool operator==(const TcpCounters&) const = default;
};

// One TCP connection (or listener, with raddr unset and rport 0) in one
// network namespace. Unique among the sockets open at any moment.
struct ConnKey {
  uint32_t netns = 0;
  IpAddr laddr;
  IpAddr raddr;
  uint16_t lport = 0;
  uint16_t rport = 0;

  uint16_t family() const { return laddr.family; }
  bool operator==(const ConnKey&) const = default;
};

struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const noexcept;
};

struct ConnEvent {
  EventKind kind = EventKind::kOpen;
  Direction direction = Direction::kUnknown;
  EventSource source = EventSource::kKernel;
  int64_t ts_ns = 0;  // Unix epoch nanoseconds
  ConnKey key;
  ProcessRef proc;
  // As the kernel counts them (sequence space: SYN and FINs included) until
  // ConnTable::Apply turns them into payload bytes, once the direction is
  // known. CLOSE: final; OPEN/UPDATE from a poll or seed: as of then.
  TcpCounters counters;
  uint8_t tcp_flags = 0;     // enum fm_tcp_flags: which FINs the counters include
  // CLOSE or UNLISTEN the probe missed, made up by reconciliation with
  // sock_diag (see Reconciler): ts_ns is when it was found gone, counters
  // are as last seen.
  bool reconstructed = false;
  uint64_t duration_ns = 0;  // CLOSE only; 0 when the open was not seen
};

// Kernel counters to payload bytes: the active opener's bytes_acked includes
// its SYN; a FIN sent and acknowledged, or received, adds one.
TcpCounters PayloadCounters(const TcpCounters& raw, Direction direction, uint8_t tcp_flags);

// The fm_tcp_flags a socket in this TCP state (include/net/tcp_states.h)
// has, for counters read through sock_diag.
uint8_t TcpFlagsForState(uint8_t tcp_state);

// Decodes one ring-buffer record. Wrong size or an unknown kind or family is
// an error (the caller counts it and drops the record).
Result<ConnEvent> DecodeEvent(const void* data, size_t size);
// The same into `ev` (every field set), for a consumer that decodes into
// storage it reuses. On error `ev` is unspecified. `realtime_offset_ns` is
// MonotonicToRealtimeOffsetNs(), read once per batch by a consumer that
// decodes many records at a time.
Status DecodeEventInto(const void* data, size_t size, ConnEvent* ev, int64_t realtime_offset_ns);
Status DecodeEventInto(const void* data, size_t size, ConnEvent* ev);

}  // namespace flowmesh
