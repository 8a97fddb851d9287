// Daemon: probe selection and lifecycle, control backend.
#include "node/daemon/daemon.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <asio/signal_set.hpp>

#include "node/common/capabilities.h"
#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/common/sched.h"
#include "node/metrics/exposition.h"
#include "node/probe/bpf_probe.h"
#include "node/probe/netns.h"
#include "node/probe/poll_probe.h"
#include "node/probe/snapshot.h"
#include "node/probe/socket_iter.h"
#include "node/proc/cgroup.h"

namespace flowmesh {
namespace {

constexpr int kProbeWaitMs = 200;
// Records (160 bytes each in memory) pending before a flush starts early: a
// batch stays under 1 MB at any churn (two buffers of it take turns, see
// Aggregator::Recycle). With records written in blocks a write's fixed cost
// is small, so a smaller batch costs no CPU that the benchmark could see.
constexpr size_t kFlushAtRecords = 4096;
// Ring buffers' worth of events held in memory while meshd starts, and
// while a sock_diag dump keeps the probe's thread busy (see
// BpfProbe::HoldEvents): 64 MB with the default ring, about 450k events,
// what a churn of 30k connections a second makes in 4 seconds.
constexpr size_t kStartHoldRings = 16;

// "all", or each listed namespace with its inode: "self (4026531840),
// /run/netns/web (4026532290), 4026532311".
std::string NetnsLabel(const std::vector<NetnsRef>& refs) {
  if (refs.empty()) return "all";
  Result<uint32_t> self = SelfNetnsInode();
  std::string out;
  for (const NetnsRef& r : refs) {
    if (!out.empty()) out += ", ";
    const std::string inode = std::to_string(r.inode);
    if (!r.path.empty()) out += r.path + " (" + inode + ")";
    else if (self.ok() && *self == r.inode) out += "self (" + inode + ")";
    else out += inode;
  }
  return out;
}

}  // namespace

Daemon::Daemon(DaemonConfig config)
    : config_(std::move(config)),
      drain_(static_cast<int64_t>(config_.look_drain_timeout.count()) * 1'000'000) {}

Daemon::~Daemon() {
  Shutdown();
  if (probe_thread_.joinable()) probe_thread_.join();
}

Status Daemon::Init() {
  started_ns_ = RealtimeNs();

  FM_ASSIGN_OR_RETURN(filter_.netns, ResolveNetns(config_.netns, config_.proc_root));
  filter_.family = config_.family;
  filter_.ports = config_.ports;

  FM_RETURN_IF_ERROR(InitStore());
  InitLook();
  // The recorded namespaces' addresses: the gossip's, and which conntrack
  // entries a local socket may claim.
  netns_addresses_ = std::make_unique<NetnsAddressBook>(filter_.netns, config_.proc_root);
  // Before the probe's start-up snapshot: its connections find their
  // translations in the conntrack dump taken here.
  InitNat();
  FM_RETURN_IF_ERROR(InitProbe());
  // The seed is in: every connection open now is tracked, so windows from
  // here on count open connections from this checkpoint.
  aggregator_->Checkpoint(RealtimeNs());
  ReportMissingCapabilities();
  // The endpoints table is what listens now: the snapshot's listeners.
  Status eps = store_->ReplaceEndpoints(LiveEndpoints());
  if (!eps.ok()) FM_LOG(Warn, "store") << eps.message();

  if (config_.mesh_enabled()) FM_RETURN_IF_ERROR(InitMesh());

  control_ = std::make_unique<ControlServer>(io_, *this);
  FM_RETURN_IF_ERROR(control_->Listen(config_.control_socket));
  // The UI before the metrics: the metrics thread reads ui_ from its first
  // scrape, so ui_ is set before that thread starts and never written after.
  FM_RETURN_IF_ERROR(InitUi());
  FM_RETURN_IF_ERROR(InitMetrics());
  FM_LOG(Info, "meshd") << "node " << config_.node_name << " ready: " << probe_->Mode()
                        << " probe, netns " << NetnsLabel(filter_.netns)
                        << ", control socket " << config_.control_socket;
  return Status::Ok();
}

void Daemon::InitWorkloads() {
  if (config_.cgroup_root == "off") {
    workloads_state_ = "off (--cgroup-root off)";
    return;
  }
  std::string root = config_.cgroup_root;
  if (root == "auto") {
    Result<std::string> found = FindCgroupV2Root();
    if (!found.ok()) {
      // Not fatal: flows still work, named by process and pgid only.
      workloads_state_ = "off: " + found.status().message();
      FM_LOG(Warn, "proc") << found.status().message()
                           << "; give --cgroup-root PATH if cgroup2 is mounted elsewhere";
      return;
    }
    root = *found;
  }
  WorkloadResolverOptions o;
  o.cgroup_root = root;
  o.runtime.root = config_.runtime_root;
  workloads_ = std::make_unique<WorkloadResolver>(ProcReader(config_.proc_root), o);
  workloads_state_ = "on";
  cgroup_root_ = root;
  FM_LOG(Info, "proc") << "naming workloads from the cgroup v2 hierarchy at " << root
                       << ", container runtimes' files under " << config_.runtime_root;
}

Status Daemon::InitStore() {
  StoreOptions opts;
  opts.dir = config_.data_dir;
  opts.retention_ns = static_cast<int64_t>(config_.retention.count()) * 1'000'000;
  opts.retention_bytes = config_.retention_bytes;
  opts.memory_bytes = config_.store_memory_bytes;
  FM_ASSIGN_OR_RETURN(store_, Store::Open(opts));  // logs what it opened
  InitWorkloads();
  processes_ = std::make_unique<ProcessCache>(ProcReader(config_.proc_root), ProcessCacheOptions{},
                                              nullptr, workloads_.get());
  AggregatorOptions ao;
  ao.keep_records = config_.records;
  aggregator_ = std::make_unique<Aggregator>(processes_.get(), ao);
  if (!config_.records)
    FM_LOG(Info, "store") << "--records off: closes go into flows only, no per-connection records";
  pipeline_.set_aggregator(aggregator_.get());
  if (config_.mesh_enabled()) pipeline_.set_own_pid(static_cast<uint32_t>(getpid()));
  FlusherOptions fo;
  fo.interval_ns = static_cast<int64_t>(config_.flush_interval.count()) * 1'000'000;
  flusher_ = std::make_unique<Flusher>(
      fo, [this] { return aggregator_->TakeBatch(); }, Flusher::WriteTo(store_.get()),
      [this](Batch&& written) { aggregator_->Recycle(std::move(written)); });
  // Under heavy churn a second's records are tens of MB in memory (and as
  // much again in the write): write every kFlushAtRecords instead.
  aggregator_->set_on_pending_full(kFlushAtRecords, [this] { flusher_->Kick(); });
  return Status::Ok();
}

void Daemon::InitNat() {
  if (config_.conntrack == "off") {
    nat_state_ = "off (--conntrack off)";
    return;
  }
  Result<std::unique_ptr<ConntrackReader>> reader = ConntrackReader::Open();
  if (!reader.ok()) {
    nat_state_ = "off: " + reader.status().message();
    FM_LOG(Warn, "nat") << "not reading connection tracking, so look does not follow NAT "
                           "(Service VIPs, published ports, balancers): "
                        << reader.status().message();
    return;
  }
  std::function<bool(const IpAddr&)> is_local = LocalAddressTest();
  NatTableOptions options;
  // With only known namespaces recorded (self, or a list), an entry with
  // neither end at one of their addresses has no socket here to claim it:
  // a balancer's connection, forwarded at once instead of after the grace.
  // With --netns all, containers' addresses are not all known: wait.
  if (!filter_.netns.empty())
    options.unclaimable = [is_local](const CtEntry& e) {
      return !is_local(e.original.src.addr) && !is_local(e.reply.src.addr);
    };
  auto feed = std::make_unique<NatFeed>(std::move(*reader), std::move(options));
  const int64_t now = RealtimeNs();
  Status seeded = feed->Seed(now);
  if (!seeded.ok())
    FM_LOG(Warn, "nat") << "the start-up conntrack dump failed (" << seeded.message()
                        << "); translations of connections open now may be missed";
  nat_ = std::move(feed);
  aggregator_->set_nat(nat_.get(), now, std::move(is_local));
  nat_state_ = "on";
  FM_LOG(Info, "nat") << "reading connection tracking (netns " << nat_->netns() << "): " << nat_->Stats().table.entries << " translated connections open";
}

std::function<bool(const IpAddr&)> Daemon::LocalAddressTest() const {
  // The probe thread asks for every unclaimed conntrack entry: read the
  // addresses (every recorded namespace's) again at most every 10 s.
  struct Cache {
    std::vector<IpAddr> sorted;
    int64_t read_ns = 0;
  };
  auto cache = std::make_shared<Cache>();
  NetnsAddressBook* book = netns_addresses_.get();  // the daemon's, outlives the aggregator's use
  return [cache, book](const IpAddr& a) {
    if (a.is_loopback()) return true;
    const int64_t now = MonotonicNs();
    if (cache->read_ns == 0 || now - cache->read_ns > 10'000'000'000) {
      cache->sorted = LocalAddresses();
      if (std::optional<AddressesByNetns> by_netns = book->Read()) {
        std::vector<IpAddr> more = AllAddresses(*by_netns);
        cache->sorted.insert(cache->sorted.end(), more.begin(), more.end());
      }
      std::sort(cache->sorted.begin(), cache->sorted.end());
      cache->read_ns = now;
    }
    return std::binary_search(cache->sorted.begin(), cache->sorted.end(), a);
  };
}

void Daemon::FlushForQuery() {
  // Events wait in the ring buffer (up to BpfProbeOptions::max_latency_ms,
  // longer when the SCHED_BATCH probe thread is starved) or for the next
  // poll: without this a connection made a moment ago is not in the answer.
  // A timeout answers anyway; the barrier counts and logs it.
  drain_.Wait();
  if (!flusher_) return;
  Status s = flusher_->FlushNow();
  // Not fatal: the query answers from what is stored; status shows the error.
  if (!s.ok()) FM_LOG(Debug, "store") << "flush before a query failed: " << s.message();
}

std::vector<EndpointRecord> Daemon::LiveEndpoints() const {
  std::vector<EndpointRecord> out;
  for (const Listener& l : pipeline_.table().Listeners()) {
    EndpointRecord& r =
        out.emplace_back(EndpointRecord{l.key.netns, l.key.laddr, l.key.lport, l.proc, l.since_ns});
    // Look groups a live listener by its owner's workload when the store has
    // lost the owner's row; Peek, as this runs on control and mesh threads.
    if (std::optional<ProcessDetails> d = processes_->Peek(l.proc)) r.workload = d->workload;
  }
  return out;
}

Status Daemon::InitMetrics() {
  if (config_.metrics_listen.empty()) return Status::Ok();
  http::HttpServerOptions o;
  FM_ASSIGN_OR_RETURN(o.listen, Endpoint::Parse(config_.metrics_listen));
  o.content_type = std::string(metrics::kContentType);
  Result<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Start(
      o, [this] {
        std::string text = RenderMetrics(GetStatus(), look_->latency(), drain_);
        if (ui_) text += ui_->RenderMetrics();
        return text;
      });
  if (!server.ok())
    return Status(
        server.status().code(),
        "--metrics-listen " + config_.metrics_listen + ": " + server.status().message() +
            "; choose a free IP:PORT, or leave --metrics-listen empty to serve no metrics");
  metrics_ = std::move(*server);
  FM_LOG(Info, "metrics") << "serving Prometheus metrics at http://"
                          << metrics_->local_endpoint().ToString() << "/metrics";
  return Status::Ok();
}

Status Daemon::InitUi() {
  if (config_.ui_listen.empty()) return Status::Ok();
  ui::UiOptions o;
  FM_ASSIGN_OR_RETURN(o.listen, Endpoint::Parse(config_.ui_listen));
  if (!config_.ui_token_file.empty()) {
    Result<std::string> token = ui::LoadTokenFile(config_.ui_token_file);
    if (!token.ok()) return token.status().WithContext("--ui-token-file");
    o.token = std::move(token).value();
  }
  Result<std::unique_ptr<ui::UiServer>> server = ui::UiServer::Start(std::move(o), this);
  if (!server.ok())
    return Status(server.status().code(),
                  "--ui-listen " + config_.ui_listen + ": " + server.status().message() +
                      "; choose a free IP:PORT, or leave --ui-listen empty to serve no page");
  ui_ = std::move(*server);
  FM_LOG(Info, "ui") << "serving the map page at http://" << ui_->local_endpoint().ToString()
                     << "/" << (config_.ui_token_file.empty() ? "" : " (token required)");
  return Status::Ok();
}

void Daemon::ReportMissingCapabilities() const {
  // As root these are all held; under the systemd unit, the unit grants them.
  // Each missing one costs something specific: say what, once, at start-up.
  uint64_t caps = EffectiveCaps();
  auto check = [&](Cap cap, const char* cost) {
    if (MissingCaps(caps, {cap}).empty()) return;
    FM_LOG(Warn, "meshd") << "missing " << CapName(cap) << ": " << cost << "; run as root or grant "
                          << CapName(cap) << " (systemd: AmbientCapabilities=" << CapName(cap)
                          << ")";
  };
  check(Cap::kSysPtrace,
        "other users' processes cannot be inspected (/proc/<pid>/exe, ns/net, fd): their "
        "connections show without the executable, and their sockets that existed at start-up "
        "(in polling mode, all of them) cannot be tied to a process");
  check(Cap::kDacReadSearch,
        "/proc/<pid>/fd of other users' processes cannot be listed: their sockets that existed "
        "at start-up (in polling mode, all of them) cannot be tied to a process");
  Result<uint32_t> self = SelfNetnsInode();
  const bool elsewhere =
      filter_.netns.empty() || std::any_of(filter_.netns.begin(), filter_.netns.end(),
                                           [&](const NetnsRef& r) { return !self.ok() || r.inode != *self; });
  if (probe_ && probe_->Mode() == "polling" && elsewhere)
    check(Cap::kSysAdmin,
          "polling cannot enter other network namespaces (setns), so only meshd's own is "
          "seen; the eBPF probe sees them all, or say --netns self");
}

Status Daemon::InitProbe() {
  auto polling = [&](std::string reason) -> Status {
    auto probe = std::make_unique<PollProbe>(filter_, config_.probe_interval, config_.proc_root,
                                             cgroup_root_);
    FM_RETURN_IF_ERROR(probe->Init());
    // The first poll is the seed, taken before meshd says it is ready: what
    // opens after "ready" is a poll's find, not something that existed before.
    FM_ASSIGN_OR_RETURN(int seeded, probe->TransferData(pipeline_, 0));
    FM_LOG(Info, "probe") << "first poll: " << seeded
                          << " listeners and connections that existed at start-up";
    probe_ = std::move(probe);
    probe_reason_ = std::move(reason);
    return Status::Ok();
  };
  if (config_.probe_mode == ProbeMode::kPolling)
    return polling("requested with --probe-mode polling");

  BpfProbeOptions opts;
  opts.filter = filter_;
  opts.ring_bytes = config_.ring_buffer_bytes;
  opts.max_connections = config_.max_connections;
  opts.max_listeners = config_.max_listeners;
  opts.attach = config_.bpf_attach == "tp_btf"   ? BpfAttach::kBtf
                : config_.bpf_attach == "raw_tp" ? BpfAttach::kRaw
                                                 : BpfAttach::kAuto;
  auto bpf = std::make_unique<BpfProbe>(opts);
  Status s = bpf->Init();
  if (!s.ok()) {
    if (config_.probe_mode == ProbeMode::kStreaming) return s;
    FM_LOG(Warn, "probe") << "eBPF probe unavailable, falling back to polling every "
                          << config_.probe_interval.count() << "ms: " << s.message();
    return polling("fallback from eBPF: " + s.message());
  }
  // Nothing delivers the ring's events until the probe thread starts, after
  // the snapshot (a second with 50k connections open) and the rest of Init:
  // they are held in memory meanwhile, up to kStartHoldRings rings' worth.
  if (Status held = bpf->HoldEvents(kStartHoldRings * size_t{config_.ring_buffer_bytes});
      !held.ok())
    FM_LOG(Warn, "probe") << held.message() << "; a busy host may lose events while meshd starts";
  // Attach first, then snapshot: anything that opens in between is seen by
  // both, and the connection table merges the two reports.
  FM_RETURN_IF_ERROR(SeedFromSnapshot(*bpf));
  // The seed went through the pipeline before any kernel event will (the
  // probe thread starts in Run), so no sock_diag report can race a kernel
  // close from here on: see Aggregator::set_remember_kernel_closes.
  if (aggregator_) aggregator_->set_remember_kernel_closes(false);
  probe_reason_ = std::string("eBPF (") + std::string(bpf->AttachKind()) + "/inet_sock_set_state)";
  const SocketIter* probe_iter = bpf->socket_iter();
  probe_ = std::move(bpf);
  refresher_ = std::make_unique<Snapshotter>(filter_, config_.proc_root, cgroup_root_);
  refresher_->set_holder_source(HolderSource(probe_iter));
  if (config_.reconcile_interval.count() > 0) {
    ReconcilerOptions ro;
    ro.interval_ns = static_cast<int64_t>(config_.reconcile_interval.count()) * 1'000'000;
    reconciler_ = std::make_unique<Reconciler>(pipeline_.table(), ro);
    reconciler_->StartAfter(MonotonicNs());  // the seed is this moment's view
  }
  if (reconciler_ || config_.account_interval.count() > 0) {
    kernel_snapshotter_ = std::make_unique<Snapshotter>(filter_, config_.proc_root, cgroup_root_);
    next_account_ns_ = MonotonicNs() + config_.account_interval.count() * 1'000'000;
  }
  return Status::Ok();
}

// Owners in one read of a BPF iterator rather than a readlink of every
// descriptor of every process under /proc (10-15 ms for 20k sockets here
// against 60-90 ms, more on a host with many processes).
SocketOwners::HolderSource Daemon::HolderSource(const SocketIter* iter) {
  if (!iter) return nullptr;
  return [iter]() -> std::optional<std::vector<std::pair<uint32_t, uint32_t>>> {
    Result<std::vector<std::pair<uint32_t, uint32_t>>> holders = iter->Holders();
    if (holders.ok()) return std::move(holders).value();
    FM_LOG(Warn, "probe") << holders.status().message() << "; reading /proc this time";
    return std::nullopt;
  };
}

Status Daemon::SeedFromSnapshot(BpfProbe& probe) {
  Snapshotter snapshotter(filter_, config_.proc_root, cgroup_root_);
  snapshotter.set_holder_source(HolderSource(probe.socket_iter()));
  // A run at a time, a namespace's listeners before its connections (so a
  // passive connection finds its listener), not the whole picture at once.
  size_t connections = 0, listeners_full = 0;
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    for (const ConnEvent& ev : events) {
      if (ev.kind == EventKind::kOpen) {
        connections++;
      } else if (ev.proc.known()) {
        Status s = probe.SeedListener(ev.key, ev.proc);
        if (s.code() == Status::Code::kResourceExhausted)
          listeners_full++;  // said once, below
        else if (!s.ok())
          FM_LOG(Warn, "probe") << s.message();
      }
    }
    pipeline_.OnEvents(events);
  };
  // Room for them all before the first: see FlatMap::reserve.
  const SnapshotExpect expect = [&](size_t n) { pipeline_.Reserve(n); };
  Result<Snapshot> snap = snapshotter.Take(EventSource::kSeed, /*with_owners=*/true, &sink, &expect);
  if (!snap.ok()) {
    // Not fatal: new connections are still traced; older ones lose their process.
    FM_LOG(Warn, "probe") << "start-up snapshot failed, connections opened before meshd will "
                          << "show without a process: " << snap.status().message();
    return Status::Ok();
  }
  FM_LOG(Info, "probe") << "seeded " << snap->listeners.size() << " listeners and " << connections
                        << " connections that existed at start-up";
  if (listeners_full > 0)
    FM_LOG(Warn, "probe") << listeners_full << " listeners that existed at start-up did not fit "
                          << "the listener table (--max-listeners " << config_.max_listeners
                          << "): connections they accept show without their process; raise "
                          << "--max-listeners";
  return Status::Ok();
}

