// look through NAT on several nodes, each answering from a real store:
// a kube-proxy VIP translated on the client's node (via on the edge), a
// published port on the server's node (resolved to the container's
// listener), and a balancer on a third node (its own tree node, backends
// below, real clients above, masquerade undone).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/look/local_directory.h"
#include "tests/unit/map_fixture.h"

namespace flowmesh {
namespace {

using ::flowmesh::testing::kSec;
using ::flowmesh::testing::kT0;

using maptest::A;
using maptest::E;
using maptest::Key;
using maptest::Node;

// The mesh as the gossiped tables would show it: listeners and addresses
// by node, and the aliases each node announces.
class NatMesh : public Directory {
 public:
  explicit NatMesh(std::vector<Node*> nodes) : nodes_(std::move(nodes)) {}
  std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& e) override {
    for (Node* n : nodes_)
      for (const EndpointRecord& l : n->live)
        if (l.port == e.port && (l.addr == e.addr || (ListenerServes(l.addr, e.addr) && Has(*n, e.addr))))
          return Ref(*n);
    for (Node* n : nodes_)
      for (const NatAlias& a : n->aliases)
        if (a.front == e) return Ref(*n);
    return std::nullopt;
  }
  std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) override {
    for (Node* n : nodes_)
      if (Has(*n, addr)) return Ref(*n);
    return std::nullopt;
  }
  std::vector<Endpoint> FrontsOf(const Endpoint& target) override {
    std::vector<Endpoint> out;
    for (Node* n : nodes_)
      for (const NatAlias& a : n->aliases)
        if (a.balancer && a.target == target) out.push_back(a.front);
    return out;
  }
  std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& qs, const TimeWindow& w) override {
    std::vector<LookAnswer> out;
    for (const LookQuestion& q : qs) out.push_back(AskOne(q, w));
    return out;
  }

 private:
  static bool Has(const Node& n, const IpAddr& a) {
    return std::find(n.addrs.begin(), n.addrs.end(), a) != n.addrs.end();
  }
  static NodeRef Ref(Node& n) { return NodeRef{n.name, n.querier.get()}; }
  std::vector<Node*> nodes_;
};

class LookNatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nodes_ = maptest::NatNodes();
    ASSERT_EQ(nodes_.size(), 6u);
    Node& c1 = *nodes_["c1"];
    c1.Process(10, "curl");
    c1.Process(11, "wrk");
    // kube-proxy on c1: curl dialled the VIP, conntrack said where it went.
    c1.Flow(Key(Direction::kActive, 1, 10, "10.0.0.1", 0, "10.0.250.1", 80, "10.0.0.2:8080"), 20);
    // docker -p on d1: curl dialled the published port (no NAT on c1).
    c1.Flow(Key(Direction::kActive, 1, 10, "10.0.0.1", 0, "10.0.0.3", 9090), 7);
    // The balancer on b1.
    c1.Flow(Key(Direction::kActive, 1, 11, "10.0.0.1", 0, "10.0.0.9", 8000), 10);

    Node& s1 = *nodes_["s1"];
    s1.Listen(1, "0.0.0.0", 8080, 20, "fmsrv");
    s1.Flow(Key(Direction::kPassive, 1, 20, "10.0.0.2", 8080, "10.0.0.1", 0), 20);

    Node& d1 = *nodes_["d1"];
    d1.Listen(2, "0.0.0.0", 80, 30, "nginx");  // in the container's namespace
    d1.Flow(Key(Direction::kPassive, 2, 30, "172.18.0.2", 80, "10.0.0.1", 0, "10.0.0.3:9090"), 7);
    d1.aliases.push_back(NatAlias{1, E("10.0.0.3:9090"), E("172.18.0.2:80"), false, {}, kT0});

    Node& b1 = *nodes_["b1"];
    b1.Flow(Key(Direction::kForwarded, 1, 0, "10.0.0.9", 8000, "10.0.0.1", 0, "10.0.0.4:8000"), 6);
    b1.Flow(Key(Direction::kForwarded, 1, 0, "10.0.0.9", 8000, "10.0.0.1", 0, "10.0.0.5:8000"), 4);
    b1.aliases.push_back(NatAlias{1, E("10.0.0.9:8000"), E("10.0.0.4:8000"), true, {}, kT0});
    b1.aliases.push_back(NatAlias{1, E("10.0.0.9:8000"), E("10.0.0.5:8000"), true, {}, kT0});

    // The backends see the balancer's (masquerading) address as the client.
    Node& be1 = *nodes_["be1"];
    be1.Listen(1, "0.0.0.0", 8000, 40, "python3");
    be1.Flow(Key(Direction::kPassive, 1, 40, "10.0.0.4", 8000, "10.0.0.9", 0), 6);
    Node& be2 = *nodes_["be2"];
    be2.Listen(1, "0.0.0.0", 8000, 50, "python3");
    be2.Flow(Key(Direction::kPassive, 1, 50, "10.0.0.5", 8000, "10.0.0.9", 0), 4);
  }

  LookResult Run(const char* target, LookDirection dir = LookDirection::kBoth) {
    for (auto& [name, n] : nodes_) {
      if (!n->batch.empty()) {
        ASSERT_OK_OR_DIE(n->store->Write(n->batch));
        n->batch = Batch{};
      }
    }
    std::vector<Node*> all;
    for (auto& [name, n] : nodes_) all.push_back(n.get());
    NatMesh mesh(all);
    LookQuery q;
    q.target = *Endpoint::Parse(target, /*allow_no_port=*/true);
    q.direction = dir;
    q.depth = 4;
    return Look(q, mesh);
  }
  static void ASSERT_OK_OR_DIE(const Status& s) { ASSERT_TRUE(s.ok()) << s.message(); }

  static const LookNode* Find(const std::vector<LookNode>& list, const std::string& addr_port) {
    for (const LookNode& n : list) {
      Endpoint e{n.addr, n.port};
      if ((n.port ? e.ToString() : n.addr.ToString()) == addr_port) return &n;
    }
    return nullptr;
  }

  std::map<std::string, std::unique_ptr<Node>> nodes_;
};

