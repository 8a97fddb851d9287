// One exchange over TCP, from either end: the asker connects, writes one
// frame and reads one; the answerer reads one frame, calls the handler and
// writes one. Each side holds a deadline timer that closes the socket, and
// every frame length is checked before its buffer is allocated.
#include <array>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>

#include "node/common/log.h"
#include "node/mesh/asio_transport_core.h"

namespace flowmesh::mesh {
namespace {

using asio::ip::tcp;
using Core = AsioTransport::Core;

std::chrono::nanoseconds Ns(int64_t ns) { return std::chrono::nanoseconds(ns < 0 ? 0 : ns); }

class ServerExchange : public AsioConnection, public std::enable_shared_from_this<ServerExchange> {
 public:
  ServerExchange(std::shared_ptr<Core> core, tcp::socket socket)
      : core_(std::move(core)), socket_(std::move(socket)), timer_(core_->io) {}

  void Start() {
    core_->inbound++;
    id_ = core_->Register(weak_from_this());
    asio::error_code ec;
    tcp::endpoint remote = socket_.remote_endpoint(ec);
    if (ec) return End(kError, "connection gone before it was read: " + ec.message());
    peer_ = ToAddress(remote.address(), remote.port());
    // One deadline for the whole request: a peer trickling a byte at a time
    // gets no more time than one that sends nothing.
    Arm(core_->options.request_timeout_ns, "the request");
    asio::async_read(
        socket_, asio::buffer(header_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void Abort() override { End(kAborted, {}); }

 private:
  enum Outcome { kAnswered, kError, kTimeout, kAborted };

  void OnHeader(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(kError, "reading the request: " + ec.message());
    Result<size_t> len = DecodeFrameHeader(header_, core_->options.max_frame_bytes);
    if (!len.ok()) {
      core_->stats.frames_oversized++;
      return End(kError, len.status().message());
    }
    body_.resize(*len);
    asio::async_read(
        socket_, asio::buffer(body_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnRequest(ec); });
  }

  void OnRequest(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(kError, "reading the request: " + ec.message());
    Transport::ExchangeHandler handler = core_->on_exchange;
    if (!handler) return End(kError, "no exchange handler is set");
    // The handler may answer later (a query reads the store off this
    // thread); it gets as long as a peer gets to send its request.
    Arm(core_->options.request_timeout_ns, "the answer");
    handler(peer_, body_, [self = shared_from_this()](Result<Bytes> response) {
      self->OnAnswer(std::move(response));
    });
  }

  void OnAnswer(Result<Bytes> response) {
    if (ended_) return;  // timed out, aborted, or the handler closed the transport
    if (!response.ok()) return End(kError, "not answered: " + response.status().message());
    Result<FrameHeader> header =
        EncodeFrameHeader(response->size(), core_->options.max_frame_bytes);
    if (!header.ok()) {
      core_->stats.frames_oversized++;
      FM_LOG(Warn, "mesh") << "exchange from " << peer_ << " not answered: response "
                           << header.status().message();
      return End(kError, header.status().message());
    }
    header_ = *header;
    body_ = std::move(*response);
    Arm(core_->options.response_timeout_ns, "the response to be read");
    std::array<asio::const_buffer, 2> buffers{asio::buffer(header_), asio::buffer(body_)};
    asio::async_write(socket_, buffers,
                      [self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (self->ended_) return;
                        if (ec) return self->End(kError, "writing the response: " + ec.message());
                        self->End(kAnswered, {});
                      });
  }

  void Arm(int64_t ns, const char* waiting_for) {
    uint64_t generation = ++timer_generation_;
    timer_.expires_after(Ns(ns));
    timer_.async_wait(
        [self = shared_from_this(), generation, waiting_for](const asio::error_code& ec) {
          // A re-armed timer's old wait may already be queued with success.
          if (ec || self->ended_ || generation != self->timer_generation_) return;
          self->End(kTimeout, std::string("timed out waiting for ") + waiting_for);
        });
  }

  void End(Outcome outcome, const std::string& why) {
    if (ended_) return;
    ended_ = true;
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    core_->inbound--;
    core_->Unregister(id_);
    if (outcome == kAnswered) core_->stats.exchanges_in++;
    if (outcome == kError) core_->stats.inbound_errors++;
    if (outcome == kTimeout) core_->stats.inbound_timeouts++;
    if (outcome == kError || outcome == kTimeout)
      FM_LOG(Debug, "mesh") << "exchange from " << (peer_.empty() ? "?" : peer_) << ": " << why;
  }

  std::shared_ptr<Core> core_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  uint64_t id_ = 0;
  Address peer_;
  FrameHeader header_{};
  Bytes body_;  // the request, then the response
  bool ended_ = false;
};

class ClientExchange : public AsioConnection, public std::enable_shared_from_this<ClientExchange> {
 public:
  ClientExchange(std::shared_ptr<Core> core, tcp::endpoint to, Address to_text, Bytes request,
                 Transport::ExchangeDone done)
      : core_(std::move(core)),
        socket_(core_->io),
        timer_(core_->io),
        to_(to),
        to_text_(std::move(to_text)),
        body_(std::move(request)),
        done_(std::move(done)) {}

  void Start(int64_t timeout_ns) {
    core_->outbound++;
    id_ = core_->Register(weak_from_this());
    timer_.expires_after(Ns(timeout_ns));
    timer_.async_wait([self = shared_from_this(), timeout_ns](const asio::error_code& ec) {
      if (ec || self->ended_) return;
      self->core_->stats.exchange_timeouts++;
      self->End(Unavailable("exchange with " + self->to_text_ + " timed out after " +
                            std::to_string(timeout_ns / 1'000'000) + " ms"));
    });
    // Connect from the bound IP, so a multi-homed answerer sees the address
    // the mesh knows this node by.
    if (!core_->bound.addr.is_unspecified()) {
      asio::error_code ec;
      Result<asio::ip::address> ip = ToAsioAddress(core_->bound.addr, core_->v6);
      socket_.open(to_.protocol(), ec);
      if (!ec && ip.ok()) socket_.bind(tcp::endpoint(*ip, 0), ec);
      if (ec) {
        // Posted, because Exchange() promises `done` never runs inside it.
        Status why = FromAsioError(ec, "exchange with " + to_text_ + ": cannot bind");
        asio::post(core_->io, [self = shared_from_this(), why] { self->End(why); });
        return;
      }
    }
    socket_.async_connect(
        to_, [self = shared_from_this()](const asio::error_code& ec) { self->OnConnect(ec); });
  }

  void Abort() override { End(Unavailable("mesh transport closed")); }

 private:
  Status Error(const asio::error_code& ec, const std::string& doing) {
    return FromAsioError(ec, "exchange with " + to_text_ + ": " + doing);
  }

  void OnConnect(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(Error(ec, "cannot connect"));
    header_ = *EncodeFrameHeader(body_.size(), SIZE_MAX);  // Exchange() checked the cap
    std::array<asio::const_buffer, 2> buffers{asio::buffer(header_), asio::buffer(body_)};
    asio::async_write(
        socket_, buffers,
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(Error(ec, "sending the request"));
    body_ = Bytes();
    asio::async_read(
        socket_, asio::buffer(header_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(const asio::error_code& ec) {
    if (ended_) return;
    if (ec == asio::error::eof)
      return End(Unavailable("exchange with " + to_text_ +
                             ": closed without an answer (the peer refused the request)"));
    if (ec) return End(Error(ec, "reading the response"));
    Result<size_t> len = DecodeFrameHeader(header_, core_->options.max_frame_bytes);
    if (!len.ok()) {
      core_->stats.frames_oversized++;
      return End(len.status().WithContext("exchange with " + to_text_ + ": response"));
    }
    body_.resize(*len);
    asio::async_read(socket_, asio::buffer(body_),
                     [self = shared_from_this()](const asio::error_code& ec, size_t) {
                       if (self->ended_) return;
                       if (ec) return self->End(self->Error(ec, "reading the response"));
                       self->End(std::move(self->body_));
                     });
  }

  void End(Result<Bytes> result) {
    if (ended_) return;
    ended_ = true;
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    core_->outbound--;
    core_->Unregister(id_);
    if (result.ok()) {
      core_->stats.exchanges_out++;
    } else {
      core_->stats.exchange_errors++;
      FM_LOG(Debug, "mesh") << result.status().message();
    }
    if (core_->closed) return;
    Transport::ExchangeDone done = std::move(done_);
    done(std::move(result));
  }

  std::shared_ptr<Core> core_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  tcp::endpoint to_;
  Address to_text_;
  uint64_t id_ = 0;
  FrameHeader header_{};
  Bytes body_;  // the request, then the response
  Transport::ExchangeDone done_;
  bool ended_ = false;
};

}  // namespace

void StartServerExchange(std::shared_ptr<Core> core, tcp::socket socket) {
  std::make_shared<ServerExchange>(std::move(core), std::move(socket))->Start();
}

void StartClientExchange(std::shared_ptr<Core> core, tcp::endpoint to, Address to_text,
                         Bytes request, int64_t timeout_ns, Transport::ExchangeDone done) {
  std::make_shared<ClientExchange>(std::move(core), to, std::move(to_text), std::move(request),
                                   std::move(done))
      ->Start(timeout_ns);
}

}  // namespace flowmesh::mesh
