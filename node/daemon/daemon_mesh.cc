// Daemon: the wiring of the mesh and the look service, and the conversions
// between their types and what the control socket shows.
#include <algorithm>
#include <map>
#include <tuple>

#include "node/common/clock.h"
#include "node/daemon/daemon.h"
#include "node/mesh/scatter_gather.h"

namespace flowmesh {
namespace {

// A gossiped row's owner, as `endpoints` shows it.
void SetOwner(EndpointView& v, uint32_t pid, uint32_t pgid, const std::string& comm,
              const std::string& exe) {
  v.process.pid = pid;
  v.process.pgid = pgid;
  v.process.comm = comm;
  v.process.exe = exe;
  v.endpoint.proc.pid = pid;
  v.endpoint.proc.set_comm(comm);
}

}  // namespace

Status Daemon::InitMesh() {
  MeshServiceOptions mo;
  mo.node_name = config_.node_name;
  FM_ASSIGN_OR_RETURN(mo.bind, Endpoint::Parse(config_.bind));
  if (!config_.advertise.empty()) {
    FM_ASSIGN_OR_RETURN(mo.advertise, IpAddr::Parse(config_.advertise));
  }
  mo.join = config_.join;
  mo.key_file = config_.cluster_key_file;
  mo.label = config_.cluster_label;
  mo.insecure = config_.insecure;
  mo.answer_query = [this](std::span<const uint8_t> query) { return look_->Answer(query); };
  mo.refuse_query = [this](std::span<const uint8_t> query, const std::string& why) {
    return look_->Refuse(query, why);
  };
  mo.query_latency = &look_->latency().peer;
  FM_ASSIGN_OR_RETURN(mesh_, MeshService::Start(mo, *store_, [this] { return MeshTable(); }));
  return Status::Ok();
}

LocalTable Daemon::MeshTable() {
  LocalTable t;
  // Several namespaces (--netns self,/run/netns/c): each one's addresses are
  // the node's, and a wildcard listener serves its own namespace's only.
  std::optional<AddressesByNetns> by_netns = netns_addresses_->Read();
  t.addresses = by_netns ? AllAddresses(*by_netns) : GossipAddresses();
  for (const EndpointRecord& e : LiveEndpoints()) {
    // Loopback listeners are not reachable from other hosts.
    if (e.addr.is_loopback()) continue;
    ProcessDetails p = processes_->Lookup(e.proc);
    for (const IpAddr& a : by_netns ? ServedAddresses(e.addr, e.netns, *by_netns)
                                    : std::vector<IpAddr>{e.addr})
      t.endpoints.push_back({a, e.port, p.pid, p.pgid, p.comm, p.exe, p.workload});
  }
  std::sort(t.endpoints.begin(), t.endpoints.end(), [](const auto& a, const auto& b) {
    return std::tie(a.port, a.addr) < std::tie(b.port, b.addr);
  });
  t.aliases = LocalAliases();
  return t;
}

std::vector<mesh::AliasSummary> Daemon::LocalAliases() {
  std::vector<mesh::AliasSummary> out;
  if (!aggregator_) return out;
  // Aliases() locks the aggregator's state: safe from the publisher's and
  // the control threads, as look's use of it is.
  for (const NatAlias& a : aggregator_->Aliases(RealtimeNs())) {
    // A loopback front is not reachable from other hosts (as loopback
    // listeners are not announced), and a row without both ports is one
    // every peer would drop with the whole delta carrying it.
    if (a.front.addr.is_loopback() || a.front.port == 0 || a.target.port == 0 ||
        a.front.addr.is_unspecified() || a.target.addr.is_unspecified())
      continue;
    mesh::AliasSummary s;
    s.front = a.front;
    s.target = a.target;
    s.balancer = a.balancer;
    if (!a.balancer && a.owner.known()) {
      ProcessDetails p = processes_->Lookup(a.owner);
      s.pid = p.pid;
      s.pgid = p.pgid;
      s.comm = p.comm;
      s.exe = p.exe;
    }
    out.push_back(std::move(s));
  }
  // The same front and target in several namespaces is one row.
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.front, a.target) < std::tie(b.front, b.target);
  });
  out.erase(std::unique(out.begin(), out.end(),
                        [](const auto& a, const auto& b) {
                          return a.front == b.front && a.target == b.target;
                        }),
            out.end());
  return out;
}

std::vector<EndpointView> AliasViews(const std::vector<mesh::AliasSummary>& aliases,
                                     const std::string& node) {
  std::vector<EndpointView> out;
  std::map<Endpoint, size_t> balancers;  // front -> its row in out
  for (const mesh::AliasSummary& a : aliases) {
    if (a.balancer) {
      auto [it, added] = balancers.emplace(a.front, out.size());
      if (!added) {
        out[it->second].targets.push_back(a.target);
        continue;
      }
    }
    EndpointView v;
    v.endpoint.addr = a.front.addr;
    v.endpoint.port = a.front.port;
    v.node = node;
    v.targets = {a.target};
    v.balancer = a.balancer;
    if (!a.balancer) SetOwner(v, a.pid, a.pgid, a.comm, a.exe);
    out.push_back(std::move(v));
  }
  for (EndpointView& v : out) std::sort(v.targets.begin(), v.targets.end());
  return out;
}

