// One exchange over TCP, from either end: the asker connects, writes one
// frame and reads one; the answerer reads one frame, calls the handler and
// writes one. Each side holds a deadline timer that closes the socket. A
// frame's length is checked against the cap and booked against the shared
// inbound budget before anything is read into it, and its buffer grows only
// as bytes arrive; with an admission check installed, the answerer reads
// nothing past the request's sealed head until the check passes.
#include <algorithm>
#include <array>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstring>
#include <optional>

#include "node/common/log.h"
#include "node/mesh/asio_transport_core.h"

namespace flowmesh::mesh {
namespace {

using asio::ip::tcp;
using Core = AsioTransport::Core;

std::chrono::nanoseconds Ns(int64_t ns) { return std::chrono::nanoseconds(ns < 0 ? 0 : ns); }

// One inbound frame's bytes, allocated as they arrive (doubling, never past
// the length) and booked against the shared budget: in full when its length
// is known if the sender proved the key (or is the peer we asked), otherwise
// growth by growth, so an unproven sender holds budget only for bytes it
// really sent. Handed back to the budget when taken or dropped.
class FrameBuffer {
 public:
  explicit FrameBuffer(Core& core) : core_(core) {}
  ~FrameBuffer() { Reset(); }
  FrameBuffer(const FrameBuffer&) = delete;
  FrameBuffer& operator=(const FrameBuffer&) = delete;

  // False (counted, logged) if an up-front booking does not fit.
  bool Book(size_t len, bool upfront, std::string what) {
    Reset();
    if (upfront && !core_.Reserve(len, len, what)) return false;
    len_ = len;
    reserved_ = upfront ? len : 0;
    upfront_ = upfront;
    booked_ = true;
    what_ = std::move(what);
    return true;
  }
  bool complete() const { return bytes_.size() == len_; }
  // Room for the next read of at most `chunk` bytes; none (counted, logged)
  // if growing would exceed the budget.
  std::optional<asio::mutable_buffer> Next(size_t chunk) {
    size_t filled = bytes_.size();
    size_t want = std::min(std::max<size_t>(chunk, 1), len_ - filled);
    if (filled + want > bytes_.capacity()) {
      size_t before = bytes_.capacity();
      size_t target = std::min(len_, std::max(before * 2, filled + want));
      if (!upfront_) {
        if (!core_.Reserve(target - before, len_, what_)) return std::nullopt;
        reserved_ += target - before;
      }
      bytes_.reserve(target);
      core_.Buffered(bytes_.capacity() - before);
    }
    bytes_.resize(filled + want);
    pending_ = want;
    return asio::buffer(bytes_.data() + filled, want);
  }
  // After a read into Next()'s buffer that got `n` bytes.
  void Commit(size_t n) {
    bytes_.resize(bytes_.size() - pending_ + n);
    pending_ = 0;
  }
  bool Append(std::span<const uint8_t> data) {
    std::optional<asio::mutable_buffer> room = Next(data.size());
    if (!room) return false;
    std::memcpy(room->data(), data.data(), room->size());
    Commit(room->size());
    return true;
  }
  const Bytes& bytes() const { return bytes_; }
  // The frame, no longer counted as buffered.
  Bytes Take() {
    Bytes out = std::move(bytes_);
    bytes_ = Bytes();
    core_.Unbuffered(out.capacity());
    Reset();
    return out;
  }
  void Reset() {
    if (!booked_) return;
    core_.Unbuffered(bytes_.capacity());
    core_.Release(reserved_);
    bytes_ = Bytes();
    booked_ = false;
    len_ = reserved_ = pending_ = 0;
  }

 private:
  Core& core_;
  Bytes bytes_;
  size_t len_ = 0;
  size_t reserved_ = 0;  // of the budget, by this frame
  size_t pending_ = 0;   // bytes of the last Next() not yet committed
  bool upfront_ = false;
  bool booked_ = false;
  std::string what_;  // "a request from 10.0.0.9:40312", for refusals
};

class ServerExchange : public AsioConnection, public std::enable_shared_from_this<ServerExchange> {
 public:
  ServerExchange(std::shared_ptr<Core> core, tcp::socket socket, const IpAddr& ip, Address peer)
      : core_(std::move(core)),
        socket_(std::move(socket)),
        timer_(core_->io),
        ip_(ip),
        peer_(std::move(peer)),
        request_(*core_) {}

