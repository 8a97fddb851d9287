// The look walk over a fake mesh of named nodes: a chain client -> nginx ->
// app -> redis, addresses no agent owns, a node that does not answer, a
// cycle, depth limits, directions, and one batch of questions per level.
#include "node/look/look.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>

#include "cli/format/look_format.h"

namespace flowmesh {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }
IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

ProcessDetails Proc(uint32_t pid, uint32_t pgid, const char* comm) {
  ProcessDetails p;
  p.pid = pid;
  p.start_ticks = pid * 10;
  p.pgid = pgid;
  p.comm = comm;
  return p;
}

FlowStats Conns(uint64_t n) {
  FlowStats s;
  s.connections = n;
  s.bytes_tx = n * 100;
  return s;
}

class FakeNode : public NodeQuerier {
 public:
  Result<EndpointDescription> Describe(const Endpoint& ep, const TimeWindow&, GroupBy g) override {
    calls++;
    asked_group_by = g;
    if (down) return Unavailable("timed out");
    auto it = describe.find(ep);
    if (it != describe.end()) return it->second;
    return EndpointDescription{};
  }
  Result<std::vector<ClientProcess>> Clients(const Endpoint& target, const IpAddr& from,
                                             const TimeWindow&, GroupBy g) override {
    calls++;
    asked_group_by = g;
    if (down) return Unavailable("timed out");
    auto it = clients.find({target, from});
    if (it != clients.end()) return it->second;
    return std::vector<ClientProcess>{};
  }
  Result<std::vector<ActiveProcess>> Active(const IpAddr& host, const TimeWindow&,
                                            GroupBy g) override {
    calls++;
    asked_group_by = g;
    if (down) return Unavailable("timed out");
    auto it = active.find(host);
    if (it != active.end()) return it->second;
    return std::vector<ActiveProcess>{};
  }
  // What it serves: `ep` owned by `p`, with these clients and dependencies.
  void Serve(const char* ep, ProcessDetails p, std::vector<ClientEdge> in,
             std::vector<DependencyEdge> out) {
    EndpointDescription d;
    d.found = true;
    d.endpoint = Ep(ep);
    d.process = std::move(p);
    d.clients = std::move(in);
    d.dependencies = std::move(out);
    describe[Ep(ep)] = d;
  }

  std::map<Endpoint, EndpointDescription> describe;
  std::map<std::pair<Endpoint, IpAddr>, std::vector<ClientProcess>> clients;
  std::map<IpAddr, std::vector<ActiveProcess>> active;
  bool down = false;
  int calls = 0;
  std::optional<GroupBy> asked_group_by;
};

class FakeMesh : public Directory {
 public:
  FakeNode& Node(const std::string& name, std::vector<const char*> addrs = {}) {
    auto& n = nodes_[name];
    if (!n) n = std::make_unique<FakeNode>();
    for (const char* a : addrs) addr_owner_[Ip(a)] = name;
    return *n;
  }
  std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& ep) override {
    for (auto& [name, n] : nodes_)
      if (n->describe.count(ep) || n->down) {
        if (addr_owner_.count(ep.addr) && addr_owner_[ep.addr] == name)
          return NodeRef{name, n.get()};
      }
    return std::nullopt;
  }
  std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) override {
    auto it = addr_owner_.find(addr);
    if (it == addr_owner_.end()) return std::nullopt;
    return NodeRef{it->second, nodes_[it->second].get()};
  }
  // Each level's questions, answered by each fake node; `batches` records
  // how many questions each level had.
  std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& qs, const TimeWindow& w) override {
    batches.push_back(qs.size());
    std::vector<LookAnswer> out;
    for (const LookQuestion& q : qs) out.push_back(AskOne(q, w));
    return out;
  }

  std::string Unsynced() const override { return unsynced; }

  std::vector<size_t> batches;
  std::string unsynced;  // members whose tables are still on their way

 private:
  std::map<std::string, std::unique_ptr<FakeNode>> nodes_;
  std::map<IpAddr, std::string> addr_owner_;
};

