// Accepting, reading a request under a deadline, handing it on, writing the answer.
#include "node/http/server.h"

#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <mutex>
#include <unordered_map>

#include "node/common/log.h"
#include "node/common/sched.h"

namespace flowmesh::http {
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
  State(asio::io_context& io, HttpServerOptions o, Handler h,
        std::function<HttpResponse(std::string_view)> a)
      : options(std::move(o)), handler(std::move(h)), answer(std::move(a)), io(&io), acceptor(io) {}
  const HttpServerOptions options;
  const Handler handler;
  // The metrics endpoint's: the raw head in, the answer out (Answer), so it
  // answers exactly the heads it always has.
  const std::function<HttpResponse(std::string_view)> answer;
  // Responders post here from other threads, only while `alive` (under mu).
  asio::io_context* io;
  std::mutex mu;
  bool alive = true;
  tcp::acceptor acceptor;
  // io thread only:
  bool stopping = false;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> open;
  std::unordered_map<std::string, size_t> open_by_peer;  // address -> connections
  std::atomic<uint64_t> requests{0}, rejected{0}, timed_out{0}, too_large{0}, malformed{0};
};

struct Responder::Slot {
  ~Slot();
  std::shared_ptr<HttpServer::State> state;
  std::weak_ptr<Connection> connection;
  std::atomic<bool> sent{false};
};

namespace {

std::string PeerOf(const tcp::socket& s) {
  asio::error_code ec;
  tcp::endpoint e = s.remote_endpoint(ec);
  if (ec) return "?";
  return e.address().is_v6() ? "[" + e.address().to_string() + "]:" + std::to_string(e.port())
                             : e.address().to_string() + ":" + std::to_string(e.port());
}

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<HttpServer::State> state, tcp::socket socket, std::string address)
      : state_(std::move(state)),
        socket_(std::move(socket)),
        deadline_(socket_.get_executor()),
        address_(std::move(address)) {}

  void Start() {
    state_->open.emplace(this, weak_from_this());
    ++state_->open_by_peer[address_];
    Arm(state_->options.timeout);
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
    auto it = state_->open_by_peer.find(address_);
    if (it != state_->open_by_peer.end() && --it->second == 0) state_->open_by_peer.erase(it);
  }

  // The answer, on the io thread; once.
  void Respond(HttpResponse response) {
    if (done_ || responded_) return;
    responded_ = true;
    state_->requests.fetch_add(1, std::memory_order_relaxed);
    if (response.status >= 400)
      FM_LOG(Debug, state_->options.log_tag.c_str())
          << "answered " << response.status << " to "
          << request_.substr(0, std::min(request_.find('\n'), size_t{200}));
    if (state_->options.headers.empty()) {
      reply_ = response.Serialize();
    } else {
      response.headers.insert(response.headers.begin(), state_->options.headers.begin(),
                              state_->options.headers.end());
      reply_ = response.Serialize();
    }
    asio::async_write(
        socket_, asio::buffer(reply_),
        [self = shared_from_this()](const asio::error_code&, size_t) { self->Close(); });
  }

 private:
  void Arm(std::chrono::milliseconds after) {
    deadline_.expires_after(after);
    deadline_.async_wait([self = shared_from_this()](const asio::error_code& ec) {
      if (ec || self->done_) return;
      self->state_->timed_out.fetch_add(1, std::memory_order_relaxed);
      FM_LOG(Debug, self->state_->options.log_tag.c_str())
          << "closing a connection past its deadline ("
          << (self->dispatched_ ? "answer" : "request") << ")";
      self->Close();
    });
  }

  void Read() {
    socket_.async_read_some(asio::buffer(chunk_),
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              if (ec || self->done_) return self->Close();
                              self->request_.append(self->chunk_.data(), n);
                              self->Received();
                            });
  }

  void Fail(std::atomic<uint64_t>& counter, HttpResponse response) {
    counter.fetch_add(1, std::memory_order_relaxed);
    Respond(std::move(response));
  }

  void Received() {
    const HttpServerOptions& o = state_->options;
    if (head_ == 0) {
      head_ = RequestHeadLength(request_);
      size_t limit = o.max_request_bytes;
      if (head_ > limit || (head_ == 0 && request_.size() >= limit))
        return Fail(state_->too_large, TooLarge(limit));
      if (head_ == 0) return Read();
      if (state_->answer) {
        Dispatch();
        return Respond(state_->answer(std::string_view(request_).substr(0, head_)));
      }
      Result<HttpRequest> r = ParseRequestHead(std::string_view(request_).substr(0, head_));
      if (!r.ok()) return Fail(state_->malformed, TextError(400, r.status().message()));
      parsed_ = std::move(r).value();
      if (parsed_.Header("transfer-encoding"))
        return Fail(state_->malformed,
                    TextError(501, "Transfer-Encoding is not accepted; send Content-Length"));
      if (std::optional<std::string_view> cl = parsed_.Header("content-length")) {
        size_t len = 0;
        auto [p, err] = std::from_chars(cl->data(), cl->data() + cl->size(), len);
        if (err != std::errc() || p != cl->data() + cl->size())
          return Fail(state_->malformed, TextError(400, "Content-Length is not a number"));
        if (len > o.max_body_bytes)
          return Fail(state_->too_large,
                      TextError(413, "request body larger than " +
                                         std::to_string(o.max_body_bytes) + " bytes"));
        body_ = len;
      }
    }
    if (request_.size() - head_ < body_) {
      // A client that sends more than it announced gets no more room than that.
      return Read();
    }
    parsed_.body = request_.substr(head_, body_);
    parsed_.peer = PeerOf(socket_);
    Dispatch();
    auto slot = std::make_shared<Responder::Slot>();
    slot->state = state_;
    slot->connection = weak_from_this();
    state_->handler(std::move(parsed_), Responder(std::move(slot)));
  }

  void Dispatch() {
    dispatched_ = true;
    // Without an answer timeout the one deadline from accept goes on (the
    // metrics endpoint's, as it always was).
    if (state_->options.answer_timeout.count() > 0) Arm(state_->options.answer_timeout);
  }

  std::shared_ptr<HttpServer::State> state_;
  tcp::socket socket_;
  asio::steady_timer deadline_;
  const std::string address_;  // the peer's address, without the port
  std::array<char, 1024> chunk_;
  std::string request_;
  size_t head_ = 0;  // the head's length once it has all arrived
  size_t body_ = 0;  // Content-Length
  HttpRequest parsed_;
  std::string reply_;
  bool done_ = false;
  bool responded_ = false;
  bool dispatched_ = false;
};

}  // namespace

