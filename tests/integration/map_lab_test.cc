// The map on the lab (issue 16): `meshctl map` asked on every one of the nine
// hosts draws the same graph, with the lab's real edges; the page client-1
// serves needs its token off loopback and draws that graph in a real
// browser; a meshd killed mid-way is an unreachable member within the
// map's deadline, and the rest of the map still comes back.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "node/common/status.h"
#include "tests/integration/look_lab_fixture.h"

namespace flowmesh::testing {
namespace {

using nlohmann::json;

constexpr const char* kUiUrl = "http://10.213.0.1:8080";  // topology.sh: client-1
constexpr int kUiHost = 1;

// What must be the same from every host: each node's identity and what it
// shows, each edge's ends and endpoint. Counts may differ by a late close.
struct Shape {
  std::set<std::tuple<std::string, std::string, std::string, std::string>> nodes;
  std::set<std::tuple<std::string, std::string, std::string, std::string>> edges;
  bool operator==(const Shape&) const = default;
};

std::string Text(const json& v) { return v.is_string() ? v.get<std::string>() : ""; }

Shape ShapeOf(const json& map) {
  Shape s;
  for (const json& n : map.at("nodes"))
    s.nodes.emplace(Text(n["id"]), Text(n["kind"]), Text(n["status"]), Text(n["label"]));
  for (const json& e : map.at("edges"))
    s.edges.emplace(Text(e["from"]), Text(e["to"]), Text(e["endpoint"]), Text(e["via"]));
  return s;
}

std::string Describe(const Shape& s) {
  std::string out = "nodes:\n";
  for (const auto& [id, kind, status, label] : s.nodes)
    out += "  " + id + " " + kind + " " + status + " '" + label + "'\n";
  out += "edges:\n";
  for (const auto& [from, to, ep, via] : s.edges)
    out += "  " + from + " -> " + to + " @" + ep + (via.empty() ? "" : " via " + via) + "\n";
  return out;
}

class MapLabTest : public LookLabTest {
 protected:
  Result<json> Map(int i, std::vector<std::string> args) {
    args.insert(args.begin(), {"map", "--format", "json"});
    CommandResult r = Ctl(i, args);
    if (r.exit_code != 0)
      return Unavailable("meshctl map on " + std::string(kHostNames[i - 1]) + " exited " +
                         std::to_string(r.exit_code) + ": " + r.err);
    try {
      return json::parse(r.out);
    } catch (const json::exception& e) {
      return Unavailable(std::string("map JSON does not parse: ") + e.what() + "\n" + r.out);
    }
  }

  void Traffic() {
    CommandResult t = Topology({"traffic", work_, "10"}, 180s);
    ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
    LetEventsArrive();
  }

  // The node on `host` whose label contains `label` (host "" = external).
  static const json* Node(const json& map, const std::string& host, const std::string& label) {
    for (const json& n : map.at("nodes"))
      if (Text(n["host"]) == host && Text(n["label"]).find(label) != std::string::npos) return &n;
    return nullptr;
  }

  static const json* Edge(const json& map, const json* from, const json* to) {
    if (from == nullptr || to == nullptr) return nullptr;
    for (const json& e : map.at("edges"))
      if (e["from"] == (*from)["id"] && e["to"] == (*to)["id"]) return &e;
    return nullptr;
  }

  // curl on host i; its HTTP status code.
  std::string HttpStatus(int i, const std::vector<std::string>& curl_args) {
    std::vector<std::string> cmd = {"/usr/sbin/ip", "netns", "exec", Ns(i), "curl", "-s",
                                    "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"};
    cmd.insert(cmd.end(), curl_args.begin(), curl_args.end());
    return RunCommand(cmd, 15s).out;
  }

