// meshd's web listener (--ui-listen): the embedded page, the login, and the
// JSON API answered on a small worker pool so that a map that takes seconds
// never holds the io thread, with a cap on API calls in flight.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "node/control/backend.h"
#include "node/control/frame.h"
#include "node/http/server.h"
#include "node/ui/auth.h"

namespace flowmesh::ui {

// What the page's fetches send with every API call (docs/api.md "Access").
inline constexpr std::string_view kApiHeader = "X-Flowmesh-Api";
inline constexpr std::string_view kApiHeaderLower = "x-flowmesh-api";
// Sent with every answer. tests/ui/fixture_server.py reads these literals
// from ui_server.h and sends the same, so the page's tests run under meshd's
// policy. img-src data:: the page exports its drawing as PNG/SVG data URLs.
inline constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

struct UiOptions {
  Endpoint listen;
  std::optional<std::string> token;  // required on every request when set (Start takes it)
  // A page is a few files and a refresh every few seconds; 64 leaves room for
  // several browsers and costs at most 64 fds and buffers of 16 KB.
  size_t max_connections = 64;
  // A browser opens about six at once; more from one address is a flood
  // (behind a reverse proxy or SSH tunnel every browser shares one address).
  size_t max_connections_per_peer = 8;
  size_t max_head_bytes = 16 * 1024;
  size_t max_login_bytes = 4096;  // the POST /login form
  // Accept to the whole request head: a slowloris holds a slot this long.
  std::chrono::milliseconds request_timeout{5000};
  // The map's own deadline is its `timeout` parameter (5 s by default); this
  // bounds the worst case, a client that asks for more and reads nothing.
  std::chrono::milliseconds answer_timeout{70000};
  size_t workers = 2;
  size_t max_in_flight = 4;  // API calls queued or running; 503 beyond
  // An API answer past this is a 500 that says so (the control socket's cap).
  size_t max_api_bytes = kMaxResponseBytes;
  // The clock the API's windows are relative to (tests fix it).
  std::function<int64_t()> now_ns;
};

struct UiStats {
  std::map<int, uint64_t> requests;  // by status code
  uint64_t auth_failures = 0;
  std::map<std::string, uint64_t> rejected;  // by reason
};

class UiServer {
 public:
  // Listens (errors name the address); the backend must outlive Stop().
  static Result<std::unique_ptr<UiServer>> Start(UiOptions options, ControlBackend* backend);
  ~UiServer();  // Stop()
  // Stops listening, drops the queued API calls, waits for the running ones
  // (each bounded by its own timeout, at most 60 s: they use the backend, so
  // they cannot be left behind), joins the workers.
  void Stop();

  const Endpoint& local_endpoint() const { return http_->local_endpoint(); }
  UiStats Stats() const;
  // "on: http://IP:PORT/ (token required)" for meshctl status.
  std::string StatusLine() const;
  // flowmesh_ui_requests_total{code}, flowmesh_ui_auth_failures_total,
  // flowmesh_ui_rejected_total{reason}, in the text exposition format.
  std::string RenderMetrics() const;

 private:
  UiServer(UiOptions options, ControlBackend* backend, std::optional<std::string> token);
  // Without a token: is the Host header one of this listener's names?
  bool HostAllowed(const http::HttpRequest& request) const;
  // Sec-Fetch-Site (or Origin) says another site's page sent it.
  bool CrossSite(const http::HttpRequest& request) const;
  // An /api/ request the page (or curl) made, not another site's <img> or form.
  bool ApiCallFromThePage(const http::HttpRequest& request) const;
  void Handle(http::HttpRequest request, http::Responder responder);
  void Send(const http::Responder& responder, http::HttpResponse response, bool api);
  void Reject(const std::string& reason);
  bool Enqueue(std::function<void()> job);
  void Work();

  const UiOptions options_;
  ControlBackend* const backend_;
  Auth auth_;
  std::unique_ptr<http::HttpServer> http_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  size_t in_flight_ = 0;  // queued + running
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::map<int, uint64_t> by_code_;
  std::map<std::string, uint64_t> rejected_;
};

}  // namespace flowmesh::ui