TEST_F(LookNatTest, AClientsTranslatedDependencyGoesToTheRealServerViaTheVip) {
  LookResult r = Run("10.0.0.1");
  ASSERT_EQ(r.root.dependencies.size(), 2u);  // curl and wrk
  const LookNode* curl = nullptr;
  for (const LookNode& p : r.root.dependencies)
    if (p.process && p.process->comm == "curl") curl = &p;
  ASSERT_NE(curl, nullptr);
  const LookNode* srv = Find(curl->dependencies, "10.0.0.2:8080");
  ASSERT_NE(srv, nullptr);
  EXPECT_EQ(srv->host, "s1");
  ASSERT_TRUE(srv->process);
  EXPECT_EQ(srv->process->comm, "fmsrv");
  EXPECT_EQ(srv->via, E("10.0.250.1:80"));
  EXPECT_EQ(srv->status, LookStatus::kOk);
  // No dependency is left on the VIP itself.
  EXPECT_EQ(Find(curl->dependencies, "10.0.250.1:80"), nullptr);
}

TEST_F(LookNatTest, TheServerSeesItsClientThroughTheClientsTranslation) {
  LookResult r = Run("10.0.0.2:8080", LookDirection::kIn);
  ASSERT_EQ(r.root.clients.size(), 1u);
  const LookNode& c = r.root.clients[0];
  EXPECT_EQ(c.host, "c1");
  ASSERT_TRUE(c.process) << LookStatusName(c.status) << " " << c.status_detail;
  EXPECT_EQ(c.process->comm, "curl");
  EXPECT_EQ(c.via, E("10.0.250.1:80"));
  EXPECT_EQ(c.stats->active(), 20u);
}

