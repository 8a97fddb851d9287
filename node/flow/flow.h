// What the aggregator makes of connection events and the store keeps:
// closed-connection records, flows (Transtracer's edges, one ephemeral port
// collapsed) with their stats per time bucket, process details and local
// endpoints. Passive data only; encoding lives in node/store, building in
// aggregator.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "node/common/net.h"
#include "node/probe/event.h"
#include "node/proc/workload.h"

namespace flowmesh {

// Flows are summed per bucket of this many nanoseconds (aligned to the Unix
// epoch), so a --since/--until window reads only the buckets it overlaps.
inline constexpr int64_t kFlowBucketNs = 60'000'000'000;  // one minute

inline int64_t FlowBucketOf(int64_t ts_ns) {
  return ts_ns <= 0 ? 0 : ts_ns - ts_ns % kFlowBucketNs;
}

// Open connections are carried into a bucket (FlowStats::carried) only at
// these checkpoints, not every minute: an idle connection costs a row an
// hour, not sixty. A window that starts between two checkpoints finds what
// was open at its start from the last checkpoint before it and the opens and
// closes since (Store::ReadFlows).
inline constexpr int64_t kFlowCheckpointNs = 60 * kFlowBucketNs;  // one hour

inline int64_t FlowCheckpointOf(int64_t ts_ns) {
  return ts_ns <= 0 ? 0 : ts_ns - ts_ns % kFlowCheckpointNs;
}

// A process for display and grouping. (pid, start_ticks) is the identity;
// prefork servers (nginx master and workers) share a pgid and are one server
// node in `look`. Fields other than the identity may be empty/0 when the
// process was gone before /proc could be read.
struct ProcessDetails {
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  uint32_t pgid = 0;
  uint32_t ppid = 0;
  std::string comm;
  std::string exe;
  uint64_t cgroup_id = 0;  // cgroup v2 id when first seen; 0 = not known
  Workload workload;       // what its cgroup says it runs as; empty = none known
  bool operator==(const ProcessDetails&) const = default;
};

// One closed connection, as `meshctl flows` prints it. Counters are payload
// bytes (ConnTable::Apply has already converted them).
struct ConnRecord {
  int64_t ts_ns = 0;  // close time, Unix epoch ns
  ConnKey key;
  Direction direction = Direction::kUnknown;
  ProcessRef proc;
  TcpCounters counters;
  uint64_t duration_ns = 0;
  // The probe missed this close; reconciliation with sock_diag made it up:
  // ts_ns is when the connection was found gone (it closed before), counters
  // are as last seen and duration_ns is an upper bound.
  bool reconstructed = false;
  bool operator==(const ConnRecord& o) const {
    return ts_ns == o.ts_ns && key == o.key && direction == o.direction && proc.pid == o.proc.pid &&
           proc.start_ticks == o.proc.start_ticks && proc.comm_view() == o.proc.comm_view() &&
           counters == o.counters && duration_ns == o.duration_ns &&
           reconstructed == o.reconstructed;
  }
};

// An edge. Active: this node's process -> remote ip:port (local port
// collapsed to 0, local address kept). Passive: remote ip -> this node's
// endpoint laddr:lport owned by the process (remote port collapsed to 0).
// Forwarded (a balancer's, from connection tracking; pid 0): client raddr
// -> front laddr:lport (what it dialled) -> backend xaddr:xport.
//
// xaddr:xport is the other side of a NAT translation (conntrack), port 0
// when there was none:
// - active: where the dialled raddr:rport really went (a kube-proxy
//   Service VIP's backend);
// - passive: what the client dialled to reach laddr:lport (a published
//   port, docker -p);
// - forwarded: the backend.
struct FlowKey {
  Direction direction = Direction::kUnknown;
  uint32_t netns = 0;
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
  IpAddr laddr;
  uint16_t lport = 0;  // 0 for active flows
  IpAddr raddr;
  uint16_t rport = 0;  // 0 for passive flows
  IpAddr xaddr;
  uint16_t xport = 0;  // 0: not translated
  bool translated() const { return xport != 0; }
  bool operator==(const FlowKey&) const = default;
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const noexcept;
};

// Summable: two FlowStats add with Merge. A window holds a flow when one of
// its connections was open at some moment inside it:
// - `connections` counts the connections opened in the window: each is
//   counted once, in the bucket where its open was seen (or its close, when
//   the open was missed). Connections found open at start-up are not: they
//   opened before meshd looked.
// - `closed` counts the connections counted (opened or carried) that closed
//   in the window.
// - `carried` counts the connections that were already open when a bucket
//   began. In the store, every open connection is carried into each
//   checkpoint bucket (kFlowCheckpointNs) it stays open through, idle or not,
//   and connections found at start-up into the start-up bucket. Summed over
//   time, only the earliest bucket's count is kept (`carried_from_ns` says
//   which): a connection open for a day is one connection, not 24. A
//   window's totals carry what was open at its start, rebuilt from the last
//   checkpoint as carried + opened - closed. So connections + carried is
//   every connection open at some moment in the window (active()).
// - bytes and segments land where they were measured: a close, or the
//   periodic reading of an open connection's counters.
struct FlowStats {
  uint64_t connections = 0;  // opened in the window
  uint64_t closed = 0;       // closed in the window
  uint64_t carried = 0;      // open when the window's first bucket of this flow began
  uint64_t bytes_tx = 0;
  uint64_t bytes_rx = 0;
  uint64_t segs_out = 0;
  uint64_t segs_in = 0;
  uint64_t retrans = 0;
  uint64_t rtt_sum_us = 0;  // over rtt_samples closes that had an RTT
  uint64_t rtt_samples = 0;
  uint32_t rtt_max_us = 0;
  int64_t first_seen_ns = 0;  // 0 = unset
  int64_t last_seen_ns = 0;
  // The bucket `carried` was counted in. Merge keeps the earlier bucket's
  // count and adds counts of the same bucket. A window's totals (what
  // Store::ReadFlows returns) have 0 here, so totals of different flows add.
  int64_t carried_from_ns = 0;

