// look's three renderings of one small tree: Shawk's text, DESIGN.md's JSON
// (exactly), Graphviz dot; and what hostile process names become.
#include "cli/format/look_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/workload_samples.h"

namespace flowmesh {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ProcessDetails Proc(uint32_t pid, uint32_t pgid, const char* comm, const char* exe) {
  ProcessDetails p;
  p.pid = pid;
  p.pgid = pgid;
  p.comm = comm;
  p.exe = exe;
  return p;
}

// 10.213.0.2:80 nginx on web-1, a curl client, an app dependency that was
// depth-limited and a no-agent database.
LookResult SmallTree() {
  LookResult r;
  r.query.target = *Endpoint::Parse("10.213.0.2:80");
  r.query.direction = LookDirection::kBoth;
  r.query.depth = 1;
  LookNode& root = r.root;
  root.host = "web-1";
  root.addr = r.query.target.addr;
  root.port = 80;
  root.process = Proc(123, 120, "nginx", "/usr/sbin/nginx");

  LookNode curl;
  curl.host = "client-1";
  curl.addr = *IpAddr::Parse("10.213.0.1");
  curl.process = Proc(5982, 5982, "curl", "/usr/bin/curl");
  FlowStats s;
  s.connections = 12;
  s.bytes_tx = 3000;
  s.bytes_rx = 500;
  s.segs_out = 30;
  s.segs_in = 25;
  s.retrans = 1;
  s.rtt_sum_us = 300;
  s.rtt_samples = 2;
  s.first_seen_ns = 1763768746123000000;
  s.last_seen_ns = 1763768800000000000;
  curl.stats = s;
  root.clients.push_back(curl);

  LookNode app;
  app.host = "app-1";
  app.addr = *IpAddr::Parse("10.213.0.3");
  app.port = 8000;
  app.process = Proc(6111, 6111, "python3", "/usr/bin/python3.11");
  app.status = LookStatus::kDepthLimit;
  app.stats = FlowStats{};
  app.stats->connections = 1;
  app.stats->bytes_rx = 2 * 1024 * 1024;
  root.dependencies.push_back(app);

  LookNode db;
  db.addr = *IpAddr::Parse("10.213.0.9");
  db.port = 5432;
  db.status = LookStatus::kNoAgent;
  db.stats = FlowStats{};
  db.stats->connections = 2;
  root.dependencies.push_back(db);
  return r;
}

TEST(LookFormat, TextTreeIsShawksWithStatusAndEdgeTotals) {
  EXPECT_EQ(FormatLookTree(SmallTree()),
            "10.213.0.2:80 ('nginx', pgid=120) on web-1\n"
            "└<-- 10.213.0.1 ('curl', pgid=5982) on client-1  12 conns 3.4 KB\n"
            "└--> 10.213.0.3:8000 ('python3', pgid=6111) on app-1 [depth-limit]  1 conn 2.0 MB\n"
            "└--> 10.213.0.9:5432 [no-agent]  2 conns 0 B\n");
}

// A pool opened before the window: every connection open in it counts, and
// the text says how many of them opened inside it.
TEST(LookFormat, ConnectionsOpenedBeforeTheWindowCountAndSayHowManyAreNew) {
  LookResult r = SmallTree();
  r.root.clients[0].stats->connections = 1;
  r.root.clients[0].stats->carried = 4;
  r.root.dependencies[1].stats->connections = 0;
  r.root.dependencies[1].stats->carried = 1;
  std::string text = FormatLookTree(r);
  EXPECT_THAT(text, HasSubstr("on client-1  5 conns (1 new) 3.4 KB\n"));
  EXPECT_THAT(text, HasSubstr("10.213.0.9:5432 [no-agent]  1 conn (0 new) 0 B\n"));
  EXPECT_THAT(FormatLookJson(r), HasSubstr(R"("stats": {"connections": 5, "opened": 1, )"));
  EXPECT_THAT(FormatLookDot(r), HasSubstr("5 conns (1 new)\\n3.4 KB"));
}

TEST(LookFormat, DeeperLevelsIndentFiveSpacesAndPidWithoutPgid) {
  LookResult r = SmallTree();
  LookNode worker;
  worker.host = "cache-1";
  worker.addr = *IpAddr::Parse("10.213.0.4");
  worker.port = 6379;
  worker.process = Proc(77, 0, "redis-server", "");
  worker.stats = FlowStats{};
  r.root.dependencies[0].dependencies.push_back(worker);
  r.root.dependencies[0].dependencies[0].dependencies.push_back(worker);
  std::string text = FormatLookTree(r);
  EXPECT_THAT(
      text,
      HasSubstr("\n     └--> 10.213.0.4:6379 ('redis-server', pid=77) on cache-1  0 conns 0 B\n"
                "          └--> 10.213.0.4:6379"));
}

// A unit, a docker container and a pod's container: named first in the
// text, an object in JSON, the first line of a dot vertex.
TEST(LookFormat, WorkloadsAreNamedFirst) {
  LookResult r = SmallTree();
  r.root.process->workload = testing::SampleUnit();
  r.root.dependencies[0].process->workload = testing::SampleContainer();
  r.root.clients[0].process->workload = testing::SamplePodContainer();

  std::string text = FormatLookTree(r);
  EXPECT_THAT(text, HasSubstr("10.213.0.2:80 nginx.service ('nginx', pgid=120) on web-1\n"));
  EXPECT_THAT(text, HasSubstr("└--> 10.213.0.3:8000 container web (docker 3f2a1c4d5e6f) "
                              "('python3', pgid=6111) on app-1 [depth-limit]"));
  EXPECT_THAT(text, HasSubstr("└<-- 10.213.0.1 pod shop/pay-7d9c/api (containerd aaaaaaaaaaaa) "
                              "('curl', pgid=5982) on client-1"));

  std::string json = FormatLookJson(r);
  EXPECT_THAT(json, HasSubstr(R"("exe": "/usr/sbin/nginx", "workload": {"kind":"unit",)"
                              R"("runtime":"","id":"nginx.service","name":"",)"
                              R"("unit":"nginx.service","user_unit":false,"pod":null,)"
                              R"("cgroup":"/system.slice/nginx.service"}})"));
  EXPECT_THAT(json, HasSubstr(R"("workload": {"kind":"container","runtime":"docker","id":"3f2a)"));
  EXPECT_THAT(json, HasSubstr(R"("name":"web","unit":"docker-3f2a)"));
  EXPECT_THAT(json, HasSubstr(R"("pod":{"uid":"5c6f3e8a-1b2c-4d5e-8f90-0123456789ab",)"
                              R"("name":"pay-7d9c","namespace":"shop","qos":"burstable"})"));

  std::string dot = FormatLookDot(r);
  EXPECT_THAT(dot,
              HasSubstr(R"(label="nginx.service\nnginx (pgid=120)\n10.213.0.2:80\non web-1")"));
  EXPECT_THAT(dot, HasSubstr(R"("web-1/wu:nginx.service")"));
  r.query.group_by = GroupBy::kPgid;
  EXPECT_THAT(FormatLookDot(r), HasSubstr(R"("web-1/g120")"));
}

TEST(LookFormat, JsonIsDesignsSchema) {
  EXPECT_EQ(
      FormatLookJson(SmallTree()),
      R"({"query": {"target": "10.213.0.2:80", "direction": "both", "depth": 1, )"
      R"("group_by": "workload"}, )"
      R"("root": {"host": "web-1", "addr": "10.213.0.2", "port": 80, )"
      R"("process": {"comm": "nginx", "pid": 123, "pgid": 120, "exe": "/usr/sbin/nginx", "workload": null}, )"
      R"("balancer": false, "via": null, "aliases": [], "status": "ok", "status_detail": null, "clients": [)"
      R"({"host": "client-1", "addr": "10.213.0.1", "port": null, )"
      R"("process": {"comm": "curl", "pid": 5982, "pgid": 5982, "exe": "/usr/bin/curl", "workload": null}, )"
      R"("balancer": false, "via": null, "aliases": [], "status": "ok", "status_detail": null, )"
      R"("stats": {"connections": 12, "opened": 12, "bytes_tx": 3000, "bytes_rx": 500, "segs_out": 30, "segs_in": 25, )"
      R"("retrans": 1, "rtt_us": 150, "first_seen": "2025-11-21T23:45:46.123Z", )"
      R"("last_seen": "2025-11-21T23:46:40.000Z"}, "clients": [], "dependencies": []}], )"
      R"("dependencies": [)"
      R"({"host": "app-1", "addr": "10.213.0.3", "port": 8000, )"
      R"("process": {"comm": "python3", "pid": 6111, "pgid": 6111, "exe": "/usr/bin/python3.11", "workload": null}, )"
      R"("balancer": false, "via": null, "aliases": [], "status": "depth-limit", "status_detail": null, )"
      R"("stats": {"connections": 1, "opened": 1, "bytes_tx": 0, )"
      R"("bytes_rx": 2097152, "segs_out": 0, "segs_in": 0, "retrans": 0, "rtt_us": 0, "first_seen": null, "last_seen": null}, )"
      R"("clients": [], "dependencies": []}, )"
      R"({"host": null, "addr": "10.213.0.9", "port": 5432, "process": null, )"
      R"("balancer": false, "via": null, "aliases": [], "status": "no-agent", "status_detail": null, )"
      R"("stats": {"connections": 2, "opened": 2, "bytes_tx": 0, "bytes_rx": 0, "segs_out": 0, "segs_in": 0, )"
      R"("retrans": 0, "rtt_us": 0, "first_seen": null, "last_seen": null}, )"
      R"("clients": [], "dependencies": []}]}})"
      "\n");
}

TEST(LookFormat, HostileNamesStayOnOneLineAndParse) {
  LookResult r = SmallTree();
  r.root.process->comm = "evil\"\\\n\x1b[2J";
  r.root.process->exe = "/tmp/\xff\xfe bad";
  std::string text = FormatLookTree(r);
  EXPECT_THAT(text, HasSubstr("('evil\"\\??[2J', pgid=120)"));
  std::string json = FormatLookJson(r);
  // The common escaper's forms (node/common/json_string.h): the same JSON
  // strings as "\u000a" and a literal U+FFFD.
  EXPECT_THAT(json, HasSubstr(R"("comm": "evil\"\\\n\u001b[2J")"));
  EXPECT_THAT(json, HasSubstr(R"("exe": "/tmp/\ufffd\ufffd bad")"));
  std::string dot = FormatLookDot(r);
  EXPECT_THAT(dot, Not(HasSubstr("\x1b")));
  EXPECT_THAT(dot, HasSubstr(R"(evil\"\\??[2J)"));
}

TEST(LookFormat, DotHasOneVertexPerProcessAndArrowsAlongTheCalls) {
  LookResult r = SmallTree();
  LookNode again = r.root;  // a cycle leaf naming the root's process
  again.status = LookStatus::kCycle;
  again.clients.clear();
  again.dependencies.clear();
  again.stats = FlowStats{};
  r.root.dependencies[0].dependencies.push_back(again);
  std::string dot = FormatLookDot(r);
  EXPECT_THAT(dot, HasSubstr("digraph look {"));
  EXPECT_THAT(dot, HasSubstr(R"("client-1/g5982" -> "web-1/g120" [label="12 conns\n3.4 KB"];)"));
  EXPECT_THAT(dot, HasSubstr(R"("web-1/g120" -> "app-1/g6111" [label="1 conn\n2.0 MB"];)"));
  EXPECT_THAT(dot, HasSubstr(R"("app-1/g6111" -> "web-1/g120")"));
  EXPECT_THAT(dot, HasSubstr(R"("/10.213.0.9:5432" [label="10.213.0.9:5432\n[no-agent]"];)"));
  size_t first = dot.find("\n  \"web-1/g120\" [label=");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(dot.find("\n  \"web-1/g120\" [label=", first + 1), std::string::npos);
}

// Issue 14: a client on c1 dialled a Service VIP that its node translated
// to s1's fmsrv, which docker-1 also publishes as host:9090; a balancer
// front on lb-1 forwards to two backends.
LookResult NatTree() {
  LookResult r;
  r.query.target = *Endpoint::Parse("10.213.5.1", true);
  r.query.direction = LookDirection::kOut;
  r.query.depth = 2;
  r.root.host = "c1";
  r.root.addr = *IpAddr::Parse("10.213.5.1");
  r.root.process = Proc(700, 700, "fmcli", "/usr/bin/fmcli");
  LookNode srv;
  srv.host = "s1";
  srv.addr = *IpAddr::Parse("10.213.5.2");
  srv.port = 8080;
  srv.process = Proc(800, 800, "fmsrv", "/usr/bin/fmsrv");
  srv.via = *Endpoint::Parse("10.213.250.1:80");
  srv.aliases = {*Endpoint::Parse("10.213.0.8:9090")};
  srv.stats = FlowStats{};
  srv.stats->connections = 20;
  r.root.dependencies.push_back(srv);
  LookNode lb;
  lb.host = "lb-1";
  lb.addr = *IpAddr::Parse("10.213.0.9");
  lb.port = 8000;
  lb.balancer = true;
  lb.stats = FlowStats{};
  lb.stats->connections = 4;
  for (const char* backend : {"10.213.0.3", "10.213.0.4"}) {
    LookNode b;
    b.host = backend[9] == '3' ? "app-1" : "app-2";
    b.addr = *IpAddr::Parse(backend);
    b.port = 8000;
    b.process = Proc(900, 900, "python3", "/usr/bin/python3");
    b.stats = FlowStats{};
    b.stats->connections = 2;
    lb.dependencies.push_back(b);
  }
  r.root.dependencies.push_back(lb);
  return r;
}

TEST(LookFormat, TextShowsViaAliasesAndBalancers) {
  EXPECT_EQ(FormatLookTree(NatTree()),
            "10.213.5.1 ('fmcli', pgid=700) on c1\n"
            "└--> 10.213.5.2:8080 ('fmsrv', pgid=800) on s1 via 10.213.250.1:80 "
            "(also 10.213.0.8:9090)  20 conns 0 B\n"
            "└--> 10.213.0.9:8000 balancer on lb-1  4 conns 0 B\n"
            "     └--> 10.213.0.3:8000 ('python3', pgid=900) on app-1  2 conns 0 B\n"
            "     └--> 10.213.0.4:8000 ('python3', pgid=900) on app-2  2 conns 0 B\n");
}

// Asked as its published port, a root was reached via that front: it is not
// one of its other fronts too.
TEST(LookFormat, AFrontThatIsTheViaIsNotAlsoAnAlias) {
  LookResult r = NatTree();
  LookNode root = r.root.dependencies[0];
  root.stats.reset();
  root.via = *Endpoint::Parse("10.213.0.8:9090");
  root.aliases = {root.via};
  r.root = root;
  EXPECT_EQ(FormatLookTree(r), "10.213.5.2:8080 ('fmsrv', pgid=800) on s1 via 10.213.0.8:9090\n");
  r.root.aliases.push_back(*Endpoint::Parse("10.213.0.8:9091"));
  EXPECT_EQ(FormatLookTree(r),
            "10.213.5.2:8080 ('fmsrv', pgid=800) on s1 via 10.213.0.8:9090 (also 10.213.0.8:9091)\n");
  EXPECT_THAT(FormatLookJson(r), HasSubstr(R"("aliases": ["10.213.0.8:9090", "10.213.0.8:9091"])"));
}

TEST(LookFormat, JsonHasViaBalancerAndAliasesOnEveryNode) {
  std::string json = FormatLookJson(NatTree());
  EXPECT_THAT(json, HasSubstr(R"("host": "s1", "addr": "10.213.5.2", "port": 8080, )"
                              R"("process": {"comm": "fmsrv", "pid": 800, "pgid": 800, )"
                              R"("exe": "/usr/bin/fmsrv", "workload": null}, "balancer": false, )"
                              R"("via": "10.213.250.1:80", "aliases": ["10.213.0.8:9090"], )"
                              R"("status": "ok")"));
  EXPECT_THAT(json, HasSubstr(R"("host": "lb-1", "addr": "10.213.0.9", "port": 8000, )"
                              R"("process": null, "balancer": true, "via": null, "aliases": [], )"));
  // The root is no balancer and was dialled as nothing else.
  EXPECT_THAT(
      json,
      HasSubstr(R"("exe": "/usr/bin/fmcli", "workload": null}, "balancer": false, "via": null, )"
                R"("aliases": [], )"));
}

TEST(LookFormat, DotDrawsABalancerAsItsOwnDiamondAndLabelsViaEdges) {
  LookResult r = NatTree();
  // Both backends are one pgid on different hosts, and the balancer is
  // reached again deeper: still one diamond.
  LookNode again = r.root.dependencies[1];
  again.dependencies.clear();
  again.status = LookStatus::kCycle;
  r.root.dependencies[0].dependencies.push_back(again);
  std::string dot = FormatLookDot(r);
  EXPECT_THAT(dot, HasSubstr(R"("lb-1/balancer/10.213.0.9:8000" )"
                             R"([label="lb-1\n10.213.0.9:8000\nbalancer", shape=diamond];)"));
  size_t first = dot.find("\n  \"lb-1/balancer/10.213.0.9:8000\" [");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(dot.find("\n  \"lb-1/balancer/10.213.0.9:8000\" [", first + 1), std::string::npos);
  EXPECT_THAT(dot, HasSubstr(R"("c1/g700" -> "s1/g800" [label="20 conns\n0 B\nvia 10.213.250.1:80"];)"));
  EXPECT_THAT(dot, HasSubstr(R"("c1/g700" -> "lb-1/balancer/10.213.0.9:8000" [label="4 conns\n0 B"];)"));
  EXPECT_THAT(dot, HasSubstr(R"("lb-1/balancer/10.213.0.9:8000" -> "app-2/g900")"));
  EXPECT_THAT(dot, HasSubstr(R"("s1/g800" [label="fmsrv (pgid=800)\n10.213.5.2:8080\non s1\n)"
                             R"(also 10.213.0.8:9090"];)"));
}

TEST(LookFormat, Bytes) {
  EXPECT_EQ(FormatLookBytes(0), "0 B");
  EXPECT_EQ(FormatLookBytes(1023), "1023 B");
  EXPECT_EQ(FormatLookBytes(3500), "3.4 KB");
  EXPECT_EQ(FormatLookBytes(5ull << 30), "5.0 GB");
}

}  // namespace
}  // namespace flowmesh