void Daemon::ProbeLoop() {
  SetThreadName("probe");
  // The streaming probe's work is throughput work the ring buffer absorbs
  // delay for: run it SCHED_BATCH, so events waking it do not preempt the
  // programs it watches (see SetThreadBatchPolicy). Not the poller, whose
  // counters and opens are only as accurate as its polls are punctual.
  if (probe_->Mode() == "streaming") SetThreadBatchPolicy("probe");
  if (config_.look_drain_timeout.count() > 0) drain_.Open([this] { return probe_->Wake(); });
  while (running_.load()) {
    Result<int> n = probe_->TransferData(pipeline_, kProbeWaitMs);
    if (!n.ok()) {
      FM_LOG(Error, "probe") << n.status().message() << "; stopping";
      exit_code_.store(1);
      asio::post(io_, [this] { Shutdown(); });
      break;
    }
    CheckKernelIfDue();
    // Both modes: every open connection is carried into a checkpoint that began.
    if (aggregator_) aggregator_->Tick(RealtimeNs());
    // A whole round: what a query waits for is in the aggregator by now.
    drain_.RoundDone(probe_->WakesServed());
  }
  drain_.Close();
}

void Daemon::CheckKernelIfDue() {
  // Here, not on a thread of its own: what it makes up reaches the aggregator
  // in order with the ring buffer's events, and each dump is followed by a
  // full drain of the ring before the next one can confirm it.
  if (!kernel_snapshotter_) return;
  const int64_t now = MonotonicNs();
  // The ring was drained just before: what the last dump missed and the
  // ring has reported since needs no confirming dump.
  if (reconciler_) reconciler_->DropReported(now);
  const bool reconcile = reconciler_ && reconciler_->Due(now);
  const int64_t account_ns = config_.account_interval.count() * 1'000'000;
  const bool account = account_ns > 0 && now >= next_account_ns_;
  if (!reconcile && !account) return;
  // Any dump reads every open connection's counters: the next reading is
  // due an interval after this one, so with equal intervals accounting
  // rides on reconciliation's dumps instead of adding its own.
  if (account_ns > 0) next_account_ns_ = now + account_ns;
  const uint64_t seq = pipeline_.table().Sequence();
  const int64_t taken_ns = RealtimeNs();
  // Whatever the dump was for, its counters are news: the bytes each open
  // connection moved since the last reading land in this bucket. UPDATE
  // never inserts, so a dump racing the ring buffer resurrects nothing. They
  // go a run at a time as the dump is read (the whole dump as events was
  // 17 MB at 100,000 sockets), before reconciliation: they are of sockets
  // the dump found, which reconciliation leaves alone.
  // The dump keeps this thread from the ring for about a third of a second
  // at 100k sockets, as long as churn takes to fill a 4 MB ring (20,098
  // events lost in 45 s at 50k idle connections): meanwhile a thread holds
  // the ring's events, delivered first by the next TransferData.
  if (auto* bpf = dynamic_cast<BpfProbe*>(probe_.get())) {
    if (Status held = bpf->HoldEvents(kStartHoldRings * size_t{config_.ring_buffer_bytes},
                                      BpfProbe::HoldFor::kDump);
        !held.ok())
      FM_LOG(Debug, "probe") << "events not held during the dump: " << held.message();
  }
  // Each connection the dump finds goes through the table as an UPDATE,
  // which moves its seen_seq on: that is how reconciliation knows it was
  // found (KernelView::found_in_table), with no set of the dump's keys.
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    if (events.empty() || events.front().kind != EventKind::kOpen) return;  // listeners
    for (ConnEvent& c : events) c.kind = EventKind::kUpdate;
    pipeline_.OnEvents(events);
  };
  Result<Snapshot> snap =
      kernel_snapshotter_->Take(EventSource::kPoll, /*with_owners=*/false, &sink);
  if (!snap.ok()) {
    FM_LOG(Warn, "probe") << "sock_diag dump failed (" << (reconcile ? "reconciliation" : "")
                          << (reconcile && account ? ", " : "")
                          << (account ? "open connections' counters" : "")
                          << "), retrying at the next interval: " << snap.status().message();
    if (reconcile) reconciler_->Failed(MonotonicNs());
    if (account) account_failures_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  account_dumps_.fetch_add(1, std::memory_order_relaxed);
  if (reconcile) {
    KernelView view = KernelViewOf(*snap, taken_ns, seq);
    view.found_in_table = true;
    std::vector<ConnEvent> made_up = reconciler_->Apply(std::move(view), MonotonicNs());
    for (const ConnEvent& ev : made_up) pipeline_.Forward(ev);
    if (!made_up.empty())
      FM_LOG(Info, "probe") << "reconciled " << made_up.size()
                            << " closes or unlistens the probe missed (now gone from sock_diag)";
  }
  // A dump frees what it allocated, and closes free table entries, into
  // holes glibc keeps resident (only a heap's top goes back by itself):
  // return whole free pages to the kernel, once per dump (measured at 50 us
  // with 20,000 sockets open, about 1 ms with 100,000).
  malloc_trim(0);
}