std::vector<PeerView> Daemon::GetPeers() {
  std::vector<PeerView> out;
  if (!mesh_) return out;
  for (const mesh::MemberView& m : mesh_->Members()) {
    PeerView p;
    p.name = m.name;
    p.addr = m.address;
    p.state = mesh::MemberStateName(m.state);
    p.incarnation = m.incarnation;
    p.endpoints = m.endpoints;
    p.state_change_ns = m.state_change_ns > 0 ? MonotonicToRealtimeNs(m.state_change_ns) : 0;
    p.generation = m.generation;
    p.node_id = m.node_id;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<EndpointView> Daemon::GetMeshEndpoints() {
  std::vector<EndpointView> out;
  if (!mesh_) return out;
  Result<std::vector<mesh::NodeTable>> tables = mesh_->Tables();
  if (!tables.ok()) {
    FM_LOG(Warn, "mesh") << "cannot list the mesh's endpoints: " << tables.status().message();
    return out;
  }
  for (const mesh::NodeTable& t : *tables) {
    for (const mesh::EndpointSummary& e : t.endpoints) {
      EndpointView v;
      v.endpoint.addr = e.addr;
      v.endpoint.port = e.port;
      SetOwner(v, e.pid, e.pgid, e.comm, e.exe);
      v.process.workload = e.workload;
      v.node = t.name;
      out.push_back(std::move(v));
    }
    for (EndpointView& v : AliasViews(t.aliases, t.name)) out.push_back(std::move(v));
  }
  return out;
}

Result<LookResult> Daemon::RunLook(const LookQuery& query) { return look_->Run(query); }

// Without a mesh, the map of this node alone (LookService asks no one).
Result<MapResult> Daemon::RunMap(const MapQuery& query) { return look_->RunMap(query); }

void Daemon::InitLook() {
  LookServiceOptions lo;
  lo.node_name = config_.node_name;
  lo.live_endpoints = [this] { return LiveEndpoints(); };
  lo.aliases = [this] { return aggregator_->Aliases(RealtimeNs()); };
  lo.flush = [this] { FlushForQuery(); };
  if (config_.mesh_enabled()) {
    lo.members = [this] { return LookMembers(); };
    lo.scatter = [this](std::vector<MemberQuery> queries, int64_t timeout_ns,
                        const std::function<void()>& meanwhile, QueryLimits limits) {
      using Gather = mesh::ScatterGather<mesh::Bytes, mesh::Bytes>;
      std::vector<Gather::Target> targets;
      for (MemberQuery& q : queries) targets.push_back({q.address, std::move(q.bytes)});
      auto send = [this](const mesh::Address& to, mesh::Bytes query, int64_t timeout,
                         Gather::Done done) {
        mesh_->Query(to, std::move(query), timeout, std::move(done));
      };
      return Gather::Run(std::move(targets), send, timeout_ns, meanwhile,
                         mesh::ScatterLimits{limits.max_in_flight, limits.total_timeout_ns,
                                             limits.latency_ns});
    };
  }
  look_ = std::make_unique<LookService>(*store_, std::move(lo));
}

Result<std::vector<LookMember>> Daemon::LookMembers() {
  std::vector<LookMember> out;
  FM_ASSIGN_OR_RETURN(std::vector<mesh::NodeTable> tables, mesh_->Tables(/*with_gone=*/true));
  for (mesh::NodeTable& t : tables) {
    LookMember m;
    m.name = std::move(t.name);
    m.address = std::move(t.address);
    m.live = t.state == mesh::MemberState::kAlive || t.state == mesh::MemberState::kSuspect;
    m.state = mesh::MemberStateName(t.state);
    m.synced = t.table_known;
    m.addresses = std::move(t.addresses);
    for (const mesh::EndpointSummary& e : t.endpoints) {
      m.endpoints.push_back({e.addr, e.port});
      ProcessDetails owner;
      owner.pid = e.pid;
      owner.pgid = e.pgid;
      owner.comm = e.comm;
      owner.exe = e.exe;
      owner.workload = e.workload;
      m.owners.push_back(std::move(owner));
    }
    for (const mesh::AliasSummary& a : t.aliases) m.aliases.push_back({a.front, a.target, a.balancer});
    out.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<NodeKeys>> Daemon::RunKeyOp(KeyOp op, const std::string& key) {
  if (!mesh_)
    return Unavailable(
        "this meshd is not in a mesh (start it with --cluster-key-file FILE and --join SEEDS)");
  mesh::KeyOp mesh_op = mesh::KeyOp::kList;
  switch (op) {
    case KeyOp::kList: mesh_op = mesh::KeyOp::kList; break;
    case KeyOp::kInstall: mesh_op = mesh::KeyOp::kInstall; break;
    case KeyOp::kUse: mesh_op = mesh::KeyOp::kUse; break;
    case KeyOp::kRemove: mesh_op = mesh::KeyOp::kRemove; break;
  }
  FM_ASSIGN_OR_RETURN(std::vector<mesh::MemberKeys> members, mesh_->Keys(mesh_op, key));
  std::vector<NodeKeys> out;
  for (mesh::MemberKeys& m : members) {
    NodeKeys nk{std::move(m.node), std::move(m.error), {}};
    for (const mesh::KeyInfo& k : m.keys) nk.keys.push_back(KeyState{k.fingerprint, k.primary});
    out.push_back(std::move(nk));
  }
  return out;
}

}  // namespace flowmesh
