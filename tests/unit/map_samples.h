// A map every map output's tests share: workloads on three hosts, a
// balancer, external addresses, an unreachable and an unconfirmed node, an
// edge through a NAT, a member that did not answer, and a baseline with one
// change of each kind. Header-only, like workload_samples.h.
#pragma once

#include <string>

#include "node/look/map_types.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh::testing {

inline constexpr int64_t kMapSince = 1'764'000'000'000'000'000;  // 2025-11-24T16:00:00Z
inline constexpr int64_t kMapUntil = kMapSince + 3'600'000'000'000;

inline FlowStats MapStats(uint64_t conns, uint64_t tx, uint64_t rx, uint64_t carried = 0) {
  FlowStats s;
  s.connections = conns;
  s.carried = carried;
  s.bytes_tx = tx;
  s.bytes_rx = rx;
  s.segs_out = conns * 4;
  s.segs_in = conns * 3;
  s.rtt_sum_us = 300 * conns;
  s.rtt_samples = conns;
  s.first_seen_ns = kMapSince + 1'000'000'000;
  s.last_seen_ns = kMapUntil - 1'000'000'000;
  return s;
}

inline MapNode MapWorkload(const std::string& host, const std::string& key,
                           const std::string& label, const std::string& comm, uint32_t pgid,
                           const Workload& w, const std::string& endpoint) {
  MapNode n;
  n.id = host + "/" + key;
  n.kind = MapNodeKind::kWorkload;
  n.host = host;
  n.process = ProcessDetails{pgid, 77, pgid, 1, comm, "/usr/bin/" + comm, 0, w};
  if (!endpoint.empty()) n.endpoints.push_back(*Endpoint::Parse(endpoint));
  n.label = label;
  return n;
}

inline MapEdge MapLink(const std::string& from, const std::string& to, const std::string& endpoint,
                       const FlowStats& stats, const std::string& via = "") {
  MapEdge e;
  e.from = from;
  e.to = to;
  e.endpoint = *Endpoint::Parse(endpoint);
  if (!via.empty()) e.via = *Endpoint::Parse(via);
  e.stats = stats;
  e.client_seen = true;
  e.server_seen = true;
  return e;
}

inline MapMember MapPeer(const std::string& name, const std::string& address, bool answered,
                         const std::string& error = "") {
  MapMember m;
  m.name = name;
  m.address = address;
  m.state = answered ? "alive" : "suspect";
  m.answered = answered;
  m.error = error;
  m.answer_bytes = answered ? 1840 : 0;
  m.latency_ns = answered ? 3'250'000 : 2'000'000'000;
  return m;
}