// client-1 (curl) -> web-1 (nginx :80) -> app-1 (python3 :8000) -> cache-1
// (redis :6379); nginx also has a client no agent knows (10.213.0.8), a
// dependency no agent knows (10.213.0.9:5432) and one on a node that does
// not answer (down-1).
class LookTest : public ::testing::Test {
 protected:
  LookTest() {
    mesh_.Node("client-1", {"10.213.0.1"});
    ClientProcess curl;
    curl.process = Proc(5982, 5982, "curl");
    curl.stats = Conns(3);
    mesh_.Node("client-1").clients[{Ep("10.213.0.2:80"), Ip("10.213.0.1")}] = {curl};

    mesh_.Node("web-1", {"10.213.0.2"})
        .Serve("10.213.0.2:80", Proc(4656, 4656, "nginx"),
               {{Ip("10.213.0.1"), Conns(3), {}}, {Ip("10.213.0.8"), Conns(1), {}}},
               {{Ep("10.213.0.3:8000"), Conns(12)},
                {Ep("10.213.0.9:5432"), Conns(2)},
                {Ep("10.213.0.5:80"), Conns(2)}});
    mesh_.Node("app-1", {"10.213.0.3"})
        .Serve("10.213.0.3:8000", Proc(6111, 6111, "python3"), {{Ip("10.213.0.2"), Conns(12), {}}},
               {{Ep("10.213.0.4:6379"), Conns(5)}});
    ClientProcess nginx;
    nginx.process = Proc(4657, 4656, "nginx");  // a worker: same group as the master
    nginx.stats = Conns(12);
    nginx.endpoints = {Ep("0.0.0.0:80")};
    nginx.clients = {{Ip("10.213.0.1"), Conns(3), Ep("10.213.0.2:80")}};
    mesh_.Node("web-1").clients[{Ep("10.213.0.3:8000"), Ip("10.213.0.2")}] = {nginx};
    mesh_.Node("cache-1", {"10.213.0.4"})
        .Serve("10.213.0.4:6379", Proc(2127, 2127, "redis-server"), {}, {});
    mesh_.Node("down-1", {"10.213.0.5"}).down = true;
  }

  LookResult Run(const char* target, LookDirection dir = LookDirection::kBoth, int depth = 3) {
    LookQuery q;
    q.target = *Endpoint::Parse(target, /*allow_no_port=*/true);
    q.direction = dir;
    q.depth = depth;
    return Look(q, mesh_);
  }

  FakeMesh mesh_;
};

TEST_F(LookTest, WalksClientsUpAndDependenciesDown) {
  LookResult r = Run("10.213.0.2:80");
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.2:80 ('nginx', pgid=4656) on web-1\n"
            "└<-- 10.213.0.1 ('curl', pgid=5982) on client-1  3 conns 300 B\n"
            "└<-- 10.213.0.8 [no-agent]  1 conn 100 B\n"
            "└--> 10.213.0.3:8000 ('python3', pgid=6111) on app-1  12 conns 1.2 KB\n"
            "     └--> 10.213.0.4:6379 ('redis-server', pgid=2127) on cache-1  5 conns 500 B\n"
            "└--> 10.213.0.5:80 on down-1 [unreachable]  2 conns 200 B  (timed out)\n"
            "└--> 10.213.0.9:5432 [no-agent]  2 conns 200 B\n");
  EXPECT_EQ(r.root.status, LookStatus::kOk);
  EXPECT_FALSE(r.root.stats.has_value());
  const LookNode& curl = r.root.clients.at(0);
  EXPECT_EQ(curl.host, "client-1");
  EXPECT_EQ(curl.port, 0);
  EXPECT_EQ(curl.stats->connections, 3u);
}

TEST_F(LookTest, DepthLimitMarksNodesWithMoreBeyond) {
  LookResult r = Run("10.213.0.2:80", LookDirection::kOut, 1);
  ASSERT_THAT(r.root.dependencies, SizeIs(3));
  const LookNode& app = r.root.dependencies[0];
  EXPECT_EQ(app.process->comm, "python3");
  EXPECT_EQ(app.status, LookStatus::kDepthLimit);
  EXPECT_THAT(app.dependencies, IsEmpty());
  EXPECT_EQ(mesh_.Node("cache-1").calls, 0);  // never asked beyond the depth

  r = Run("10.213.0.4:6379", LookDirection::kBoth, 0);
  EXPECT_EQ(r.root.status, LookStatus::kOk);  // nothing beyond: not limited

  r = Run("10.213.0.2:80", LookDirection::kOut, 2);
  EXPECT_EQ(r.root.dependencies[0].status, LookStatus::kOk);
  EXPECT_EQ(r.root.dependencies[0].dependencies.at(0).status, LookStatus::kOk);  // redis: a leaf
}