  void Start() {
    core_->inbound++;
    id_ = core_->Register(weak_from_this());
    core_->EnterPreauth(id_, ip_, weak_from_this());
    // A stranger gets only a short while to prove the key; the whole request
    // gets longer, but only once the head has.
    Arm(core_->options.preauth_timeout_ns, kPreauthTimeout);
    asio::async_read(
        socket_, asio::buffer(header_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnHeader(ec); });
  }

  void Abort() override { End(kAborted, {}); }

 private:
  enum Outcome { kAnswered, kError, kRefused, kTimeout, kPreauthTimeout, kAborted };

  void OnHeader(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(kError, "reading the request: " + ec.message());
    Result<size_t> len = DecodeFrameHeader(header_, core_->options.max_frame_bytes);
    if (!len.ok()) {
      core_->stats.frames_oversized++;
      core_->Refuse("frame_oversized", "a request from " + peer_ + ": " + len.status().message());
      return End(kRefused, len.status().message());
    }
    len_ = *len;
    if (!core_->admit) {
      // Insecure: nothing to prove, so the peer stays unauthenticated (and
      // limited per address) until its whole request is in.
      request_.Book(len_, /*upfront=*/false, "a request from " + peer_);
      Arm(core_->options.request_timeout_ns, kTimeout);
      return ReadMore();
    }
    if (len_ < core_->head_bytes) {
      core_->stats.admission_failed++;
      std::string why = "request of " + std::to_string(len_) + " bytes is shorter than its " +
                        std::to_string(core_->head_bytes) + "-byte sealed head";
      core_->Refuse("admission_failed", "a request from " + peer_ + ": " + why);
      return End(kRefused, why);
    }
    head_.resize(core_->head_bytes);
    asio::async_read(
        socket_, asio::buffer(head_),
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnHead(ec); });
  }

  void OnHead(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(kError, "reading the request head: " + ec.message());
    // A copy: the check may replace it.
    Transport::Admission admit = core_->admit;
    Status ok = admit ? admit(peer_, head_, len_) : Unavailable("the transport is closing");
    if (ended_) return;
    if (!ok.ok()) {
      core_->stats.admission_failed++;
      core_->Refuse("admission_failed", "a request from " + peer_ + ": " + ok.message());
      return End(kRefused, ok.message());
    }
    core_->LeavePreauth(id_);
    if (!request_.Book(len_, /*upfront=*/true, "a request from " + peer_) ||
        !request_.Append(head_))
      return End(kRefused, "over the inbound budget");
    head_ = Bytes();
    Arm(core_->options.request_timeout_ns, kTimeout);
    ReadMore();
  }

  void ReadMore() {
    if (request_.complete()) return OnRequest();
    std::optional<asio::mutable_buffer> room = request_.Next(core_->options.read_chunk_bytes);
    if (!room) return End(kRefused, "over the inbound budget");
    socket_.async_read_some(*room,
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              if (self->ended_) return;
                              self->request_.Commit(ec ? 0 : n);
                              if (ec)
                                return self->End(kError, "reading the request: " + ec.message());
                              self->ReadMore();
                            });
  }

  void OnRequest() {
    core_->LeavePreauth(id_);
    Transport::ExchangeHandler handler = core_->on_exchange;
    if (!handler) return End(kError, "no exchange handler is set");
    // The handler may answer later (a query reads the store off this
    // thread); it gets as long as a peer gets to send its request.
    Arm(core_->options.request_timeout_ns, kTimeout);
    handler(peer_, request_.bytes(), [self = shared_from_this()](Result<Bytes> response) {
      self->OnAnswer(std::move(response));
    });
    // The handler copied what it keeps: the request leaves the budget.
    request_.Reset();
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
    response_ = std::move(*response);
    Arm(core_->options.response_timeout_ns, kTimeout);
    std::array<asio::const_buffer, 2> buffers{asio::buffer(header_), asio::buffer(response_)};
    asio::async_write(socket_, buffers,
                      [self = shared_from_this()](const asio::error_code& ec, size_t) {
                        if (self->ended_) return;
                        if (ec) return self->End(kError, "writing the response: " + ec.message());
                        self->End(kAnswered, {});
                      });
  }