int Daemon::Run() {
  running_.store(true);
  probe_thread_ = std::thread([this] { ProbeLoop(); });

  // SIGHUP stops meshd the same clean way (flush, leave the mesh): there is
  // no reload, and a hang-up (a closed terminal, a supervisor's default
  // signal) must not kill it mid-write without telling its peers.
  asio::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
  signals.async_wait([this](const asio::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      FM_LOG(Info, "meshd") << "received SIGHUP, shutting down: meshd does not reload its "
                               "configuration on SIGHUP; start it again to apply changes";
    } else {
      FM_LOG(Info, "meshd") << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                            << ", shutting down";
    }
    Shutdown();
  });
  io_.run();
  // No more scrapes: what follows tears down what they read.
  if (metrics_) metrics_->Stop();
  // The page's API calls read the store and the mesh: finish them first.
  if (ui_) ui_->Stop();
  if (probe_thread_.joinable()) probe_thread_.join();
  if (probe_) probe_->Stop();
  // Everything the probe delivered is aggregated by now: write it.
  if (flusher_) flusher_->Stop();
  // Leave the mesh gracefully: peers mark us left, not dead.
  if (mesh_) mesh_->Stop();
  ProbeStats st = probe_ ? probe_->Stats() : ProbeStats{};
  FM_LOG(Info, "meshd") << "stopped: " << st.events << " events, " << st.lost << " lost";
  return exit_code_.load();
}