TEST_F(LookTest, DirectionSelectsTheSide) {
  LookResult in = Run("10.213.0.2:80", LookDirection::kIn);
  EXPECT_THAT(in.root.clients, SizeIs(2));
  EXPECT_THAT(in.root.dependencies, IsEmpty());
  LookResult out = Run("10.213.0.2:80", LookDirection::kOut);
  EXPECT_THAT(out.root.clients, IsEmpty());
  EXPECT_THAT(out.root.dependencies, SizeIs(3));
}

TEST_F(LookTest, ClientsContinueUpwardThroughTheClientsEndpoints) {
  LookResult r = Run("10.213.0.3:8000", LookDirection::kIn);
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.3:8000 ('python3', pgid=6111) on app-1\n"
            "└<-- 10.213.0.2 ('nginx', pgid=4656) on web-1  12 conns 1.2 KB\n"
            "     └<-- 10.213.0.1 ('curl', pgid=5982) on client-1  3 conns 300 B\n");

  // Without the endpoint on the edge, every endpoint of the process is asked
  // about; the wildcard one at the address nginx was seen with.
  mesh_.Node("web-1").clients.begin()->second[0].clients[0].endpoint = {};
  EXPECT_EQ(FormatLookTree(Run("10.213.0.3:8000", LookDirection::kIn)), FormatLookTree(r));
}

TEST_F(LookTest, UnreachableAndUnknownRoots) {
  EXPECT_EQ(Run("10.213.0.99:80").root.status, LookStatus::kNoAgent);
  mesh_.Node("web-1").down = true;
  LookResult r = Run("10.213.0.2:80");
  EXPECT_EQ(r.root.status, LookStatus::kUnreachable);
  EXPECT_EQ(r.root.host, "web-1");
  // The node has the address but nothing listens there: a root without a process.
  r = Run("10.213.0.3:9999");
  EXPECT_EQ(r.root.status, LookStatus::kOk);
  EXPECT_EQ(r.root.host, "app-1");
  EXPECT_FALSE(r.root.process.has_value());
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.3:9999 on app-1  (nothing listens here, and no flows to it in the window)\n");
}

TEST_F(LookTest, ACycleEndsInACycleLeaf) {
  mesh_.Node("a-1", {"10.213.1.1"})
      .Serve("10.213.1.1:80", Proc(10, 10, "a"), {}, {{Ep("10.213.1.2:80"), Conns(1)}});
  mesh_.Node("b-1", {"10.213.1.2"})
      .Serve("10.213.1.2:80", Proc(20, 20, "b"), {}, {{Ep("10.213.1.1:81"), Conns(1)}});
  // The same process group as a's root, on another port.
  mesh_.Node("a-1").Serve("10.213.1.1:81", Proc(11, 10, "a"), {},
                          {{Ep("10.213.1.2:80"), Conns(1)}});
  LookResult r = Run("10.213.1.1:80", LookDirection::kOut, 10);
  EXPECT_EQ(FormatLookTree(r),
            "10.213.1.1:80 ('a', pgid=10) on a-1\n"
            "└--> 10.213.1.2:80 ('b', pgid=20) on b-1  1 conn 100 B\n"
            "     └--> 10.213.1.1:81 ('a', pgid=10) on a-1 [cycle]  1 conn 100 B\n");
}

TEST_F(LookTest, AsksOneBatchPerLevelAndEachQuestionOnce) {
  // nginx also talks to redis directly: redis is asked about once.
  auto& web = mesh_.Node("web-1").describe[Ep("10.213.0.2:80")];
  web.dependencies.push_back({Ep("10.213.0.4:6379"), Conns(1)});
  LookQuery q;
  q.target = Ep("10.213.0.2:80");
  LookResult r = Look(q, mesh_);
  // root; curl's node, app, down-1 and redis; nothing new on level 2.
  EXPECT_THAT(mesh_.batches, ElementsAre(1u, 4u));
  EXPECT_EQ(mesh_.Node("cache-1").calls, 1);
  // redis shows under nginx and again under app (a shared dependency is not
  // a cycle), from the one answer.
  const LookNode& app = r.root.dependencies.at(0);
  ASSERT_EQ(app.process->comm, "python3");
  EXPECT_EQ(app.dependencies.at(0).status, LookStatus::kOk);
  EXPECT_EQ(app.dependencies.at(0).process->comm, "redis-server");
}

TEST_F(LookTest, LoopbackStaysOnTheAskingNode) {
  auto& web = mesh_.Node("web-1").describe[Ep("10.213.0.2:80")];
  web.dependencies = {{Ep("127.0.0.1:6379"), Conns(4)}};
  mesh_.Node("web-1").Serve("127.0.0.1:6379", Proc(300, 300, "redis-server"), {}, {});
  LookResult r = Run("10.213.0.2:80", LookDirection::kOut);
  ASSERT_THAT(r.root.dependencies, SizeIs(1));
  EXPECT_EQ(r.root.dependencies[0].host, "web-1");
  EXPECT_EQ(r.root.dependencies[0].process->pid, 300u);
}

