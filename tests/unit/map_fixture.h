// A small mesh of real stores for the map's tests: client c1 (kube-proxy VIP
// translated on it, a published port on d1, a balancer on b1), server s1,
// d1 (docker -p), balancer b1 in front of be1 and be2, and a listener
// nobody called. Each node answers with the real LocalQuerier::Map.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/look/local_directory.h"
#include "node/look/look_service.h"
#include "node/look/remote_directory.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh::maptest {

using ::flowmesh::testing::kSec;
using ::flowmesh::testing::kT0;

inline IpAddr A(const char* s) { return *IpAddr::Parse(s); }
inline Endpoint E(const char* s) { return *Endpoint::Parse(s); }

inline const MapNode* FindNode(const MapGraph& g, const std::string& id) {
  for (const MapNode& n : g.nodes)
    if (n.id == id) return &n;
  return nullptr;
}
inline const MapEdge* FindEdge(const MapGraph& g, const std::string& from, const std::string& to) {
  for (const MapEdge& e : g.edges)
    if (e.from == from && e.to == to) return &e;
  return nullptr;
}

inline FlowKey Key(Direction dir, uint32_t netns, uint32_t pid, const char* laddr, uint16_t lport,
                   const char* raddr, uint16_t rport, const char* x = nullptr) {
  FlowKey k;
  k.direction = dir;
  k.netns = netns;
  k.pid = pid;
  k.start_ticks = pid == 0 ? 0 : pid * 10;
  k.laddr = A(laddr);
  k.lport = lport;
  k.raddr = A(raddr);
  k.rport = rport;
  if (x != nullptr) {
    Endpoint e = E(x);
    k.xaddr = e.addr;
    k.xport = e.port;
  }
  return k;
}

struct Node {
  std::string name;
  std::vector<IpAddr> addrs;
  flowmesh::testing::TempDir dir;
  std::unique_ptr<Store> store;
  std::vector<EndpointRecord> live;
  std::vector<NatAlias> aliases;
  std::unique_ptr<LocalQuerier> querier;
  Batch batch;

  void Listen(uint32_t netns, const char* addr, uint16_t port, uint32_t pid, const char* comm,
              uint32_t pgid = 0) {
    EndpointRecord r;
    r.netns = netns;
    r.addr = A(addr);
    r.port = port;
    r.proc.pid = pid;
    r.proc.start_ticks = pid * 10;
    r.since_ns = kT0;
    live.push_back(r);
    batch.endpoints_added.push_back(r);
    Process(pid, comm, pgid);
  }
  void Process(uint32_t pid, const char* comm, uint32_t pgid = 0, const char* unit = nullptr) {
    ProcessDetails d;
    d.pid = pid;
    d.start_ticks = pid * 10;
    d.pgid = pgid == 0 ? pid : pgid;
    d.comm = comm;
    if (unit != nullptr) {
      d.workload.kind = WorkloadKind::kUnit;
      d.workload.unit = unit;
      d.workload.name = unit;
      d.workload.id = unit;
    }
    batch.processes.push_back(d);
  }
  void Flow(FlowKey k, uint64_t connections, uint64_t bytes = 0) {
    FlowDelta f;
    f.bucket_ns = kT0;
    f.key = k;
    f.stats.connections = connections;
    f.stats.closed = connections;
    f.stats.bytes_tx = bytes;
    f.stats.first_seen_ns = kT0 + kSec;
    f.stats.last_seen_ns = kT0 + 2 * kSec;
    batch.flows.push_back(f);
  }
  void Commit() {
    if (batch.empty()) return;
    Status s = store->Write(batch);
    ASSERT_TRUE(s.ok()) << s.message();
    batch = Batch{};
  }
  // What meshd gives this node's look service: its name, live listeners
  // and aliases (no mesh: the caller adds members and a scatter).
  LookServiceOptions ServiceOptions() {
    LookServiceOptions o;
    o.node_name = name;
    o.live_endpoints = [this] { return live; };
    o.aliases = [this] { return aliases; };
    return o;
  }
  // The member as the gossiped tables show it.
  LookMember Member() const {
    LookMember m;
    m.name = name;
    m.address = addrs.front().ToString() + ":7946";
    m.state = "alive";
    m.addresses = addrs;
    for (const EndpointRecord& l : live) {
      m.endpoints.push_back({l.addr, l.port});
      ProcessDetails owner;
      owner.pid = l.proc.pid;
      owner.pgid = l.proc.pid;
      owner.comm = "gossiped";
      m.owners.push_back(owner);
    }
    for (const NatAlias& a : aliases) m.aliases.push_back({a.front, a.target, a.balancer});
    return m;
  }
};

