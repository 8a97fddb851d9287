// Query parameters -> the shared query parsers -> ControlBackend -> the
// shared formatters.
#include "node/ui/api.h"

#include <algorithm>
#include <map>
#include <set>

#include "cli/format/format.h"
#include "cli/format/look_format.h"
#include "cli/format/map_format.h"
#include "node/common/json_string.h"
#include "node/look/look_query_text.h"

namespace flowmesh::ui {
namespace {

constexpr std::string_view kJson = "application/json";

using Params = std::map<std::string, std::string>;

// The query's parameters by name ('-' read as '_'), refusing duplicates and
// names not in `known` with a message naming them and the accepted ones.
Result<Params> TakeParams(const http::HttpRequest& r, const std::set<std::string>& known) {
  Params out;
  std::vector<std::string> unknown;
  for (auto [name, value] : r.query) {
    std::replace(name.begin(), name.end(), '-', '_');
    if (!known.contains(name)) {
      unknown.push_back(name);
      continue;
    }
    if (!out.emplace(name, value).second)
      return InvalidArgument("parameter '" + name + "' is given twice; give it once");
  }
  if (!unknown.empty()) {
    std::string names, accepted;
    for (const std::string& u : unknown) names += (names.empty() ? "'" : ", '") + u + "'";
    for (const std::string& k : known) accepted += (accepted.empty() ? "" : ", ") + k;
    return InvalidArgument("unknown parameter" + std::string(unknown.size() > 1 ? "s " : " ") +
                           names + "; " + std::string(r.path) + " takes " + accepted);
  }
  return out;
}

void Take(const Params& p, const char* name, std::string* into) {
  if (auto it = p.find(name); it != p.end()) *into = it->second;
}

http::HttpResponse Json(std::string body) {
  http::HttpResponse r;
  r.content_type = std::string(kJson);
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body += '\n';  // as meshctl prints it
  return r;
}

http::HttpResponse Text(std::string body, std::string_view content_type) {
  http::HttpResponse r;
  r.content_type = std::string(content_type);
  r.body = std::move(body);
  return r;
}

// A backend error: unavailable (a member, the mesh) is 503, a bad query 400.
http::HttpResponse BackendError(const Status& s) {
  int code = s.code() == Status::Code::kInvalidArgument ? 400
             : s.code() == Status::Code::kUnavailable   ? 503
                                                        : 500;
  return JsonError(code, s.message());
}

Result<MapQuery> MapQueryOf(const http::HttpRequest& r, int64_t now_ns) {
  static const std::set<std::string> kKnown = {
      "since",    "until", "compare_to", "baseline_since", "baseline_until", "change_factor",
      "group_by", "host",  "workload",   "depth",          "timeout"};
  FM_ASSIGN_OR_RETURN(Params p, TakeParams(r, kKnown));
  MapQueryText t;
  Take(p, "since", &t.since);
  Take(p, "until", &t.until);
  Take(p, "compare_to", &t.compare_to);
  Take(p, "baseline_since", &t.baseline_since);
  Take(p, "baseline_until", &t.baseline_until);
  Take(p, "change_factor", &t.change_factor);
  Take(p, "group_by", &t.group_by);
  Take(p, "host", &t.host);
  Take(p, "workload", &t.workload);
  Take(p, "depth", &t.depth);
  Take(p, "timeout", &t.timeout);
  return ParseMapQueryText(t, now_ns);
}

http::HttpResponse Map(const http::HttpRequest& r, ControlBackend& backend, int64_t now_ns,
                       bool dot) {
  Result<MapQuery> q = MapQueryOf(r, now_ns);
  if (!q.ok()) return JsonError(400, q.status().message());
  Result<MapResult> m = backend.RunMap(*q);
  if (!m.ok()) return BackendError(m.status());
  if (dot) return Text(FormatMapDot(*m), "text/vnd.graphviz; charset=utf-8");
  return Json(FormatMapJson(*m));
}

http::HttpResponse Look(const http::HttpRequest& r, ControlBackend& backend, int64_t now_ns) {
  static const std::set<std::string> kKnown = {"target", "direction", "depth",       "since",
                                               "until",  "group_by",  "hop_timeout", "timeout"};
  Result<Params> p = TakeParams(r, kKnown);
  if (!p.ok()) return JsonError(400, p.status().message());
  LookQueryText t;
  Take(*p, "target", &t.target);
  if (t.target.empty())
    return JsonError(400, "target is missing; e.g. /api/look?target=10.213.0.2:80");
  Take(*p, "direction", &t.direction);
  Take(*p, "depth", &t.depth);
  Take(*p, "since", &t.since);
  Take(*p, "until", &t.until);
  Take(*p, "group_by", &t.group_by);
  Take(*p, "hop_timeout", &t.hop_timeout);
  Take(*p, "timeout", &t.timeout);
  Result<LookQuery> q = ParseLookQueryText(t, now_ns);
  if (!q.ok()) return JsonError(400, q.status().message());
  Result<LookResult> result = backend.RunLook(*q);
  if (!result.ok()) return BackendError(result.status());
  return Json(FormatLookJson(*result));
}

}  // namespace

http::HttpResponse JsonError(int status, const std::string& message) {
  http::HttpResponse r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = "{\"error\": " + JsonString(message) + "}\n";
  return r;
}

bool IsApiRoute(std::string_view path) {
  return path == "/api/map" || path == "/api/map.dot" || path == "/api/look" ||
         path == "/api/peers" || path == "/api/endpoints";
}

http::HttpResponse AnswerApi(const http::HttpRequest& r, ControlBackend& backend, int64_t now_ns) {
  if (r.path == "/api/map" || r.path == "/api/map.dot")
    return Map(r, backend, now_ns, r.path == "/api/map.dot");
  if (r.path == "/api/look") return Look(r, backend, now_ns);
  if (r.path == "/api/peers" || r.path == "/api/endpoints") {
    Result<Params> p = TakeParams(r, {});
    if (!p.ok()) return JsonError(400, p.status().message());
    if (r.path == "/api/peers") {
      std::vector<PeerView> peers = backend.GetPeers();  // none when the mesh is off
      SortPeers(&peers);
      return Json(PeersJson(peers));
    }
    std::vector<EndpointView> all =
        backend.MeshEnabled() ? backend.GetMeshEndpoints() : backend.GetEndpoints();
    SortEndpoints(&all);
    return Json(EndpointsJson(all, /*with_node=*/true));
  }
  return JsonError(404, "no API route " + r.path + "; see docs/api.md");
}

}  // namespace flowmesh::ui
