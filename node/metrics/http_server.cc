// Accepting, reading a request head under a deadline, writing the answer.
#include "node/metrics/http_server.h"

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <unordered_map>

#include "node/common/log.h"
#include "node/metrics/http.h"

namespace flowmesh::metrics {
namespace {

using asio::ip::tcp;
constexpr std::chrono::milliseconds kAcceptRetry{100};

Result<asio::ip::address> ToAsio(const IpAddr& ip) {
  if (ip.is_v4()) {
    asio::ip::address_v4::bytes_type b{ip.bytes[0], ip.bytes[1], ip.bytes[2], ip.bytes[3]};
    return asio::ip::address(asio::ip::address_v4(b));
  }
  asio::ip::address_v6::bytes_type b;
  std::copy(ip.bytes.begin(), ip.bytes.end(), b.begin());
  return asio::ip::address(asio::ip::address_v6(b));
}

Status FromAsio(const asio::error_code& ec, const std::string& what) {
  if (ec.category() == asio::system_category()) return Status::FromErrno(ec.value(), what);
  return IoError(what + ": " + ec.message());
}

// One accepted connection; file-local, like everything but State.
class Connection;

}  // namespace

struct HttpServer::State {
  State(asio::io_context& io, HttpServerOptions o, std::function<std::string()> r)
      : options(std::move(o)), render(std::move(r)), acceptor(io) {}
  const HttpServerOptions options;
  const std::function<std::string()> render;
  tcp::acceptor acceptor;
  // io thread only:
  bool stopping = false;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> open;
  std::atomic<uint64_t> requests{0}, rejected{0}, timed_out{0};
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServer::State> state, tcp::socket socket)
      : state_(std::move(state)), socket_(std::move(socket)), deadline_(socket_.get_executor()) {}

  void Start() {
    state_->open.emplace(this, weak_from_this());
    deadline_.expires_after(state_->options.timeout);
    deadline_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->done_) return;
      self->state_->timed_out.fetch_add(1, std::memory_order_relaxed);
      FM_LOG(Debug, "metrics") << "closing a connection idle past "
                               << self->state_->options.timeout.count() << "ms";
      self->Close();
    });
    Read();
  }

  void Close() {
    if (done_) return;
    done_ = true;
    asio::error_code ignored;
    deadline_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    state_->open.erase(this);
  }

 private:
  void Read() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              if (ec || self->done_) return self->Close();
                              self->request_.append(self->chunk_.data(), n);
                              size_t head = RequestHeadLength(self->request_);
                              size_t limit = self->state_->options.max_request_bytes;
                              if (head > limit || (head == 0 && self->request_.size() >= limit))
                                return self->Respond(TooLarge(limit));
                              if (head == 0) return self->Read();
                              const HttpServerOptions& o = self->state_->options;
                              self->Respond(Answer(std::string_view(self->request_).substr(0, head),
                                                   o.path, o.content_type, self->state_->render));
                            });
  }

  void Respond(const HttpResponse& response) {
    state_->requests.fetch_add(1, std::memory_order_relaxed);
    if (response.status != 200)
      FM_LOG(Debug, "metrics") << "answered " << response.status << " to "
                               << request_.substr(0, request_.find('\n'));
    reply_ = response.Serialize();
    asio::async_write(
        socket_, asio::buffer(reply_),
        [self = shared_from_this()](const asio::error_code&, size_t) { self->Close(); });
  }

  std::shared_ptr<HttpServer::State> state_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  std::array<char, 1024> chunk_;
  std::string request_;
  std::string reply_;
  bool done_ = false;
};

void Accept(std::shared_ptr<HttpServer::State> state) {
  state->acceptor.async_accept([state](const asio::error_code& ec, tcp::socket socket) {
    if (state->stopping) return;
    if (ec) {
      // EMFILE and friends fail again at once: pause instead of spinning.
      FM_LOG(Warn, "metrics") << "accept failed: " << ec.message() << "; retrying in "
                              << kAcceptRetry.count() << "ms";
      auto timer =
          std::make_shared<asio::steady_timer>(state->acceptor.get_executor(), kAcceptRetry);
      timer->async_wait([state, timer](const asio::error_code&) {
        if (!state->stopping) Accept(state);
      });
      return;
    }
    if (state->open.size() >= state->options.max_connections) {
      uint64_t n = state->rejected.fetch_add(1, std::memory_order_relaxed) + 1;
      // Powers of two: the first few are all logged, a flood is not.
      if ((n & (n - 1)) == 0)
        FM_LOG(Warn, "metrics") << "refused a connection: " << state->options.max_connections
                                << " already open (" << n << " refused so far)";
      asio::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Connection>(state, std::move(socket))->Start();
    }
    Accept(state);
  });
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      std::function<std::string()> render) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  const std::string where = options.listen.ToString();
  FM_ASSIGN_OR_RETURN(asio::ip::address addr, ToAsio(options.listen.addr));
  auto state = std::make_shared<State>(server->io_, std::move(options), std::move(render));
  tcp::endpoint endpoint(addr, state->options.listen.port);
  asio::error_code ec;
  state->acceptor.open(endpoint.protocol(), ec);
  if (ec) return FromAsio(ec, "cannot create a TCP socket for " + where);
  // A restarted meshd must not wait out TIME_WAIT of its last scrape.
  state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  state->acceptor.bind(endpoint, ec);
  if (ec) return FromAsio(ec, "cannot bind " + where);
  state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return FromAsio(ec, "cannot listen on " + where);
  server->local_ = state->options.listen;
  server->local_.port = state->acceptor.local_endpoint(ec).port();
  server->state_ = state;
  Accept(state);
  server->thread_ = std::thread([io = &server->io_] { io->run(); });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!state_) return;
  // Closing everything leaves the io_context without work, so run() returns.
  asio::post(io_, [state = state_] {
    state->stopping = true;
    asio::error_code ignored;
    state->acceptor.close(ignored);
    std::vector<std::shared_ptr<Connection>> open;
    for (auto& [ptr, weak] : state->open)
      if (auto c = weak.lock()) open.push_back(std::move(c));
    for (auto& c : open) c->Close();
  });
  if (thread_.joinable()) thread_.join();
}

HttpServerStats HttpServer::Stats() const {
  HttpServerStats s;
  if (!state_) return s;
  s.requests = state_->requests.load(std::memory_order_relaxed);
  s.rejected = state_->rejected.load(std::memory_order_relaxed);
  s.timed_out = state_->timed_out.load(std::memory_order_relaxed);
  return s;
}

}  // namespace flowmesh::metrics