  std::string Token() {
    std::ifstream f(work_ + "/ui.token");
    std::string t;
    std::getline(f, t);
    return t;
  }
};

#define EXPECT_EDGE(map, fh, fl, th, tl)                                                 \
  EXPECT_NE(Edge(map, Node(map, fh, fl), Node(map, th, tl)), nullptr)                    \
      << "no edge " << (fh) << " '" << (fl) << "' -> " << (th) << " '" << (tl) << "'\n" \
      << Describe(ShapeOf(map))

TEST_F(MapLabTest, EveryHostDrawsTheSameMapAndThePageShowsIt) {
  if (IsSkipped() || HasFatalFailure()) return;
  Traffic();
  if (HasFatalFailure()) return;

  // The page: off loopback, nothing without the token. (Asked before the
  // maps: these requests are edges to client-1's meshd too.)
  const std::string token = Token();
  ASSERT_GE(token.size(), 16u);
  EXPECT_EQ(HttpStatus(7, {std::string(kUiUrl) + "/api/map"}), "401");
  EXPECT_EQ(HttpStatus(7, {std::string(kUiUrl) + "/"}), "401");
  EXPECT_EQ(HttpStatus(7, {"-H", "Authorization: Bearer " + token + "x",
                           std::string(kUiUrl) + "/api/map"}),
            "401");
  EXPECT_EQ(HttpStatus(7, {"-H", "Authorization: Bearer " + token,
                           std::string(kUiUrl) + "/api/map?since=10m"}),
            "200");

  Result<json> first = Map(1, {"--since", "10m"});
  ASSERT_TRUE(first.ok()) << first.status().message();
  const json& map = *first;
  // The lab's dependencies, each one edge whatever side reported it.
  EXPECT_EDGE(map, "web-1", "nginx.service", "app-1", "flowmesh-lab-app.service");
  EXPECT_EDGE(map, "web-1", "nginx.service", "app-2", "pod shop/api-7d9c5b-x2k4q/api");
  EXPECT_EDGE(map, "app-1", "flowmesh-lab-app.service", "cache-1", "redis-server.service");
  EXPECT_EDGE(map, "app-1", "flowmesh-lab-app.service", "kv-1", "memcached.service");
  EXPECT_EDGE(map, "app-2", "pod shop/api-7d9c5b-x2k4q/api", "cache-1", "redis-server.service");
  EXPECT_EDGE(map, "client-1", "curl", "web-1", "nginx.service");
  EXPECT_EDGE(map, "client-1", "curl", "docker-1", "container web");
  EXPECT_EDGE(map, "client-2", "curl", "web-1", "nginx.service");
  EXPECT_EDGE(map, "client-2", "curl", "lb-1", "10.213.0.9:8000");
  EXPECT_EDGE(map, "lb-1", "10.213.0.9:8000", "app-1", "flowmesh-lab-app.service");
  EXPECT_EQ(map["summary"]["members"], kHosts);
  EXPECT_EQ(map["summary"]["answered"], kHosts);
  // The edges through client-2's Service VIP keep what was dialled.
  const json* vip = Edge(map, Node(map, "client-2", "curl"), Node(map, "web-1", "nginx.service"));
  if (vip != nullptr) EXPECT_EQ(Text((*vip)["via"]), "10.213.250.1:80");
  const json* lb = Node(map, "lb-1", "10.213.0.9:8000");
  if (lb != nullptr) EXPECT_EQ(Text((*lb)["kind"]), "balancer");

  // The same graph from every host.
  const Shape want = ShapeOf(map);
  for (int i = 2; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    Result<json> other = Map(i, {"--since", "10m"});
    ASSERT_TRUE(other.ok()) << other.status().message();
    EXPECT_EQ(Describe(ShapeOf(*other)), Describe(want));
  }

  // Compared with the same window a day back, before the lab was up: every
  // edge appeared.
  Result<json> changes = Map(3, {"--since", "10m", "--compare-to", "1d"});
  ASSERT_TRUE(changes.ok()) << changes.status().message();
  ASSERT_TRUE((*changes)["changes"].is_array());
  EXPECT_EQ((*changes)["changes"].size(), (*changes)["edges"].size());
  for (const json& c : (*changes)["changes"]) EXPECT_EQ(Text(c["change"]), "appeared");

  // /api/map is meshctl's JSON for the same question.
  CommandResult api = RunCommand({"/usr/sbin/ip", "netns", "exec", Ns(7), "curl", "-sf", "-m",
                                  "15", "-H", "Authorization: Bearer " + token,
                                  std::string(kUiUrl) + "/api/map?since=10m"},
                                 20s);
  ASSERT_EQ(api.exit_code, 0) << api.err;
  EXPECT_EQ(Describe(ShapeOf(json::parse(api.out))), Describe(want));

  // A real browser on client-1 draws it, finds nginx's look tree, and an
  // empty window empties the edges; the screenshot stays for people.
  mkdir(TEST_ARTIFACTS, 0755);
  const std::string shot = std::string(TEST_ARTIFACTS) + "/map_lab.png";
  CommandResult browser = RunCommand(
      {"/usr/sbin/ip", "netns", "exec", Ns(kUiHost), "/usr/bin/python3", UI_BROWSER_PY,
       std::string(kUiUrl) + "/", "--token-file", work_ + "/ui.token", "--screenshot", shot,
       "--click", "nginx", "--expect-label", "nginx.service", "--expect-label",
       "flowmesh-lab-app.service", "--expect-label", "pod shop/api-7d9c5b-x2k4q/api",
       "--expect-label", "redis-server.service", "--expect-label", "memcached.service",
       "--expect-label", "container web", "--expect-label", "balancer 10.213.0.9:8000"},
      240s);
  EXPECT_EQ(browser.exit_code, 0) << browser.out << browser.err;
  struct stat st {};
  EXPECT_EQ(stat(shot.c_str(), &st), 0) << shot;
  EXPECT_GT(st.st_size, 10000) << shot;
}

TEST_F(MapLabTest, AKilledMeshdIsUnreachableWithinTheDeadline) {
  if (IsSkipped() || HasFatalFailure()) return;
  Traffic();
  if (HasFatalFailure()) return;

  // kill -9 kv-1's meshd: the mesh still has it alive or suspect for
  // seconds, so the map asks it and must give up on it in time.
  std::ifstream pidfile(work_ + "/kv-1/meshd.pid");
  pid_t pid = 0;
  pidfile >> pid;
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  const auto start = std::chrono::steady_clock::now();
  Result<json> got = Map(1, {"--since", "10m", "--timeout", "4s"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(got.ok()) << got.status().message();
  const json& map = *got;
  // The deadline, plus meshctl's start and a second for the namespace hop.
  EXPECT_LT(took, 6s);

  bool kv_marked = false;
  for (const json& m : map["members"]) {
    if (m["name"] != "kv-1") {
      EXPECT_TRUE(m["answered"].get<bool>()) << m.dump();
      continue;
    }
    EXPECT_FALSE(m["answered"].get<bool>()) << m.dump();
    EXPECT_FALSE(Text(m["error"]).empty()) << m.dump();
    kv_marked = true;
  }
  EXPECT_TRUE(kv_marked) << map["members"].dump();

  // memcached's node comes from kv-1's gossiped table, marked unreachable,
  // and the apps' edges to it (which they reported) are still drawn.
  const json* memcached = nullptr;
  for (const json& n : map["nodes"]) {
    if (Text(n["host"]) != "kv-1") continue;
    EXPECT_EQ(Text(n["status"]), "unreachable") << n.dump();
    for (const json& ep : n["endpoints"])
      if (Text(ep) == "10.213.0.6:11211") memcached = &n;
  }
  ASSERT_NE(memcached, nullptr) << Describe(ShapeOf(map));
  EXPECT_NE(Edge(map, Node(map, "app-1", "flowmesh-lab-app.service"), memcached), nullptr)
      << Describe(ShapeOf(map));
  // The rest of the map is whole.
  EXPECT_EDGE(map, "web-1", "nginx.service", "app-1", "flowmesh-lab-app.service");
  EXPECT_EDGE(map, "app-1", "flowmesh-lab-app.service", "cache-1", "redis-server.service");
}

}  // namespace
}  // namespace flowmesh::testing