TEST_F(LookTest, AHostWithoutAPortStartsFromItsProcessesWithActiveFlows) {
  ActiveProcess curl;
  curl.process = Proc(5982, 5982, "curl");
  curl.stats = Conns(3);
  curl.dependencies = {{Ep("10.213.0.2:80"), Conns(3)}};
  ActiveProcess dig;
  dig.process = Proc(7000, 7000, "dig");
  dig.stats = Conns(1);
  dig.dependencies = {{Ep("10.213.0.9:53"), Conns(1)}};
  mesh_.Node("client-1").active[Ip("10.213.0.1")] = {curl, dig};
  LookResult r = Run("10.213.0.1", LookDirection::kBoth, 1);
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.1 on client-1\n"
            "└--> 10.213.0.1 ('curl', pgid=5982) on client-1  3 conns 300 B\n"
            "     └--> 10.213.0.2:80 ('nginx', pgid=4656) on web-1 [depth-limit]  3 conns 300 B\n"
            "└--> 10.213.0.1 ('dig', pgid=7000) on client-1  1 conn 100 B\n"
            "     └--> 10.213.0.9:53 [no-agent]  1 conn 100 B\n");
  // --direction in has nothing to show from the active side.
  r = Run("10.213.0.1", LookDirection::kIn);
  ASSERT_THAT(r.root.dependencies, SizeIs(2));
  EXPECT_THAT(r.root.dependencies[0].dependencies, IsEmpty());
  EXPECT_EQ(Run("10.213.0.77").root.status, LookStatus::kNoAgent);
  mesh_.Node("client-1").down = true;
  EXPECT_EQ(Run("10.213.0.1").root.status, LookStatus::kUnreachable);
}

// Issue 13: a client is never dropped. Its host has meshd but no process
// with a matching flow: a host leaf with the server side's counts, marked
// unconfirmed and saying why, in text and JSON.
TEST_F(LookTest, AClientHostWithoutAMatchingProcessIsAnUnconfirmedLeaf) {
  mesh_.Node("client-1").clients.clear();
  LookResult r = Run("10.213.0.2:80", LookDirection::kIn);
  ASSERT_THAT(r.root.clients, SizeIs(2));
  const LookNode& leaf = r.root.clients[0];
  EXPECT_EQ(leaf.status, LookStatus::kUnconfirmed);
  EXPECT_EQ(leaf.host, "client-1");
  EXPECT_FALSE(leaf.process.has_value());
  EXPECT_EQ(leaf.stats->connections, 3u);
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.2:80 ('nginx', pgid=4656) on web-1\n"
            "└<-- 10.213.0.1 on client-1 [unconfirmed]  3 conns 300 B  (meshd on client-1 has no "
            "process with a flow to 10.213.0.2:80 in the window)\n"
            "└<-- 10.213.0.8 [no-agent]  1 conn 100 B\n");
  EXPECT_NE(FormatLookJson(r).find(R"("status": "unconfirmed", "status_detail": "meshd on )"),
            std::string::npos);
}

// A dependency whose owner (meshd there, answering) has neither a listener
// nor a flow at it: marked unconfirmed, so its missing subtree shows.
TEST_F(LookTest, ADependencyItsOwnerCannotConfirmIsMarked) {
  auto& web = mesh_.Node("web-1").describe[Ep("10.213.0.2:80")];
  web.dependencies = {{Ep("10.213.0.4:9999"), Conns(7)}};
  LookResult r = Run("10.213.0.2:80", LookDirection::kOut);
  EXPECT_EQ(FormatLookTree(r),
            "10.213.0.2:80 ('nginx', pgid=4656) on web-1\n"
            "└--> 10.213.0.4:9999 on cache-1 [unconfirmed]  7 conns 700 B  (meshd on cache-1 has "
            "no listener or flow at 10.213.0.4:9999 in the window)\n");
}