void Daemon::Shutdown() {
  running_.store(false);
  if (control_) control_->Stop();
  io_.stop();
}

NodeStatus Daemon::GetStatus() {
  NodeStatus s;
  s.node_name = config_.node_name;
  s.version = FLOWMESH_VERSION;
  s.pid = static_cast<uint32_t>(getpid());
  s.started_ns = started_ns_;
  s.probe_mode = std::string(probe_ ? probe_->Mode() : "none");
  s.probe_reason = probe_reason_;
  s.netns = NetnsLabel(filter_.netns);
  if (probe_) s.probe = probe_->Stats();
  if (reconciler_) {
    ReconcilerStats rs = reconciler_->Stats();
    s.probe.detail.emplace_back("reconcile_dumps", rs.dumps);
    s.probe.detail.emplace_back("reconcile_failures", rs.dump_failures);
    s.probe.detail.emplace_back("reconcile_candidates", rs.candidates);
  }
  const DrainStats drains = drain_.stats();
  s.probe.detail.emplace_back("look_drain_waits", drains.waits);
  s.probe.detail.emplace_back("look_drain_timeouts", drains.timeouts);
  if (kernel_snapshotter_) {
    s.probe.detail.emplace_back("account_dumps", account_dumps_.load());
    s.probe.detail.emplace_back("account_failures", account_failures_.load());
  }
  // Workloads: "on" or "off: why" as 0/1, and how naming cgroups went.
  s.probe.detail.emplace_back("workloads_on", workloads_ ? 1 : 0);
  s.workloads = workloads_state_;
  s.ui = ui_ ? ui_->StatusLine() : "off";
  if (workloads_) {
    const WorkloadResolverStats ws = workloads_->Stats();
    s.workloads += ": " + std::to_string(ws.named) + " cgroups named as units or containers, " +
                   std::to_string(ws.unresolved) + " not found";
    s.probe.detail.emplace_back("workloads_named", ws.named);
    s.probe.detail.emplace_back("workload_lookups", ws.lookups);
    s.probe.detail.emplace_back("workload_cache_hits", ws.hits);
    s.probe.detail.emplace_back("workload_walks", ws.walks);
    s.probe.detail.emplace_back("workload_unresolved", ws.unresolved);
    s.probe.detail.emplace_back("workload_metadata_errors", ws.metadata_errors);
  }
  s.table = pipeline_.table().Stats();
  s.watchers = static_cast<uint32_t>(pipeline_.hub().subscriber_count());
  s.first_event_ns = pipeline_.first_event_ns();
  if (mesh_) {
    s.mesh = mesh_->Summary();
    s.mesh.looks = look_->looks();
    s.mesh.look_round_trips = look_->round_trips();
    s.mesh.look_unanswered = look_->unanswered();
    s.mesh.maps = look_->maps();
    s.mesh.map_unanswered = look_->map_unanswered();
  }
  if (store_) {
    s.store.stats = store_->Stats();
    FlusherStats fs = flusher_->Stats();
    AggregatorStats as = aggregator_->Stats();
    s.store.flushes = fs.flushes;
    s.store.records_written = fs.records_written;
    s.store.pending_records = fs.pending_records + as.pending_records;
    s.store.dropped_records = fs.dropped_records;
    s.store.flows = as.flows_touched;
    s.store.duplicates = as.duplicate_opens + as.duplicates_ignored;
    s.store.records_off = !config_.records;
    s.store.carried = as.carried;
    s.store.checkpoints_missed = as.checkpoints_missed;
    s.probe.detail.emplace_back("carried_into_checkpoints", as.carried);
    s.probe.detail.emplace_back("checkpoints", as.checkpoints);
    s.probe.detail.emplace_back("checkpoints_missed", as.checkpoints_missed);
    s.probe.detail.emplace_back("processes_renamed", as.processes_renamed);
    if (nat_) {
      const NatFeedStats ns = nat_->Stats();
      s.conntrack = nat_state_ + ": " + std::to_string(ns.table.entries) +
                    " translated connections held, " + std::to_string(as.aliases) +
                    " aliases announced";
      s.probe.detail.emplace_back("conntrack_events", ns.reader.events);
      s.probe.detail.emplace_back("conntrack_malformed", ns.reader.malformed);
      s.probe.detail.emplace_back("conntrack_overflows", ns.reader.overflows);
      s.probe.detail.emplace_back("conntrack_resyncs", ns.resyncs);
      s.probe.detail.emplace_back("conntrack_resync_failures", ns.resync_failures);
      s.probe.detail.emplace_back("conntrack_prunes", ns.prunes);
      s.probe.detail.emplace_back("conntrack_closed_at_start", ns.closed_at_start);
      s.probe.detail.emplace_back("conntrack_kernel_lookups", ns.kernel_lookups);
      s.probe.detail.emplace_back("nat_translated", as.translated);
      s.probe.detail.emplace_back("nat_forwarded_opened", as.forwarded_opened);
      s.probe.detail.emplace_back("nat_forwarded_closed", as.forwarded_closed);
      s.probe.detail.emplace_back("nat_forwarded_local_ignored", as.forwarded_local_ignored);
      s.probe.detail.emplace_back("nat_forwarded_unestablished", ns.forwarded_unestablished);
      s.probe.detail.emplace_back("nat_forwarded_waiting", ns.forwarded_waiting);
      s.probe.detail.emplace_back("nat_forwarded_wait_dropped", ns.forwarded_wait_dropped);
      s.probe.detail.emplace_back("nat_untranslated_ignored", ns.table.untranslated);
      s.probe.detail.emplace_back("nat_evicted", ns.table.evicted);
    } else {
      s.conntrack = nat_state_;
    }
  }
  return s;
}