void Responder::Send(HttpResponse response) const {
  if (!slot_ || slot_->sent.exchange(true)) return;
  std::lock_guard<std::mutex> lock(slot_->state->mu);
  if (!slot_->state->alive) return;
  asio::post(*slot_->state->io, [c = slot_->connection, r = std::move(response)]() mutable {
    if (std::shared_ptr<Connection> conn = c.lock()) conn->Respond(std::move(r));
  });
}

Responder::Slot::~Slot() {
  if (sent.load()) return;
  std::lock_guard<std::mutex> lock(state->mu);
  if (!state->alive) return;
  asio::post(*state->io, [c = connection] {
    if (std::shared_ptr<Connection> conn = c.lock())
      conn->Respond(TextError(500, "the request was dropped unanswered"));
  });
}

namespace {

void Accept(std::shared_ptr<HttpServer::State> state) {
  state->acceptor.async_accept([state](const asio::error_code& ec, tcp::socket socket) {
    if (state->stopping) return;
    if (ec) {
      // EMFILE and friends fail again at once: pause instead of spinning.
      FM_LOG(Warn, state->options.log_tag.c_str())
          << "accept failed: " << ec.message() << "; retrying in " << kAcceptRetry.count() << "ms";
      auto timer =
          std::make_shared<asio::steady_timer>(state->acceptor.get_executor(), kAcceptRetry);
      timer->async_wait([state, timer](const asio::error_code&) {
        if (!state->stopping) Accept(state);
      });
      return;
    }
    asio::error_code peer_ec;
    tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    std::string address = peer_ec ? "?" : peer.address().to_string();
    const size_t per_peer = state->options.max_connections_per_peer;
    auto mine = state->open_by_peer.find(address);
    const bool peer_full =
        per_peer > 0 && mine != state->open_by_peer.end() && mine->second >= per_peer;
    if (state->open.size() >= state->options.max_connections || peer_full) {
      uint64_t n = state->rejected.fetch_add(1, std::memory_order_relaxed) + 1;
      // Powers of two: the first few are all logged, a flood is not.
      if ((n & (n - 1)) == 0)
        FM_LOG(Warn, state->options.log_tag.c_str())
            << "refused a connection from " << address << ": "
            << (peer_full ? std::to_string(per_peer) + " already open from that address"
                          : std::to_string(state->options.max_connections) + " already open")
            << " (" << n << " refused so far)";
      asio::error_code ignored;
      socket.close(ignored);
    } else {
      std::make_shared<Connection>(state, std::move(socket), std::move(address))->Start();
    }
    Accept(state);
  });
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      std::function<std::string()> render) {
  std::string path = options.path, type = options.content_type;
  return Start(std::move(options), Handler(),
               [path, type, render = std::move(render)](std::string_view head) {
                 return Answer(head, path, type, render);
               });
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options, Handler handler) {
  return Start(std::move(options), std::move(handler), nullptr);
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(
    HttpServerOptions options, Handler handler,
    std::function<HttpResponse(std::string_view)> answer) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  const std::string where = options.listen.ToString();
  FM_ASSIGN_OR_RETURN(asio::ip::address addr, ToAsio(options.listen.addr));
  auto state = std::make_shared<State>(server->io_, std::move(options), std::move(handler),
                                       std::move(answer));
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
  server->thread_ = std::thread([io = &server->io_] {
    SetThreadName("http");
    io->run();
  });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->alive = false;  // Responders on other threads post nothing more
  }
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
  s.too_large = state_->too_large.load(std::memory_order_relaxed);
  s.malformed = state_->malformed.load(std::memory_order_relaxed);
  return s;
}

}  // namespace flowmesh::http
