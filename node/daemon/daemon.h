// meshd itself: opens its store, picks and starts the probe, seeds it from a
// sock_diag snapshot, runs the probe on its own thread, the flusher on
// another and the control socket on an Asio io_context, and stops cleanly on
// SIGINT, SIGTERM or SIGHUP (flushing what was aggregated, leaving the mesh).
#pragma once

#include <asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "node/control/backend.h"
#include "node/control/control_server.h"
#include "node/daemon/config.h"
#include "node/daemon/daemon_metrics.h"
#include "node/daemon/drain_barrier.h"
#include "node/daemon/mesh_service.h"
#include "node/daemon/netns_addresses.h"
#include "node/flow/pipeline.h"
#include "node/flow/aggregator.h"
#include "node/flow/process_cache.h"
#include "node/flow/reconciler.h"
#include "node/look/look_service.h"
#include "node/http/server.h"
#include "node/ui/ui_server.h"
#include "node/probe/probe.h"
#include "node/proc/socket_owners.h"
#include "node/store/flusher.h"
#include "node/store/store.h"

namespace flowmesh {

class BpfProbe;
class Snapshotter;
class SocketIter;

// Gossiped aliases as `endpoints` rows: a published port one row per target
// with its owner, a balancer's front one row with all its backends.
std::vector<EndpointView> AliasViews(const std::vector<mesh::AliasSummary>& aliases,
                                     const std::string& node);

class Daemon final : public ControlBackend {
 public:
  explicit Daemon(DaemonConfig config);
  ~Daemon() override;

  // Everything that can fail at start-up; the error says what to do.
  Status Init();
  // Serves until SIGINT, SIGTERM or SIGHUP (or a fatal probe error). Returns the exit code.
  int Run();

  // ControlBackend
  NodeStatus GetStatus() override;
  std::vector<OpenConnection> GetConnections() override;
  std::shared_ptr<Subscriber> Subscribe() override;
  Status ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                     const std::function<bool(const ConnRecord&)>& fn) override;
  std::vector<EndpointView> GetEndpoints() override;
  Workload WorkloadOf(const ProcessRef& process) override;
  Result<LookResult> RunLook(const LookQuery& query) override;
  Result<MapResult> RunMap(const MapQuery& query) override;
  std::vector<PeerView> GetPeers() override;
  std::vector<EndpointView> GetMeshEndpoints() override;
  bool MeshEnabled() override { return mesh_ != nullptr; }
  Result<std::vector<NodeKeys>> RunKeyOp(KeyOp op, const std::string& key) override;

 private:
  Status InitStore();
  void InitWorkloads();  // never fails: without cgroup v2 it logs why and goes on
  Status InitProbe();
  // Connection tracking, when --conntrack allows and the kernel lets us;
  // otherwise says why once and goes on without NAT translations.
  void InitNat();
  // Whether an address is one of this node's (any recorded namespace's).
  std::function<bool(const IpAddr&)> LocalAddressTest() const;
  void ReportMissingCapabilities() const;
  // Queries read the store: what the kernel saw before the question goes
  // through the probe (drain_) and what was aggregated to the store first.
  void FlushForQuery();
  std::vector<EndpointRecord> LiveEndpoints() const;
  Status InitMesh();
  // --metrics-listen: serves RenderMetrics(GetStatus()) on a thread of its own.
  Status InitMetrics();
  Status InitUi();
  // The look service, after the store; with the mesh's members when in one.
  void InitLook();
  Result<std::vector<LookMember>> LookMembers();
  LocalTable MeshTable();
  // This node's NAT aliases as the mesh gossips them (owners resolved).
  std::vector<mesh::AliasSummary> LocalAliases();
  Status SeedFromSnapshot(BpfProbe& probe);
  void ProbeLoop();
  // Streaming mode, on the probe thread between ring buffer drains: one
  // sock_diag dump when reconciliation (see Reconciler) or the reading of
  // open connections' counters is due, used for both.
  void CheckKernelIfDue();
  void RefreshCounters();
  void Shutdown();

  DaemonConfig config_;
  ProbeFilter filter_;
  int64_t started_ns_ = 0;
  Pipeline pipeline_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<WorkloadResolver> workloads_;  // null when off (--cgroup-root, no cgroup v2)
  std::string workloads_state_;                  // for status: "on" or "off: why"
  // The cgroup v2 mount socket owners' cgroup ids are read under (polling,
  // the seed); "" = none (--cgroup-root off, or no cgroup v2).
  std::string cgroup_root_;
  std::unique_ptr<ProcessCache> processes_;
  std::unique_ptr<Aggregator> aggregator_;
  std::unique_ptr<NatFeed> nat_;
  std::string nat_state_;  // for status: "on" or "off: why"
  std::unique_ptr<Flusher> flusher_;
  std::unique_ptr<LookService> look_;
  std::unique_ptr<NetnsAddressBook> netns_addresses_;  // before mesh_: its publisher reads it
  std::unique_ptr<MeshService> mesh_;
  std::unique_ptr<Probe> probe_;
  std::string probe_reason_;
  asio::io_context io_;
  std::unique_ptr<ControlServer> control_;
  std::thread probe_thread_;
  std::atomic<bool> running_{false};
  std::atomic<int> exit_code_{0};

  // Socket owners from the BpfProbe's iterator (which lives as long as
  // probe_); none where it did not load: owners from /proc.
  static SocketOwners::HolderSource HolderSource(const SocketIter* iter);

  // Live counters for `top` in streaming mode, refreshed on demand.
  std::mutex refresh_mu_;
  std::unique_ptr<Snapshotter> refresher_;
  int64_t last_refresh_ns_ = 0;

  // Streaming mode, probe thread only: closes the probe missed, and the
  // counters of open connections, both from one sock_diag dump.
  std::unique_ptr<Reconciler> reconciler_;
  std::unique_ptr<Snapshotter> kernel_snapshotter_;
  int64_t next_account_ns_ = 0;  // CLOCK_MONOTONIC
  std::atomic<uint64_t> account_dumps_{0};  // dumps whose counters were read, for either reason
  std::atomic<uint64_t> account_failures_{0};

  // Open while the probe thread runs; bounded by --look-drain-timeout.
  DrainBarrier drain_;

  // Last, so it is destroyed first: its thread reads everything above.
  std::unique_ptr<http::HttpServer> metrics_;
  // --ui-listen: the page and its API; after control_, stopped before the store.
  std::unique_ptr<ui::UiServer> ui_;
};

}  // namespace flowmesh