void Daemon::RefreshCounters() {
  // Streaming mode learns counters only at CLOSE; `top` wants them live, so
  // ask sock_diag, at most once per probe interval, and only when asked.
  std::lock_guard lock(refresh_mu_);
  if (!refresher_) return;
  int64_t now = RealtimeNs();
  if (now - last_refresh_ns_ < config_.probe_interval.count() * 1'000'000 / 2) return;
  last_refresh_ns_ = now;
  // UPDATE never inserts, so a snapshot racing the ring buffer cannot
  // resurrect a connection that has just closed.
  const SnapshotSink sink = [&](std::span<ConnEvent> events) {
    if (events.empty() || events.front().kind != EventKind::kOpen) return;  // listeners
    // One at a time: OnEvents is the probe thread's, and this is a control thread.
    for (ConnEvent& c : events) {
      c.kind = EventKind::kUpdate;
      pipeline_.OnEvent(c);
    }
  };
  Result<Snapshot> snap = refresher_->Take(EventSource::kPoll, /*with_owners=*/true, &sink);
  if (!snap.ok()) {
    FM_LOG(Warn, "probe") << "live counter refresh failed: " << snap.status().message();
    return;
  }
}

std::vector<OpenConnection> Daemon::GetConnections() {
  RefreshCounters();
  return pipeline_.table().Connections();
}

