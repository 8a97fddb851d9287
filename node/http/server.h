// meshd's HTTP servers (--metrics-listen, --ui-listen): one thread and
// io_context of their own, so a slow or hostile client never reaches meshd's
// other threads, one request per connection, a bounded request head and body,
// a deadline on every connection and a cap on how many are open at once. The
// handler gets a parsed request and answers through a Responder, at once or
// later from any thread (the map takes seconds: the io thread never waits).
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/http/http.h"

namespace flowmesh::http {

struct HttpServerOptions {
  Endpoint listen;  // port 0 = any free port (tests)
  // For Start(options, render) alone: the one path served, and its type.
  std::string path = "/metrics";
  std::string content_type;
  size_t max_request_bytes = 8192;  // the head; 431 beyond
  // A body (Content-Length) beyond this is 413; 0 = no body is accepted.
  size_t max_body_bytes = 0;
  // Prometheus scrapes one connection at a time; a few more leave room for a
  // curl or a second Prometheus, and the cap keeps a flood from costing fds.
  size_t max_connections = 8;
  // Of those, how many one client address may hold (0 = no cap of its own):
  // without it one host with a slowloris takes every slot.
  size_t max_connections_per_peer = 0;
  // From accept to the whole request read: a client that sends nothing, or
  // one byte a second, is closed after this.
  std::chrono::milliseconds timeout{5000};
  // From the request read to the last byte of the answer written (the
  // handler's work and a client that reads nothing); 0 = `timeout` covers
  // everything from accept to the last byte.
  std::chrono::milliseconds answer_timeout{0};
  std::string log_tag = "metrics";  // log lines name the server
  // Sent with every response, the server's own errors too (security headers).
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpServerStats {
  uint64_t requests = 0;  // heads answered, whatever the status
  uint64_t rejected = 0;  // connections closed at once: over max_connections(_per_peer)
  uint64_t timed_out = 0;
  uint64_t too_large = 0;  // 431 and 413
  uint64_t malformed = 0;  // 400 before the handler
};

// Answers one request once; copies share the one answer (the first Send
// wins). Safe from any thread; a Responder dropped unanswered closes the
// connection with a 500. Sending after the connection closed is a no-op.
class Responder {
 public:
  struct Slot;
  explicit Responder(std::shared_ptr<Slot> slot) : slot_(std::move(slot)) {}
  void Send(HttpResponse response) const;

 private:
  std::shared_ptr<Slot> slot_;
};

using Handler = std::function<void(HttpRequest request, Responder responder)>;

class HttpServer {
 public:
  // Binds and listens (errors name the address), then serves on its own
  // thread. `handler` runs on that thread for every well-formed request; it
  // must not block (hand slow work to another thread with the Responder).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, Handler handler);
  // The metrics endpoint: GET/HEAD of options.path answered with `render()`
  // (on the io thread) as options.content_type (Answer).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   std::function<std::string()> render);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Closes the listener and every connection and joins the thread. Not from
  // inside the handler. Idempotent.
  void Stop();

  // The address actually bound (its port, when options.listen had port 0).
  const Endpoint& local_endpoint() const { return local_; }
  HttpServerStats Stats() const;

  struct State;  // shared with connections (server.cc)

 private:
  HttpServer() = default;
  static Result<std::unique_ptr<HttpServer>> Start(
      HttpServerOptions options, Handler handler,
      std::function<HttpResponse(std::string_view)> answer);

  asio::io_context io_;
  std::shared_ptr<State> state_;
  Endpoint local_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace flowmesh::http
