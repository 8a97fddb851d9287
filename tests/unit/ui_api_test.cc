// The JSON API against a fake backend, without sockets: parameters, status
// codes, and answers byte-equal to what meshctl prints for the same data.
#include <gtest/gtest.h>

#include "cli/format/format.h"
#include "cli/format/look_format.h"
#include "cli/format/map_format.h"
#include "node/common/duration.h"
#include "node/http/http.h"
#include "node/look/look_query_text.h"
#include "node/ui/api.h"
#include "tests/unit/ui_fixture.h"

namespace flowmesh::ui {
namespace {

using http::HttpResponse;
using testing::UiFakeBackend;

constexpr int64_t kNow = 1'800'000'000'000'000'000;

HttpResponse Get(UiFakeBackend& b, const std::string& target) {
  Result<http::HttpRequest> r =
      http::ParseRequestHead("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return {};
  return AnswerApi(*r, b, kNow);
}

TEST(UiApi, MapIsFormatMapJsonOfTheBackendsAnswer) {
  UiFakeBackend b;
  b.map = testing::SampleMap();
  HttpResponse r = Get(b, "/api/map?since=2h&group-by=pgid&depth=2&host=web-1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  MapResult expected = b.map;
  expected.query = b.last_map;
  EXPECT_EQ(r.body, FormatMapJson(expected));
  EXPECT_EQ(b.last_map.window.until_ns - b.last_map.window.since_ns, 2 * 3600 * 1'000'000'000LL);
  EXPECT_EQ(b.last_map.group_by, GroupBy::kPgid);
  EXPECT_EQ(b.last_map.depth, 2);
  EXPECT_EQ(b.last_map.host, "web-1");
  // The query, parsed as ParseMapQueryText parses meshctl's flags.
  MapQueryText t;
  t.since = "2h";
  t.group_by = "pgid";
  t.depth = "2";
  t.host = "web-1";
  Result<MapQuery> q = ParseMapQueryText(t, kNow);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->window.since_ns, b.last_map.window.since_ns);
  EXPECT_EQ(q->timeout_ns, b.last_map.timeout_ns);
}

TEST(UiApi, MapParametersTakeUnderscoresAndDashesAndRefuseTheRest) {
  UiFakeBackend b;
  EXPECT_EQ(Get(b, "/api/map?compare_to=24h&change-factor=3").status, 200);
  EXPECT_TRUE(b.last_map.baseline.has_value());
  EXPECT_EQ(b.last_map.change_factor, 3.0);

  HttpResponse unknown = Get(b, "/api/map?since=1h&colour=red&shape=x");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_NE(unknown.body.find("unknown parameters 'colour', 'shape'"), std::string::npos)
      << unknown.body;
  EXPECT_NE(unknown.body.find("/api/map takes baseline_since"), std::string::npos) << unknown.body;
  HttpResponse twice = Get(b, "/api/map?since=1h&since=2h");
  EXPECT_EQ(twice.status, 400);
  EXPECT_EQ(twice.body, "{\"error\": \"parameter 'since' is given twice; give it once\"}\n");
  // since and group-by spelled two ways are still one parameter given twice.
  EXPECT_EQ(Get(b, "/api/map?group_by=pid&group-by=pgid").status, 400);
  HttpResponse bad = Get(b, "/api/map?depth=x");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(bad.body.starts_with("{\"error\": \"--depth: ")) << bad.body;
  EXPECT_EQ(Get(b, "/api/map?since=soon").status, 400);
  EXPECT_EQ(b.maps_started, 1) << "a bad query never reaches the backend";
}

TEST(UiApi, MapBackendErrorsKeepTheirMeaning) {
  UiFakeBackend b;
  b.map_error = Unavailable("no member answered");
  HttpResponse r = Get(b, "/api/map");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"error\": \"no member answered\"}\n");
  b.map_error = InvalidArgument("--host: no such member");
  EXPECT_EQ(Get(b, "/api/map").status, 400);
  b.map_error = Internal("boom");
  EXPECT_EQ(Get(b, "/api/map").status, 500);
}

TEST(UiApi, MapDotIsFormatMapDotOfTheSameQuery) {
  UiFakeBackend b;
  b.map = testing::SampleMap();
  EXPECT_EQ(Get(b, "/api/map.dot?nope=1").status, 400);
  HttpResponse r = Get(b, "/api/map.dot?since=1h");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/vnd.graphviz; charset=utf-8");
  MapResult expected = b.map;
  expected.query = b.last_map;
  EXPECT_EQ(r.body, FormatMapDot(expected));
}

TEST(UiApi, MapTimeoutAndTextsAreBoundedAsMeshctlsAre) {
  UiFakeBackend b;
  HttpResponse r = Get(b, "/api/map?timeout=1h");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--timeout: at most 60s"), std::string::npos) << r.body;
  EXPECT_EQ(Get(b, "/api/map?workload=" + std::string(2000, 'w')).status, 400);
}

TEST(UiApi, LookTimeoutsAreBoundedAsTheMapsAre) {
  UiFakeBackend b;
  HttpResponse r = Get(b, "/api/look?target=10.0.0.1:80&timeout=1h");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--timeout: at most 60s"), std::string::npos) << r.body;
  r = Get(b, "/api/look?target=10.0.0.1:80&hop_timeout=1000h");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--hop-timeout: at most 60s"), std::string::npos) << r.body;
  EXPECT_EQ(Get(b, "/api/look?target=10.0.0.1:80&timeout=60s&hop_timeout=60s").status, 200);
}

TEST(UiApi, LookIsFormatLookJsonOfTheSameQueryMeshctlAsks) {
  UiFakeBackend b;
  b.look_root.host = "web-1";
  b.look_root.addr = IpAddr::V4(10, 213, 0, 2);
  b.look_root.port = 80;
  HttpResponse r =
      Get(b, "/api/look?target=10.213.0.2:80&direction=in&depth=2&group_by=pid&since=30m");
  ASSERT_EQ(r.status, 200) << r.body;
  LookQueryText t;
  t.target = "10.213.0.2:80";
  t.direction = "in";
  t.depth = "2";
  t.group_by = "pid";
  t.since = "30m";
  Result<LookQuery> q = ParseLookQueryText(t, kNow);
  ASSERT_TRUE(q.ok());
  std::string expected = FormatLookJson(LookResult{*q, b.look_root});
  if (!expected.ends_with('\n')) expected += '\n';  // as meshctl look --json prints it
  EXPECT_EQ(r.body, expected);
  EXPECT_EQ(b.last_look.direction, LookDirection::kIn);
  EXPECT_EQ(b.last_look.depth, 2);

  EXPECT_EQ(Get(b, "/api/look").status, 400);
  EXPECT_EQ(Get(b, "/api/look?target=nowhere").status, 400);
  EXPECT_EQ(Get(b, "/api/look?target=10.0.0.1:80&depth=17").status, 400);
  EXPECT_EQ(Get(b, "/api/look?target=10.0.0.1:80&direction=sideways").status, 400);
  EXPECT_EQ(Get(b, "/api/look?target=10.0.0.1:80&target=10.0.0.2:80").status, 400);
}

TEST(UiApi, PeersAndEndpointsAreMeshctlsJsonInMeshctlsOrder) {
  UiFakeBackend b;
  PeerView p1, p2;
  p1.name = "web-1";
  p1.addr = "10.213.0.2:7946";
  p1.state = "alive";
  p2.name = "app-1";
  p2.addr = "10.213.0.3:7946";
  p2.state = "suspect";
  b.peers = {p1, p2};
  std::vector<PeerView> sorted = b.peers;
  SortPeers(&sorted);
  EXPECT_EQ(sorted[0].name, "app-1");
  HttpResponse peers = Get(b, "/api/peers");
  ASSERT_EQ(peers.status, 200);
  EXPECT_EQ(peers.body, PeersJson(sorted) + "\n");

  EndpointView e1, e2;
  e1.node = "web-1";
  e1.endpoint.addr = IpAddr::V4(10, 213, 0, 2);
  e1.endpoint.port = 80;
  e2.node = "app-1";
  e2.endpoint.addr = IpAddr::V4(10, 213, 0, 3);
  e2.endpoint.port = 8000;
  b.mesh_endpoints = {e1, e2};
  b.local_endpoints = {e1};
  std::vector<EndpointView> all = b.mesh_endpoints;
  SortEndpoints(&all);
  HttpResponse eps = Get(b, "/api/endpoints");
  ASSERT_EQ(eps.status, 200);
  EXPECT_EQ(eps.body, EndpointsJson(all, true) + "\n");
  // Without the mesh: this node's own, still with the node field.
  b.mesh = false;
  EXPECT_EQ(Get(b, "/api/endpoints").body, EndpointsJson(b.local_endpoints, true) + "\n");
  EXPECT_EQ(Get(b, "/api/peers?x=1").status, 400);
}

TEST(UiApi, UnknownRoutesAre404AndNamedRoutesAreKnown) {
  UiFakeBackend b;
  EXPECT_EQ(Get(b, "/api/nothing").status, 404);
  for (const char* p : {"/api/map", "/api/map.dot", "/api/look", "/api/peers", "/api/endpoints"})
    EXPECT_TRUE(IsApiRoute(p)) << p;
  EXPECT_FALSE(IsApiRoute("/api/map/"));
}

}  // namespace
}  // namespace flowmesh::ui