TEST_F(LookNatTest, APublishedPortResolvesToTheContainersListener) {
  LookResult r = Run("10.0.0.3:9090");
  EXPECT_EQ(r.root.host, "d1");
  EXPECT_EQ(Endpoint({r.root.addr, r.root.port}), E("172.18.0.2:80"));
  EXPECT_EQ(r.root.via, E("10.0.0.3:9090"));
  ASSERT_TRUE(r.root.process);
  EXPECT_EQ(r.root.process->comm, "nginx");
  EXPECT_EQ(r.root.aliases, std::vector<Endpoint>{E("10.0.0.3:9090")});
  // The client dialled :9090, and its own flow says so: it is matched.
  ASSERT_EQ(r.root.clients.size(), 1u);
  ASSERT_TRUE(r.root.clients[0].process) << r.root.clients[0].status_detail;
  EXPECT_EQ(r.root.clients[0].process->comm, "curl");
  EXPECT_EQ(r.root.clients[0].stats->active(), 7u);
  EXPECT_EQ(r.root.clients[0].via, E("10.0.0.3:9090"));  // what it dialled

  // From the client, the dependency on the published port reaches the container.
  LookResult down = Run("10.0.0.1");
  const LookNode* nginx = nullptr;
  for (const LookNode& p : down.root.dependencies)
    for (const LookNode& d : p.dependencies)
      if (d.process && d.process->comm == "nginx") nginx = &d;
  ASSERT_NE(nginx, nullptr);
  EXPECT_EQ(Endpoint({nginx->addr, nginx->port}), E("172.18.0.2:80"));
  EXPECT_EQ(nginx->via, E("10.0.0.3:9090"));
  EXPECT_EQ(nginx->host, "d1");
}

TEST_F(LookNatTest, ABalancerIsItsOwnNodeWithItsBackendsBelowAndClientsAbove) {
  LookResult r = Run("10.0.0.9:8000");
  EXPECT_EQ(r.root.host, "b1");
  EXPECT_TRUE(r.root.balancer);
  EXPECT_FALSE(r.root.process);
  ASSERT_EQ(r.root.dependencies.size(), 2u);
  const LookNode* be1 = Find(r.root.dependencies, "10.0.0.4:8000");
  const LookNode* be2 = Find(r.root.dependencies, "10.0.0.5:8000");
  ASSERT_NE(be1, nullptr);
  ASSERT_NE(be2, nullptr);
  EXPECT_EQ(be1->host, "be1");
  EXPECT_EQ(be1->stats->active(), 6u);
  EXPECT_EQ(be2->stats->active(), 4u);
  ASSERT_TRUE(be1->process);
  ASSERT_EQ(r.root.clients.size(), 1u);
  ASSERT_TRUE(r.root.clients[0].process) << r.root.clients[0].status_detail;
  EXPECT_EQ(r.root.clients[0].process->comm, "wrk");
}

TEST_F(LookNatTest, ABackendsRealClientsAreFoundThroughTheBalancersMasquerade) {
  LookResult r = Run("10.0.0.4:8000", LookDirection::kIn);
  ASSERT_EQ(r.root.clients.size(), 1u);
  const LookNode& lb = r.root.clients[0];
  EXPECT_EQ(lb.host, "b1");
  EXPECT_TRUE(lb.balancer);
  EXPECT_EQ(Endpoint({lb.addr, lb.port}), E("10.0.0.9:8000"));
  EXPECT_EQ(lb.stats->active(), 6u);
  ASSERT_EQ(lb.clients.size(), 1u);
  ASSERT_TRUE(lb.clients[0].process) << lb.clients[0].status_detail;
  EXPECT_EQ(lb.clients[0].process->comm, "wrk");
  EXPECT_EQ(lb.clients[0].host, "c1");
}

TEST_F(LookNatTest, WithoutMasqueradeTheBackendsClientIsMatchedByTheFrontItDialled) {
  // be2 sees the real client: the client's flow is to the balancer's front.
  nodes_["be2"]->Flow(Key(Direction::kPassive, 1, 50, "10.0.0.5", 8000, "10.0.0.1", 0), 3);
  LookResult r = Run("10.0.0.5:8000", LookDirection::kIn);
  const LookNode* direct = Find(r.root.clients, "10.0.0.1");
  ASSERT_NE(direct, nullptr);
  ASSERT_TRUE(direct->process) << direct->status_detail;
  EXPECT_EQ(direct->process->comm, "wrk");
  EXPECT_EQ(direct->via, E("10.0.0.9:8000"));
}

TEST_F(LookNatTest, AClientTheClientSideCannotConfirmIsUnconfirmedWithTheServersCounts) {
  // s1 saw a client on c1 that c1 has no flow for (no translation known there).
  nodes_["s1"]->Flow(Key(Direction::kPassive, 1, 20, "10.0.0.2", 8080, "10.0.0.5", 0), 2);
  LookResult r = Run("10.0.0.2:8080", LookDirection::kIn);
  const LookNode* u = Find(r.root.clients, "10.0.0.5");
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->status, LookStatus::kUnconfirmed);
  EXPECT_EQ(u->stats->active(), 2u);
}

}  // namespace
}  // namespace flowmesh