std::shared_ptr<Subscriber> Daemon::Subscribe() { return pipeline_.hub().Subscribe(); }

Status Daemon::ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                           const std::function<bool(const ConnRecord&)>& fn) {
  if (!config_.records)
    return Status(Status::Code::kUnavailable,
                  "this node runs with --records off: it keeps per-minute flows, not "
                  "one record per connection; meshctl look and meshctl map read the flows. "
                  "Records stored before are kept: restart meshd with --records on to read "
                  "them and to keep records again");
  FlushForQuery();
  return store_->ScanRecords(window, filter, fn);
}

Workload Daemon::WorkloadOf(const ProcessRef& process) {
  if (!process.known()) return {};
  // Asked from control threads for every record of `flows`, mostly of
  // processes long gone: a Lookup would insert their negatives (evicting
  // live entries), read /proc or walk, and rename a live process after a
  // record's old cgroup id. So: the cache as it is, then the store's row
  // (the aggregator wrote every process it saw, and again once named).
  std::optional<ProcessDetails> cached = processes_->Peek(process);
  if (cached && !cached->workload.empty()) return cached->workload;
  Result<std::optional<ProcessDetails>> stored = store_->Process(process.pid, process.start_ticks);
  if (stored.ok() && *stored) return (*stored)->workload;
  if (cached) return {};
  // Known to neither: a live process the aggregator has not looked up yet
  // (an event of watch or top racing it). A hit never gets here, so this
  // Lookup refreshes no cached process's cgroup.
  return processes_->Lookup(process).workload;
}

std::vector<EndpointView> Daemon::GetEndpoints() {
  std::vector<EndpointView> out;
  for (const EndpointRecord& e : LiveEndpoints()) {
    EndpointView v;
    v.endpoint = e;
    v.process = processes_->Lookup(e.proc);
    out.push_back(std::move(v));
  }
  for (EndpointView& v : AliasViews(LocalAliases(), "")) out.push_back(std::move(v));
  return out;
}

}  // namespace flowmesh
