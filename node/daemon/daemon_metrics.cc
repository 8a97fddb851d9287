// NodeStatus as Prometheus metrics. Every figure already exists for `meshctl
// status`; a scrape reads it the same way, so the data path gains nothing.
#include "node/daemon/daemon_metrics.h"

#include "node/metrics/exposition.h"

namespace flowmesh {

using metrics::Exposition;
using metrics::Type;

std::string RenderMetrics(const NodeStatus& s, const LookLatency& looks,
                          const DrainBarrier& drains) {
  Exposition e;
  e.Gauge("flowmesh_build_info", "The flowmesh version this meshd runs; always 1.", 1.0,
          {{"version", s.version}});
  // The name every Prometheus client library uses, so the usual uptime
  // queries (time() - process_start_time_seconds) work unchanged.
  e.Gauge("process_start_time_seconds", "Start time of meshd since the Unix epoch, in seconds.",
          static_cast<double>(s.started_ns) / 1e9);

  e.Family("flowmesh_probe_mode", Type::kGauge,
           "How meshd traces connections: 1 for the mode in use (streaming = eBPF, polling = "
           "sock_diag), 0 for the other.");
  for (const char* mode : {"streaming", "polling"})
    e.Sample("flowmesh_probe_mode", {{"mode", mode}}, uint64_t{s.probe_mode == mode});
  e.Counter("flowmesh_probe_events_total",
            "Connection events (open, close, listen, counter updates) the probe delivered.",
            s.probe.events);
  e.Counter("flowmesh_probe_events_lost_total",
            "Events known to be missed: the BPF ring buffer was full, or the kernel skipped the "
            "BPF program (recursion); the sum of flowmesh_probe_events_lost_by_cause_total.",
            s.probe.lost);
  if (!s.probe.lost_causes.empty()) {
    e.Family("flowmesh_probe_events_lost_by_cause_total", Type::kCounter,
             "Events known to be missed, by cause: ring_buffer_full (meshd fell behind), "
             "recursion (the kernel skipped the BPF program because it was already running on "
             "that CPU; the program's recursion_misses).");
    for (const auto& [cause, n] : s.probe.lost_causes)
      e.Sample("flowmesh_probe_events_lost_by_cause_total", {{"cause", cause}}, n);
  }
  e.Family("flowmesh_probe_events_reconstructed_total", Type::kCounter,
           "Closes and unlistens the probe missed, made up when sock_diag no longer showed the "
           "socket (reconciliation of the open-connection table with the kernel).");
  e.Sample("flowmesh_probe_events_reconstructed_total", {{"kind", "close"}},
           s.table.reconstructed_closes);
  e.Sample("flowmesh_probe_events_reconstructed_total", {{"kind", "unlisten"}},
           s.table.reconstructed_unlistens);
  e.Counter("flowmesh_probe_events_malformed_total",
            "Probe records that did not decode and were dropped.", s.probe.malformed);
  auto detail = [&s](std::string_view name) -> uint64_t {
    for (const auto& [n, v] : s.probe.detail)
      if (n == name) return v;
    return 0;
  };
  if (!s.probe.bpf_maps.empty()) {
    e.Family("flowmesh_bpf_map_memlock_bytes", Type::kGauge,
             "Kernel memory of each BPF map of the streaming probe, as the kernel reports it "
             "(bpftool map show's memlock): not in meshd's RSS. The socket and listener tables "
             "are not preallocated: from Linux 6.4 this is what their entries take now, "
             "before it the kernel reports their full size.");
    for (const BpfMapUsage& m : s.probe.bpf_maps)
      e.Sample("flowmesh_bpf_map_memlock_bytes", {{"map", m.name}}, m.memlock_bytes);
    e.Family("flowmesh_bpf_map_full_total", Type::kCounter,
             "Entries a full BPF table could not take: socks (a connection recorded without its "
             "process; raise --max-connections), listeners (raise --max-listeners).");
    e.Sample("flowmesh_bpf_map_full_total", {{"map", "socks"}}, detail("lost_sockmap"));
    e.Sample("flowmesh_bpf_map_full_total", {{"map", "listeners"}}, detail("lost_listenmap"));
  }
  e.Gauge("flowmesh_connections_open",
          "TCP connections open now, as this node's connection table tracks them (the flows "
          "`meshctl top` shows).",
          static_cast<double>(s.table.open));
  e.Gauge("flowmesh_listeners", "Listening TCP endpoints now (what `meshctl endpoints` shows).",
          static_cast<double>(s.table.listeners));

  e.Counter("flowmesh_flow_updates_total",
            "Flow updates aggregated from opens, closes, counter readings of open connections "
            "and carries: one per flow (process -> service endpoint edge) per time bucket it "
            "was active in.",
            s.store.flows);
  e.Counter("flowmesh_flow_carried_total",
            "Open connections counted into a checkpoint they stayed open through (once per "
            "connection per hour, and at start-up), so a window shows idle pooled connections.",
            s.store.carried);
  e.Counter("flowmesh_flow_checkpoints_missed_total",
            "Hourly checkpoints of open connections not marked because meshd's probe thread "
            "did not run through them (a suspended meshd); windows then count open "
            "connections from the checkpoint before.",
            s.store.checkpoints_missed);

  // NAT: connection tracking, when meshd reads it (--conntrack).
  e.Gauge("flowmesh_conntrack_up",
          "1 when meshd reads the kernel's connection tracking (look follows NAT), 0 when not "
          "(meshctl status says why).",
          uint64_t{s.conntrack.rfind("on", 0) == 0});
  e.Counter("flowmesh_conntrack_events_total", "conntrack NEW and DESTROY events read.",
            detail("conntrack_events"));
  e.Counter("flowmesh_conntrack_events_lost_total",
            "Times the kernel dropped conntrack events for meshd (its socket's buffer was "
            "full); each is followed by a whole dump (flowmesh_conntrack_resyncs_total).",
            detail("conntrack_overflows"));
  e.Counter("flowmesh_conntrack_malformed_total",
            "conntrack messages dropped because they did not parse.",
            detail("conntrack_malformed"));
  e.Counter("flowmesh_conntrack_resyncs_total",
            "Whole conntrack dumps read after lost events.", detail("conntrack_resyncs"));
  e.Counter("flowmesh_nat_translated_connections_total",
            "This node's connections whose flow keeps a NAT translation (a client's VIP, a "
            "server's published port).",
            detail("nat_translated"));
  e.Counter("flowmesh_nat_forwarded_connections_total",
            "Connections this node's NAT forwarded between two other hosts (a balancer's).",
            detail("nat_forwarded_opened"));

  // Workloads: cgroup ids named as units and containers (--cgroup-root).
  e.Gauge("flowmesh_workloads_up",
          "1 when meshd names processes' systemd units and containers from cgroup v2, 0 when "
          "not (meshd's log says why).",
          detail("workloads_on"));
  e.Counter("flowmesh_workload_cgroup_walks_total",
            "Walks of the cgroup v2 hierarchy for a cgroup id /proc did not give (at most one "
            "a second).",
            detail("workload_walks"));
  e.Counter("flowmesh_workload_unresolved_total",
            "cgroup ids no cgroup path was found for (the cgroup was gone, or a walk was due).",
            detail("workload_unresolved"));
  e.Counter("flowmesh_workload_metadata_errors_total",
            "Container runtime files (config.v2.json, OCI specs, containers.json) that were "
            "there but malformed; the container keeps its id without a name.",
            detail("workload_metadata_errors"));

  e.Counter("flowmesh_store_records_written_total",
            "Closed-connection records written to the store since meshd started.",
            s.store.records_written);
  e.Gauge("flowmesh_store_records",
          "Closed-connection records the store holds now (retention removes the oldest).",
          static_cast<double>(s.store.stats.records));
  e.Gauge("flowmesh_store_size_bytes", "Size of the store on disk (SST files and WAL), in bytes.",
          static_cast<double>(s.store.stats.disk_bytes));
  e.Counter("flowmesh_store_write_errors_total",
            "Writes to the store that failed (each batch is retried until records are dropped).",
            s.store.stats.write_errors);
  e.Counter("flowmesh_store_records_dropped_total",
            "Closed-connection records given up because writes to the store kept failing.",
            s.store.dropped_records);
  e.Counter("flowmesh_store_records_expired_total",
            "Records removed by retention (--retention, --retention-size) since meshd started.",
            s.store.stats.expired_records);
  e.Gauge("flowmesh_store_memory_limit_bytes",
          "The store's RocksDB memory budget (--store-memory): its block cache, which memtables "
          "are charged to.",
          static_cast<double>(s.store.stats.memory_limit_bytes));
  e.Gauge("flowmesh_store_memtable_bytes",
          "Memory of the store's memtables now (records and flows not yet flushed to disk).",
          static_cast<double>(s.store.stats.memtable_bytes));
  e.Gauge("flowmesh_store_block_cache_bytes",
          "Blocks (data and index) in the store's block cache now, besides the memtables.",
          static_cast<double>(s.store.stats.block_cache_bytes));
  e.Counter("flowmesh_store_write_stalls_total",
            "Times RocksDB slowed or stopped the store's writes (flushes or compactions behind).",
            s.store.stats.write_stalls);

  e.Family("flowmesh_mesh_peers", Type::kGauge,
           "Members of the mesh by state, as this node sees them, itself included; all 0 when "
           "meshd is not in a mesh.");
  const std::pair<const char*, uint64_t> states[] = {{"alive", s.mesh.alive},
                                                     {"suspect", s.mesh.suspect},
                                                     {"dead", s.mesh.dead},
                                                     {"left", s.mesh.left}};
  for (const auto& [state, n] : states) e.Sample("flowmesh_mesh_peers", {{"state", state}}, n);
  e.Family("flowmesh_mesh_bytes_total", Type::kCounter,
           "Bytes of mesh traffic (gossip, table syncs and look queries), by direction.");
  e.Sample("flowmesh_mesh_bytes_total", {{"direction", "in"}}, s.mesh.bytes_in);
  e.Sample("flowmesh_mesh_bytes_total", {{"direction", "out"}}, s.mesh.bytes_out);
  e.Counter("flowmesh_mesh_malformed_packets_total",
            "Mesh packets and exchanges that arrived whole but were dropped: they did not unseal "
            "(wrong key or label, tampered), were replayed, too old or too new, or did not "
            "decode. Oversized and empty datagrams, oversized frames, refused connections and "
            "timeouts are not counted here; flowmesh_mesh_refusals_total has every drop by "
            "reason.",
            s.mesh.malformed);
  // A list of counts by reason as one counter family labelled `reason`.
  auto by_reason = [&e](const char* name, const char* help, const std::vector<Refusal>& counts) {
    e.Family(name, Type::kCounter, help);
    for (const Refusal& r : counts) e.Sample(name, {{"reason", r.reason}}, r.count);
  };
  by_reason("flowmesh_mesh_refusals_total",
            "Everything the mesh dropped or refused, by reason: udp_* datagrams, tcp_* exchange "
            "connections, seal_* sealing checks, decode_* checks of what opened (`meshctl "
            "status` says what each reason means). No series when meshd is not in a mesh.",
            s.mesh.refusals);
  by_reason("flowmesh_look_unanswered_total",
            "Member queries of looks run from this node that came back without answers, by "
            "reason: timeout, refused (the member was busy), failed, member_gone, deadline. "
            "Each made an `unreachable` node in the tree. No series when meshd is not in a mesh.",
            s.mesh.look_unanswered);
  e.Counter("flowmesh_map_queries_total",
            "Maps run from this node (`meshctl map`, /api/map); 0 when meshd is not in a mesh.",
            s.mesh.maps);
  by_reason("flowmesh_map_unanswered_total",
            "Member queries of maps run from this node that came back without a map, by "
            "reason: timeout, refused, failed, member_gone, deadline, no_map (a meshd of before "
            "map). Each member shows as `unreachable` on the map. No series when meshd is not in "
            "a mesh.",
            s.mesh.map_unanswered);
  e.Family("flowmesh_mesh_suspicions_total", Type::kCounter,
           "Members put under suspicion by this node: origin=\"probe\" when its own probe got no "
           "ack, origin=\"peer\" when a peer's news said so.");
  e.Sample("flowmesh_mesh_suspicions_total", {{"origin", "probe"}}, s.mesh.suspicions_raised);
  e.Sample("flowmesh_mesh_suspicions_total", {{"origin", "peer"}}, s.mesh.suspicions_received);
  e.Counter("flowmesh_mesh_refutations_total",
            "Times this node was suspected or declared dead while alive and refuted it. More than "
            "a few a minute: packet loss, a full neighbour table or CPU starvation (see the log).",
            s.mesh.refutations);
  e.Counter("flowmesh_mesh_incarnation_bumps_total",
            "Times this node raised its own incarnation (refutations and address conflicts).",
            s.mesh.incarnation_bumps);
  e.Counter("flowmesh_mesh_false_deaths_total",
            "Members this node held dead that turned out alive in the same life (they refuted "
            "with a higher incarnation, without a restart).",
            s.mesh.false_deaths);
  e.Counter("flowmesh_mesh_flaps_total",
            "Returns of members from suspect to alive, all members: each one a probe failure "
            "that was not a failure.",
            s.mesh.flaps);
  e.Family("flowmesh_mesh_member_flaps_total", Type::kCounter,
           "Returns from suspect to alive by member, for the members that flapped most (at most "
           "32).");
  for (const MemberFlapping& f : s.mesh.flapping)
    e.Sample("flowmesh_mesh_member_flaps_total", {{"member", f.name}}, f.flaps);

  e.Family("flowmesh_look_duration_seconds", Type::kHistogram,
           "Time to answer looks: kind=\"peer\" for look queries answered for other nodes "
           "(from arrival to answer), kind=\"meshctl\" for `meshctl look` walks run from this "
           "node (mesh round trips included).");
  e.HistogramSamples("flowmesh_look_duration_seconds", {{"kind", "peer"}}, looks.peer.Snapshot());
  e.HistogramSamples("flowmesh_look_duration_seconds", {{"kind", "meshctl"}},
                     looks.meshctl.Snapshot());
  e.Family("flowmesh_map_duration_seconds", Type::kHistogram,
           "Time to draw maps run from this node, every member's answer, the merge and the "
           "compare included.");
  e.HistogramSamples("flowmesh_map_duration_seconds", {}, looks.map.Snapshot());
  e.Family("flowmesh_look_drain_seconds", Type::kHistogram,
           "Time a query (a look run here, a peer's look question, a scan of the store) waited "
           "for the probe to collect and aggregate what the kernel saw before it arrived.");
  e.HistogramSamples("flowmesh_look_drain_seconds", {}, drains.waited().Snapshot());
  e.Counter("flowmesh_look_drain_timeouts_total",
            "Queries answered without that drain because the probe did not finish a round within "
            "--look-drain-timeout (1s by default; a starved probe thread, a slow poll): their "
            "answers may miss the last moments' connections.",
            drains.stats().timeouts);
  return e.Take();
}

}  // namespace flowmesh