// A node that did not answer says why, in the tree's status_detail.
TEST_F(LookTest, AnUnreachableNodeCarriesItsReason) {
  LookResult r = Run("10.213.0.2:80", LookDirection::kOut);
  const LookNode& down = r.root.dependencies.at(1);
  ASSERT_EQ(down.host, "down-1");
  EXPECT_EQ(down.status, LookStatus::kUnreachable);
  EXPECT_EQ(down.status_detail, "timed out");
  EXPECT_NE(FormatLookJson(r).find(R"("status": "unreachable", "status_detail": "timed out")"),
            std::string::npos);
  // A client host that does not answer is an unreachable leaf, not a gap.
  mesh_.Node("client-1").down = true;
  r = Run("10.213.0.2:80", LookDirection::kIn);
  EXPECT_EQ(r.root.clients.at(0).status, LookStatus::kUnreachable);
  EXPECT_EQ(r.root.clients.at(0).status_detail, "timed out");
}

// An address no table claims while a live member's table is still on its
// way may be that member's: `unsynced`, never `no-agent`.
TEST_F(LookTest, AnUnclaimedAddressIsUnsyncedWhileAMembersTableIsMissing) {
  mesh_.unsynced = "member new-1";
  LookResult r = Run("10.213.0.2:80");
  EXPECT_EQ(r.root.clients.at(1).status, LookStatus::kUnsynced);
  EXPECT_EQ(r.root.dependencies.at(2).status, LookStatus::kUnsynced);
  EXPECT_EQ(r.root.dependencies.at(2).status_detail,
            "no endpoint table yet from member new-1, which may own it");
  EXPECT_EQ(Run("10.213.0.99:80").root.status, LookStatus::kUnsynced);
  mesh_.unsynced.clear();
  EXPECT_EQ(Run("10.213.0.99:80").root.status, LookStatus::kNoAgent);
}

// web-1's nginx.service restarted in the window: its old and new processes
// (other pids, other pgids) both called app-1.
TEST_F(LookTest, AUnitsProcessesAcrossRestartsAreOneNodeByWorkload) {
  Workload unit;
  unit.kind = WorkloadKind::kUnit;
  unit.id = unit.unit = "nginx.service";
  ClientProcess before, after;
  before.process = Proc(4656, 4656, "nginx");
  after.process = Proc(7001, 7001, "nginx");
  before.process.workload = after.process.workload = unit;
  before.stats = Conns(8);
  after.stats = Conns(4);
  mesh_.Node("web-1").clients[{Ep("10.213.0.3:8000"), Ip("10.213.0.2")}] = {before, after};
  auto run = [&](GroupBy g) {
    LookQuery q;
    q.target = Ep("10.213.0.3:8000");
    q.direction = LookDirection::kIn;
    q.group_by = g;
    return Look(q, mesh_);
  };
  LookResult one = run(GroupBy::kWorkload);
  ASSERT_THAT(one.root.clients, SizeIs(1));
  EXPECT_EQ(one.root.clients[0].stats->connections, 12u);
  EXPECT_EQ(mesh_.Node("web-1").asked_group_by, GroupBy::kWorkload);
  EXPECT_EQ(FormatLookTree(one),
            "10.213.0.3:8000 ('python3', pgid=6111) on app-1\n"
            "└<-- 10.213.0.2 nginx.service ('nginx', pgid=4656) on web-1  12 conns 1.2 KB\n");
  LookResult two = run(GroupBy::kPgid);
  EXPECT_THAT(two.root.clients, SizeIs(2));
  EXPECT_EQ(mesh_.Node("web-1").asked_group_by, GroupBy::kPgid);
  EXPECT_THAT(run(GroupBy::kPid).root.clients, SizeIs(2));
}

TEST(LookNames, RoundTrip) {
  for (LookDirection d : {LookDirection::kBoth, LookDirection::kIn, LookDirection::kOut})
    EXPECT_EQ(*ParseLookDirection(LookDirectionName(d)), d);
  for (LookStatus s :
       {LookStatus::kOk, LookStatus::kNoAgent, LookStatus::kUnreachable, LookStatus::kCycle,
        LookStatus::kDepthLimit, LookStatus::kUnconfirmed, LookStatus::kUnsynced})
    EXPECT_EQ(*ParseLookStatus(LookStatusName(s)), s);
  EXPECT_EQ(LookStatusName(LookStatus::kNoAgent), "no-agent");
  EXPECT_FALSE(ParseLookDirection("up").ok());
  for (GroupBy g : {GroupBy::kWorkload, GroupBy::kPgid, GroupBy::kPid})
    EXPECT_EQ(*ParseGroupBy(GroupByName(g)), g);
  Result<GroupBy> bad = ParseGroupBy("unit");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "unknown grouping 'unit'; use workload, pgid or pid");
}

}  // namespace
}  // namespace flowmesh