// The map of the lab's shop: curl on client-1 -> nginx on web-1 -> app (a
// container) on app-1, dialled through lb-1's balancer VIP -> redis on
// cache-1 (unreachable) and an external API; an external client and a host
// whose meshd has no matching process call nginx too.
inline MapResult SampleMap(bool with_baseline = true) {
  MapResult r;
  r.query.window = {kMapSince, kMapUntil};
  r.query.depth = 1;
  r.graph.window = r.query.window;
  Workload none;
  MapNode curl = MapWorkload("client-1", "g5982", "'curl' pgid 5982", "curl", 5982, none, "");
  MapNode nginx = MapWorkload("web-1", "wunit:nginx.service", "nginx.service", "nginx", 4656,
                              SampleUnit(), "10.213.0.2:80");
  MapNode app = MapWorkload("app-1", "wcontainer:web", "container web", "python3", 6111,
                            SampleContainer(), "10.213.0.3:8000");
  MapNode lb;
  lb.id = "lb-1/lb:10.213.250.1:80";
  lb.kind = MapNodeKind::kBalancer;
  lb.host = "lb-1";
  lb.endpoints = {*Endpoint::Parse("10.213.250.1:80")};
  lb.label = "balancer 10.213.250.1:80";  // MapLabel's
  MapNode cache;
  cache.id = "cache-1/unreachable";
  cache.host = "cache-1";
  cache.endpoints = {*Endpoint::Parse("10.213.0.4:6379")};
  cache.status = LookStatus::kUnreachable;
  cache.status_detail = "no answer from cache-1 in 2s";
  cache.label = "cache-1";
  MapNode api;
  api.id = "ext:203.0.113.9:443";
  api.kind = MapNodeKind::kExternal;
  api.endpoints = {*Endpoint::Parse("203.0.113.9:443")};
  api.status = LookStatus::kNoAgent;
  api.label = "203.0.113.9:443";
  MapNode outside;
  outside.id = "ext:198.51.100.7";
  outside.kind = MapNodeKind::kExternal;
  outside.endpoints = {Endpoint{*IpAddr::Parse("198.51.100.7"), 0}};
  outside.status = LookStatus::kNoAgent;
  outside.label = "198.51.100.7";
  MapNode unconfirmed;
  unconfirmed.id = "client-2/unconfirmed:10.213.0.5";
  unconfirmed.host = "client-2";
  unconfirmed.endpoints = {Endpoint{*IpAddr::Parse("10.213.0.5"), 0}};
  unconfirmed.status = LookStatus::kUnconfirmed;
  unconfirmed.label = "10.213.0.5";
  r.graph.nodes = {app, cache, curl, nginx, unconfirmed, lb, outside, api};

  MapEdge to_lb = MapLink(nginx.id, lb.id, "10.213.250.1:80", MapStats(12, 4096, 90000));
  MapEdge to_app =
      MapLink(lb.id, app.id, "10.213.0.3:8000", MapStats(12, 4096, 90000), "10.213.250.1:80");
  MapEdge to_cache = MapLink(app.id, cache.id, "10.213.0.4:6379", MapStats(40, 800, 1200, 2));
  to_cache.server_seen = false;
  MapEdge to_api = MapLink(app.id, api.id, "203.0.113.9:443", MapStats(3, 2100, 51000));
  to_api.server_seen = false;
  MapEdge from_curl = MapLink(curl.id, nginx.id, "10.213.0.2:80", MapStats(3, 240, 1234));
  MapEdge from_outside = MapLink(outside.id, nginx.id, "10.213.0.2:80", MapStats(1, 90, 400));
  from_outside.client_seen = false;
  MapEdge from_unconfirmed =
      MapLink(unconfirmed.id, nginx.id, "10.213.0.2:80", MapStats(2, 10, 20));
  from_unconfirmed.client_seen = false;
  r.graph.edges = {to_app, to_cache, to_api, from_curl, from_unconfirmed, to_lb, from_outside};
  r.graph.members = {MapPeer("app-1", "10.213.0.3:7946", true),
                     MapPeer("cache-1", "10.213.0.4:7946", false, "no answer in 2s"),
                     MapPeer("client-1", "10.213.0.1:7946", true),
                     MapPeer("lb-1", "10.213.0.9:7946", true),
                     MapPeer("web-1", "10.213.0.2:7946", true)};
  r.graph.members[3].truncated = true;
  if (!with_baseline) return r;

  r.query.baseline = TimeWindow{kMapSince - 86'400'000'000'000, kMapUntil - 86'400'000'000'000};
  MapGraph before = r.graph;
  before.window = *r.query.baseline;
  MapEdge old_db =
      MapLink(app.id, "ext:203.0.113.20:5432", "203.0.113.20:5432", MapStats(5, 10, 10));
  before.edges.push_back(old_db);
  MapNode db;
  db.id = old_db.to;
  db.kind = MapNodeKind::kExternal;
  db.endpoints = {old_db.endpoint};
  db.status = LookStatus::kNoAgent;
  db.label = "203.0.113.20:5432";
  before.nodes.push_back(db);
  r.baseline = before;
  MapEdgeChange appeared;
  appeared.kind = MapChangeKind::kAppeared;
  appeared.edge = to_api;
  MapEdgeChange gone;
  gone.kind = MapChangeKind::kDisappeared;
  gone.edge = old_db;
  gone.before = old_db.stats;
  MapEdgeChange grew;
  grew.kind = MapChangeKind::kChanged;
  grew.edge = from_curl;
  grew.before = MapStats(1, 80, 400);
  grew.factor = 3.0;
  r.changes = {appeared, gone, grew};
  return r;
}

}  // namespace flowmesh::testing
