// Writes every JSON answer of docs/api.md as the real formatters print it
// (maps with and without changes, nulls, unreachable and balancer nodes; a
// look tree; peers; endpoints; an error) into DIR as <definition>.<case>.json,
// for api_schema_check.py to validate against docs/api.schema.json.
#include <cstdio>
#include <fstream>
#include <string>

#include "cli/format/format.h"
#include "cli/format/look_format.h"
#include "cli/format/map_format.h"
#include "node/common/json_string.h"
#include "tests/unit/map_samples.h"

namespace flowmesh::testing {
namespace {

LookResult SampleLook() {
  LookResult r;
  r.query.target = *Endpoint::Parse("10.213.0.2:80");
  r.query.depth = 3;
  LookNode& root = r.root;
  root.host = "web-1";
  root.addr = r.query.target.addr;
  root.port = 80;
  root.process = ProcessDetails{4656, 9, 4656, 1, "nginx", "/usr/sbin/nginx", 0, SampleUnit()};
  root.aliases = {*Endpoint::Parse("10.213.0.2:9090"), *Endpoint::Parse("[fd00::2]:9090")};
  LookNode curl;
  curl.host = "client-1";
  curl.addr = *IpAddr::Parse("10.213.0.1");
  curl.process = ProcessDetails{5982, 1, 5982, 1, "curl", "/usr/bin/curl", 0, {}};
  curl.stats = MapStats(3, 240, 1234, 1);
  root.clients.push_back(curl);
  LookNode outside;
  outside.addr = *IpAddr::Parse("fd00::99");
  outside.status = LookStatus::kNoAgent;
  outside.stats = MapStats(1, 9, 9);
  outside.stats->first_seen_ns = 0;  // a null time
  root.clients.push_back(outside);
  LookNode lb;
  lb.host = "lb-1";
  lb.addr = *IpAddr::Parse("10.213.250.1");
  lb.port = 80;
  lb.balancer = true;
  lb.stats = MapStats(12, 4096, 90000);
  LookNode app;
  app.host = "app-1";
  app.addr = *IpAddr::Parse("10.213.0.3");
  app.port = 8000;
  app.process =
      ProcessDetails{6111, 1, 6111, 1, "python3", "/usr/bin/python3", 0, SamplePodContainer()};
  app.via = *Endpoint::Parse("10.213.250.1:80");
  app.stats = MapStats(12, 4096, 90000);
  LookNode cache;
  cache.host = "cache-1";
  cache.addr = *IpAddr::Parse("10.213.0.4");
  cache.port = 6379;
  cache.status = LookStatus::kUnreachable;
  cache.status_detail = "no answer from cache-1 in 2s";
  cache.stats = MapStats(40, 800, 1200, 2);
  LookNode loop = app;
  loop.status = LookStatus::kCycle;
  loop.dependencies.clear();
  app.dependencies = {cache, loop};
  lb.dependencies.push_back(app);
  root.dependencies.push_back(lb);
  return r;
}

std::vector<PeerView> SamplePeers() {
  PeerView a{"web-1", "10.213.0.2:7946", "alive", 3, 4, kMapSince, 12, "3f2a"};
  PeerView b{"cache-1", "10.213.0.4:7946", "suspect", 1, 0, 0, 0, ""};
  return {a, b};
}

std::vector<EndpointView> SampleEndpoints() {
  EndpointView listen;
  listen.node = "web-1";
  listen.endpoint.addr = *IpAddr::Parse("10.213.0.2");
  listen.endpoint.port = 80;
  listen.endpoint.netns = 4026531840u;
  listen.endpoint.since_ns = kMapSince;
  listen.process = ProcessDetails{4656, 9, 4656, 1, "nginx", "/usr/sbin/nginx", 0, SampleUnit()};
  EndpointView published = listen;
  published.endpoint.port = 9090;
  published.targets = {*Endpoint::Parse("10.213.0.2:80")};
  EndpointView balancer;
  balancer.node = "lb-1";
  balancer.endpoint.addr = *IpAddr::Parse("fd00::250");
  balancer.endpoint.port = 80;
  balancer.targets = {*Endpoint::Parse("[fd00::3]:8000"), *Endpoint::Parse("[fd00::13]:8000")};
  balancer.balancer = true;
  return {listen, published, balancer};
}

bool Write(const std::string& dir, const std::string& name, const std::string& json) {
  std::ofstream out(dir + "/" + name + ".json", std::ios::binary);
  // meshctl and the API end each answer with a newline (PeersJson and
  // EndpointsJson leave it to them).
  out << json << (json.empty() || json.back() != '\n' ? "\n" : "");
  return static_cast<bool>(out);
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: api_schema_samples DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  MapResult hostile = SampleMap();
  hostile.graph.nodes[0].label = "web\x1b[2J\"q\\\"\nx\xff";
  hostile.graph.nodes[0].process->comm = "\xc3\x28";
  MapResult empty;
  empty.graph.members = {MapPeer("web-1", "", true)};
  empty.graph.members[0].state.clear();
  empty.query.window = {0, std::numeric_limits<int64_t>::max()};
  empty.graph.window = empty.query.window;
  MapResult v6 = SampleMap(false);
  v6.graph.nodes[6].endpoints = {Endpoint{*IpAddr::Parse("fd00::9"), 0}};
  v6.graph.edges[0].endpoint = *Endpoint::Parse("[fd00::3]:8000");
  const std::pair<std::string, std::string> samples[] = {
      {"map.changes", FormatMapJson(SampleMap())},
      {"map.no_baseline", FormatMapJson(SampleMap(false))},
      {"map.hostile", FormatMapJson(hostile)},
      {"map.empty", FormatMapJson(empty)},
      {"map.ipv6", FormatMapJson(v6)},
      {"look.tree", FormatLookJson(SampleLook())},
      {"peers.two", PeersJson(SamplePeers())},
      {"peers.none", PeersJson({})},
      {"endpoints.all", EndpointsJson(SampleEndpoints(), /*with_node=*/true)},
      // As node/ui/api.cc writes it: the message of ParseMapQueryText.
      {"error.bad_param",
       "{\"error\": " + JsonString("--since: 'x' is neither a duration nor a time") + "}\n"},
  };
  for (const auto& [name, json] : samples)
    if (!Write(dir, name, json)) {
      std::fprintf(stderr, "api_schema_samples: cannot write %s/%s.json\n", dir.c_str(),
                   name.c_str());
      return 1;
    }
  return 0;
}

}  // namespace
}  // namespace flowmesh::testing

int main(int argc, char** argv) { return flowmesh::testing::Main(argc, argv); }