// Six nodes with empty stores, each with its querier (live listeners and
// aliases as the node's fields say): client c1, server s1, docker host d1
// (its bridge addresses too), backends be1 and be2, balancer b1.
inline std::map<std::string, std::unique_ptr<Node>> NatNodes() {
  std::map<std::string, std::unique_ptr<Node>> nodes;
  for (auto [name, addrs] : std::vector<std::pair<const char*, std::vector<const char*>>>{
           {"c1", {"10.0.0.1"}},
           {"s1", {"10.0.0.2"}},
           {"d1", {"10.0.0.3", "172.18.0.1", "172.18.0.2"}},
           {"be1", {"10.0.0.4"}},
           {"be2", {"10.0.0.5"}},
           {"b1", {"10.0.0.9"}}}) {
    auto n = std::make_unique<Node>();
    n->name = name;
    for (const char* a : addrs) n->addrs.push_back(A(a));
    n->store = flowmesh::testing::MustOpen(flowmesh::testing::TestOptions(n->dir.path()));
    if (n->store == nullptr) return {};  // MustOpen said why; the caller checks the count
    Node* raw = n.get();
    n->querier = std::make_unique<LocalQuerier>(*n->store, [raw] { return raw->live; });
    n->querier->set_aliases([raw] { return raw->aliases; });
    nodes[name] = std::move(n);
  }
  return nodes;
}

class MapMesh : public ::testing::Test {
 protected:
  void SetUp() override {
    nodes_ = NatNodes();
    ASSERT_EQ(nodes_.size(), 6u);
    Node& c1 = *nodes_["c1"];
    c1.Process(10, "curl");
    c1.Process(11, "wrk");
    // kube-proxy on c1: curl dialled the VIP, conntrack said where it went.
    c1.Flow(Key(Direction::kActive, 1, 10, "10.0.0.1", 40000, "10.0.250.1", 80, "10.0.0.2:8080"),
            20, 2000);
    // docker -p on d1: curl dialled the published port (no NAT on c1).
    c1.Flow(Key(Direction::kActive, 1, 10, "10.0.0.1", 40001, "10.0.0.3", 9090), 7, 700);
    // The balancer on b1.
    c1.Flow(Key(Direction::kActive, 1, 11, "10.0.0.1", 40002, "10.0.0.9", 8000), 10, 1000);
    // Nobody's: an address outside the mesh.
    c1.Flow(Key(Direction::kActive, 1, 11, "10.0.0.1", 40003, "203.0.113.9", 443), 3, 300);

    Node& s1 = *nodes_["s1"];
    s1.Listen(1, "0.0.0.0", 8080, 20, "fmsrv");
    s1.Listen(1, "0.0.0.0", 9999, 21, "idle");  // nobody called it
    s1.Flow(Key(Direction::kPassive, 1, 20, "10.0.0.2", 8080, "10.0.0.1", 40000), 20, 2000);
    // A client outside the mesh.
    s1.Flow(Key(Direction::kPassive, 1, 20, "10.0.0.2", 8080, "198.51.100.7", 5000), 2, 200);

    Node& d1 = *nodes_["d1"];
    d1.Listen(2, "0.0.0.0", 80, 30, "nginx");  // in the container's namespace
    d1.Flow(Key(Direction::kPassive, 2, 30, "172.18.0.2", 80, "10.0.0.1", 40001, "10.0.0.3:9090"),
            7, 700);
    d1.aliases.push_back(NatAlias{1, E("10.0.0.3:9090"), E("172.18.0.2:80"), false, {}, kT0});

    Node& b1 = *nodes_["b1"];
    b1.Flow(Key(Direction::kForwarded, 1, 0, "10.0.0.9", 8000, "10.0.0.1", 40002, "10.0.0.4:8000"),
            6, 600);
    b1.Flow(Key(Direction::kForwarded, 1, 0, "10.0.0.9", 8000, "10.0.0.1", 40002, "10.0.0.5:8000"),
            4, 400);
    b1.aliases.push_back(NatAlias{1, E("10.0.0.9:8000"), E("10.0.0.4:8000"), true, {}, kT0});
    b1.aliases.push_back(NatAlias{1, E("10.0.0.9:8000"), E("10.0.0.5:8000"), true, {}, kT0});

    // The backends see the balancer's (masquerading) address as the client.
    Node& be1 = *nodes_["be1"];
    be1.Listen(1, "0.0.0.0", 8000, 40, "python3");
    be1.Flow(Key(Direction::kPassive, 1, 40, "10.0.0.4", 8000, "10.0.0.9", 30000), 6, 600);
    Node& be2 = *nodes_["be2"];
    be2.Listen(1, "0.0.0.0", 8000, 50, "python3");
    be2.Flow(Key(Direction::kPassive, 1, 50, "10.0.0.5", 8000, "10.0.0.9", 30001), 4, 400);
  }

  void CommitAll() {
    for (auto& [name, n] : nodes_) n->Commit();
  }

  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

}  // namespace flowmesh::maptest