  void Merge(const FlowStats& o);
  // Every connection open at some moment in the window.
  uint64_t active() const { return connections + carried; }
  uint32_t rtt_mean_us() const {
    return rtt_samples ? static_cast<uint32_t>(rtt_sum_us / rtt_samples) : 0;
  }
  bool operator==(const FlowStats&) const = default;
};

struct Flow {
  FlowKey key;
  FlowStats stats;
};

// A flow's contribution to one bucket.
struct FlowDelta {
  int64_t bucket_ns = 0;  // FlowBucketOf(...)
  FlowKey key;
  FlowStats stats;
};

// A listening socket on this node and its owner.
struct EndpointRecord {
  uint32_t netns = 0;
  IpAddr addr;  // may be unspecified (0.0.0.0 / ::): listens on every address
  uint16_t port = 0;
  ProcessRef proc;
  int64_t since_ns = 0;
  // In Batch.endpoints_removed: when it stopped listening (0 = not known;
  // the store then takes the batch's time). Not part of its identity.
  int64_t until_ns = 0;
  // The owner's workload, kept with it (as its comm is, in proc) because the
  // owner may be gone from the processes CF by the time look groups
  // listeners by it. Last, so positional initialisers of the fields above
  // still hold. Not part of its identity.
  Workload workload = {};
  bool operator==(const EndpointRecord& o) const {
    return netns == o.netns && addr == o.addr && port == o.port && proc.pid == o.proc.pid &&
           proc.start_ticks == o.proc.start_ticks && since_ns == o.since_ns;
  }
};

// An address this node's NAT translates, learned from the translated
// connections it saw (the rules themselves are never read, so whichever tool
// wrote them): a published port (front host:9090 -> target, a listener of
// this node, owned by `owner`) or a balancer front (VIP:port -> a backend
// elsewhere; one alias per backend). Gossiped in the endpoint table, so the
// walk finds the node that resolves the front.
struct NatAlias {
  uint32_t netns = 0;  // the namespace whose connection tracking translated
  Endpoint front;
  Endpoint target;
  bool balancer = false;  // target is not this node's listener
  ProcessRef owner;       // published: the target's listener owner
  int64_t last_seen_ns = 0;
  bool operator==(const NatAlias& o) const {
    return netns == o.netns && front == o.front && target == o.target && balancer == o.balancer;
  }
};

// Everything the aggregator produced since the last flush; the store writes
// one Batch as one atomic RocksDB WriteBatch, so a crash keeps all of it or
// none of it.
struct Batch {
  // Buckets every connection open at whose start is carried into them by
  // this batch or an earlier one (hourly checkpoints, and the start-up
  // seed's). The store marks them, and a window's reading of what was open
  // at its start begins at the last mark before it.
  std::vector<int64_t> checkpoints;
  std::vector<ConnRecord> records;
  std::vector<FlowDelta> flows;                 // several deltas may share a key
  std::vector<ProcessDetails> processes;        // new or changed processes
  std::vector<EndpointRecord> endpoints_added;  // listen
  std::vector<EndpointRecord> endpoints_removed;
  // An earlier write of (part of) this batch failed: the store checks which
  // of its records it already holds before counting them.
  bool retried = false;
  bool empty() const {
    return records.empty() && flows.empty() && processes.empty() && endpoints_added.empty() &&
           endpoints_removed.empty() && checkpoints.empty();
  }
};

}  // namespace flowmesh