  void Arm(int64_t ns, Outcome outcome) {
    uint64_t generation = ++timer_generation_;
    timer_.expires_after(Ns(ns));
    timer_.async_wait([self = shared_from_this(), generation, outcome](const asio::error_code& ec) {
      // A re-armed timer's old wait may already be queued with success.
      if (ec || self->ended_ || generation != self->timer_generation_) return;
      self->End(outcome, outcome == kPreauthTimeout
                             ? "timed out waiting for the request's header and head"
                             : "timed out waiting for the request, the answer, or the answer "
                               "to be read");
    });
  }

  void End(Outcome outcome, const std::string& why) {
    if (ended_) return;
    ended_ = true;
    timer_.cancel();
    asio::error_code ignored;
    socket_.close(ignored);
    core_->inbound--;
    core_->LeavePreauth(id_);
    core_->Unregister(id_);
    request_.Reset();
    switch (outcome) {
      case kAnswered: core_->stats.exchanges_in++; break;
      case kError: core_->stats.inbound_errors++; break;
      case kTimeout: core_->stats.inbound_timeouts++; break;
      case kPreauthTimeout:
        core_->stats.preauth_timeouts++;
        core_->Refuse("preauth_timeout", "a connection from " + peer_ + ": " + why);
        break;
      case kRefused:  // counted and logged where refused
      case kAborted: break;
    }
    if (outcome == kError || outcome == kTimeout)
      FM_LOG(Debug, "mesh") << "exchange from " << peer_ << ": " << why;
  }

  std::shared_ptr<Core> core_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  uint64_t id_ = 0;
  IpAddr ip_;
  Address peer_;
  FrameHeader header_{};
  size_t len_ = 0;
  Bytes head_;  // the request's first head_bytes, before admission
  FrameBuffer request_;
  Bytes response_;
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
        request_(std::move(request)),
        response_(*core_),
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
    header_ = *EncodeFrameHeader(request_.size(), SIZE_MAX);  // Exchange() checked the cap
    std::array<asio::const_buffer, 2> buffers{asio::buffer(header_), asio::buffer(request_)};
    asio::async_write(
        socket_, buffers,
        [self = shared_from_this()](const asio::error_code& ec, size_t) { self->OnWritten(ec); });
  }

  void OnWritten(const asio::error_code& ec) {
    if (ended_) return;
    if (ec) return End(Error(ec, "sending the request"));
    request_ = Bytes();
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
      core_->Refuse("frame_oversized",
                    "a response from " + to_text_ + ": " + len.status().message());
      return End(len.status().WithContext("exchange with " + to_text_ + ": response"));
    }
    if (!response_.Book(*len, /*upfront=*/true, "a response from " + to_text_))
      return End(Status(Status::Code::kResourceExhausted,
                        "exchange with " + to_text_ + ": response of " + std::to_string(*len) +
                            " bytes refused: the inbound frame budget is in use"));
    ReadMore();
  }

  void ReadMore() {
    if (response_.complete()) return End(response_.Take());
    // Booked up front: Next() cannot fail.
    socket_.async_read_some(*response_.Next(core_->options.read_chunk_bytes),
                            [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                              if (self->ended_) return;
                              self->response_.Commit(ec ? 0 : n);
                              if (ec) return self->End(self->Error(ec, "reading the response"));
                              self->ReadMore();
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
    response_.Reset();
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
  Bytes request_;
  FrameBuffer response_;
  Transport::ExchangeDone done_;
  bool ended_ = false;
};

}  // namespace

void StartServerExchange(std::shared_ptr<Core> core, tcp::socket socket, const IpAddr& ip,
                         Address peer) {
  std::make_shared<ServerExchange>(std::move(core), std::move(socket), ip, std::move(peer))
      ->Start();
}

void StartClientExchange(std::shared_ptr<Core> core, tcp::endpoint to, Address to_text,
                         Bytes request, int64_t timeout_ns, Transport::ExchangeDone done) {
  std::make_shared<ClientExchange>(std::move(core), to, std::move(to_text), std::move(request),
                                   std::move(done))
      ->Start(timeout_ns);
}

}  // namespace flowmesh::mesh
