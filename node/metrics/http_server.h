// The HTTP server behind --metrics-listen: one thread and io_context of its
// own, so a slow or hostile client never reaches meshd's other threads, one
// request per connection, a bounded request head, a deadline on every
// connection and a cap on how many are open at once.
#pragma once

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "node/common/net.h"
#include "node/common/status.h"

namespace flowmesh::metrics {

struct HttpServerOptions {
  Endpoint listen;  // port 0 = any free port (tests)
  std::string path = "/metrics";
  std::string content_type;
  size_t max_request_bytes = 8192;
  // Prometheus scrapes one connection at a time; a few more leave room for a
  // curl or a second Prometheus, and the cap keeps a flood from costing fds.
  size_t max_connections = 8;
  // From accept to the last byte written: a client that sends nothing, or
  // reads nothing, is closed after this.
  std::chrono::milliseconds timeout{5000};
};

struct HttpServerStats {
  uint64_t requests = 0;  // heads answered, whatever the status
  uint64_t rejected = 0;  // connections closed at once: over max_connections
  uint64_t timed_out = 0;
};

class HttpServer {
 public:
  // Binds and listens (errors name the address), then serves on its own
  // thread. `render` makes the body of each GET; it runs on that thread.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                   std::function<std::string()> render);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Closes the listener and every connection and joins the thread. Not from
  // inside `render`. Idempotent.
  void Stop();

  // The address actually bound (its port, when options.listen had port 0).
  const Endpoint& local_endpoint() const { return local_; }
  HttpServerStats Stats() const;

  struct State;  // shared with connections (http_server.cc)

 private:
  HttpServer() = default;

  asio::io_context io_;
  std::shared_ptr<State> state_;
  Endpoint local_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace flowmesh::metrics
