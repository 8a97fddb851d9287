// A ControlBackend the web listener's tests steer: canned map, look, peers
// and endpoints, the queries it was asked, and a gate that holds RunMap
// (API calls in flight); a client's exchange split into status, head and
// body; a listener over that backend. Header-only: the unit-test binaries glob *_test.cc.
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/control/backend.h"
#include "node/ui/ui_server.h"
#include "tests/unit/http_test_client.h"

namespace flowmesh::testing {

class UiFakeBackend : public ControlBackend {
 public:
  NodeStatus GetStatus() override { return {}; }
  std::vector<OpenConnection> GetConnections() override { return {}; }
  std::shared_ptr<Subscriber> Subscribe() override { return nullptr; }
  Status ScanRecords(const TimeWindow&, const RecordFilter&,
                     const std::function<bool(const ConnRecord&)>&) override {
    return Status::Ok();
  }
  std::vector<EndpointView> GetEndpoints() override { return local_endpoints; }
  std::vector<EndpointView> GetMeshEndpoints() override { return mesh_endpoints; }
  std::vector<PeerView> GetPeers() override { return peers; }
  bool MeshEnabled() override { return mesh; }
  Result<LookResult> RunLook(const LookQuery& q) override {
    std::lock_guard<std::mutex> lock(mu);
    last_look = q;
    return LookResult{q, look_root};
  }
  Result<MapResult> RunMap(const MapQuery& q) override {
    std::unique_lock<std::mutex> lock(mu);
    ++maps_started;
    cv.notify_all();
    cv.wait(lock, [this] { return !hold; });
    last_map = q;
    if (throw_in_map) throw std::runtime_error("formatter bug");
    if (!map_error.ok()) return map_error;
    MapResult r = map;
    r.query = q;
    return r;
  }

  // Holds every RunMap until Release(); WaitStarted(n) until n have begun.
  void Hold() {
    std::lock_guard<std::mutex> lock(mu);
    hold = true;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    hold = false;
    cv.notify_all();
  }
  bool WaitStarted(int n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return maps_started >= n; });
  }

  std::mutex mu;
  std::condition_variable cv;
  bool hold = false;
  int maps_started = 0;
  bool mesh = true;
  MapResult map;
  Status map_error = Status::Ok();
  bool throw_in_map = false;
  MapQuery last_map;
  LookNode look_root;
  LookQuery last_look;
  std::vector<PeerView> peers;
  std::vector<EndpointView> local_endpoints, mesh_endpoints;
};

// One exchange with the listener, split at the end of the head.
struct Reply {
  std::string status_line, head, body;
};

inline Reply Split(const std::string& raw) {
  Reply r;
  size_t end = raw.find("\r\n\r\n");
  r.head = raw.substr(0, end == std::string::npos ? raw.size() : end + 2);
  r.status_line = raw.substr(0, raw.find("\r\n"));
  if (end != std::string::npos) r.body = raw.substr(end + 4);
  return r;
}

inline Reply Ask(uint16_t port, const std::string& request) {
  Client c(port);
  c.Send(request);
  return Split(c.ReadAll());
}

inline Reply Get(uint16_t port, const std::string& target, const std::string& headers = "") {
  return Ask(port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + "\r\n");
}

// A small map: nginx on web-1 called by curl on client-1, and an external.
inline MapResult SampleMap() {
  MapResult r;
  MapNode web;
  web.id = "web-1/wunit:nginx.service";
  web.kind = MapNodeKind::kWorkload;
  web.host = "web-1";
  web.label = "nginx.service";
  web.endpoints = {Endpoint{IpAddr::V4(10, 213, 0, 2), 80}};
  MapNode client;
  client.id = "client-1/wpgid:curl";
  client.kind = MapNodeKind::kWorkload;
  client.host = "client-1";
  client.label = "'curl' pgid 1234";
  MapNode ext;
  ext.id = "ext:203.0.113.9:443";
  ext.kind = MapNodeKind::kExternal;
  ext.label = "203.0.113.9:443";
  r.graph.nodes = {client, web, ext};
  MapEdge e;
  e.from = client.id;
  e.to = web.id;
  e.endpoint = Endpoint{IpAddr::V4(10, 213, 0, 2), 80};
  e.stats.connections = 3;
  e.stats.bytes_tx = 1200;
  r.graph.edges = {e};
  MapMember m;
  m.name = "web-1";
  m.address = "10.213.0.2:7946";
  m.state = "alive";
  m.answered = true;
  r.graph.members = {m};
  return r;
}

inline constexpr char kUiToken[] = "correct-horse-battery-staple";

// A listener on 127.0.0.1 (any port) over a UiFakeBackend with SampleMap,
// with kUiToken or without a token.
class UiListenerTest : public ::testing::Test {
 protected:
  void Start(ui::UiOptions o = {}, bool token = true) {
    o.listen = Endpoint{IpAddr::V4(127, 0, 0, 1), 0};
    if (token) o.token = kUiToken;
    backend_.map = SampleMap();
    Result<std::unique_ptr<ui::UiServer>> s = ui::UiServer::Start(std::move(o), &backend_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    server_ = std::move(*s);
    port_ = server_->local_endpoint().port;
  }

  UiFakeBackend backend_;
  std::unique_ptr<ui::UiServer> server_;
  uint16_t port_ = 0;
};

}  // namespace flowmesh::testing
