// Binding, UDP packets, accepting exchanges and shutdown. The exchanges
// themselves are in asio_exchange.cc.
#include "node/mesh/asio_transport.h"

#include <sys/socket.h>

#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <cerrno>

#include "node/common/log.h"
#include "node/mesh/asio_transport_core.h"

namespace flowmesh::mesh {
namespace {

using asio::ip::tcp;
using asio::ip::udp;

// After an accept error (usually EMFILE), wait before trying again rather
// than spinning on a listener that keeps failing.
constexpr std::chrono::milliseconds kAcceptRetry{100};
// With port 0, UDP picks the port and TCP must get the same one; another
// program may hold it for TCP, so a few fresh tries.
constexpr int kEphemeralTries = 16;

std::string BindHint(int err, const Endpoint& bind) {
  switch (err) {
    case EADDRINUSE: return "; another meshd? choose --bind";
    case EADDRNOTAVAIL:
      return "; is " + bind.addr.ToString() + " an address of this host? choose --bind";
    case EACCES: return "; ports below 1024 need root or CAP_NET_BIND_SERVICE; choose --bind";
    default: return "; choose --bind";
  }
}

// "cannot bind UDP 10.0.0.1:7946: Address already in use; another meshd? choose --bind"
Status BindError(const char* proto, const Endpoint& at, const asio::error_code& ec) {
  Status s =
      Status::FromErrno(ec.value(), std::string("cannot bind ") + proto + " " + at.ToString());
  return Status(s.code(), s.message() + BindHint(ec.value(), at));
}

}  // namespace

Address ToAddress(const asio::ip::address& addr, uint16_t port) {
  Endpoint ep;
  ep.port = port;
  if (addr.is_v4()) {
    auto b = addr.to_v4().to_bytes();
    ep.addr = IpAddr::V4(b[0], b[1], b[2], b[3]);
  } else {
    auto b = addr.to_v6().to_bytes();
    ep.addr = IpAddr::FromRaw(AF_INET6, b.data());
  }
  return ep.ToString();
}

Result<asio::ip::address> ToAsioAddress(const IpAddr& ip, bool v6_socket) {
  if (ip.is_v4()) {
    asio::ip::address_v4::bytes_type b{ip.bytes[0], ip.bytes[1], ip.bytes[2], ip.bytes[3]};
    asio::ip::address_v4 v4(b);
    if (!v6_socket) return asio::ip::address(v4);
    return asio::ip::address(asio::ip::make_address_v6(asio::ip::v4_mapped, v4));
  }
  if (!v6_socket)
    return InvalidArgument("cannot reach IPv6 address " + ip.ToString() +
                           " from an IPv4 --bind; bind to [::]:port for both");
  asio::ip::address_v6::bytes_type b;
  std::copy(ip.bytes.begin(), ip.bytes.end(), b.begin());
  return asio::ip::address(asio::ip::address_v6(b));
}

Status FromAsioError(const asio::error_code& ec, const std::string& what) {
  if (ec.category() == asio::system_category()) return Status::FromErrno(ec.value(), what);
  if (ec == asio::error::eof) return Unavailable(what + ": connection closed by peer");
  return Unavailable(what + ": " + ec.message());
}

uint64_t AsioTransport::Core::Register(std::weak_ptr<AsioConnection> conn) {
  uint64_t id = next_connection++;
  connections.emplace(id, std::move(conn));
  return id;
}

void AsioTransport::Core::Receive() {
  udp.async_receive_from(asio::buffer(recv_buf), recv_from,
                         [self = shared_from_this()](const asio::error_code& ec, size_t n) {
                           self->OnReceive(ec, n);
                         });
}

void AsioTransport::Core::OnReceive(const asio::error_code& ec, size_t n) {
  if (closed) return;
  if (ec) {
    // ECONNREFUSED and friends (ICMP for an earlier send) are not fatal.
    stats.packet_errors++;
    FM_LOG(Debug, "mesh") << "UDP receive on " << local << ": " << ec.message();
  } else if (n > options.max_packet_bytes) {
    // The buffer is one byte larger than the limit, so n > limit means the
    // datagram was at least that large (and truncated by the kernel).
    stats.packets_oversized++;
    Refuse("packet_oversized",
           "a datagram from " + ToAddress(recv_from.address(), recv_from.port()) +
               ": over the limit of " + std::to_string(options.max_packet_bytes) + " bytes");
  } else if (n == 0) {
    stats.packets_malformed++;
    Refuse("packet_empty",
           "an empty datagram from " + ToAddress(recv_from.address(), recv_from.port()));
  } else {
    stats.packets_in++;
    stats.bytes_in += n;
    if (on_packet) {
      // A copy of the handler: it may replace the handlers while it runs.
      PacketHandler handler = on_packet;
      handler(ToAddress(recv_from.address(), recv_from.port()),
              std::span<const uint8_t>(recv_buf.data(), n));
    }
  }
  if (!closed) Receive();
}

void AsioTransport::Core::Accept() {
  acceptor.async_accept(
      [self = shared_from_this()](const asio::error_code& ec, tcp::socket socket) {
        self->OnAccept(ec, std::move(socket));
      });
}

void AsioTransport::Core::OnAccept(const asio::error_code& ec, tcp::socket socket) {
  if (closed) return;
  if (ec) {
    FM_LOG(Warn, "mesh") << "accepting on " << local << ": " << ec.message() << "; retrying in "
                         << kAcceptRetry.count() << " ms";
    accept_retry.expires_after(kAcceptRetry);
    accept_retry.async_wait([self = shared_from_this()](const asio::error_code& wait_ec) {
      if (!wait_ec && !self->closed) self->Accept();
    });
    return;
  }
  asio::error_code remote_ec;
  tcp::endpoint remote = socket.remote_endpoint(remote_ec);
  if (remote_ec) {
    stats.inbound_errors++;
    FM_LOG(Debug, "mesh") << "connection gone before it was read: " << remote_ec.message();
  } else {
    Address peer = ToAddress(remote.address(), remote.port());
    IpAddr ip = Endpoint::Parse(peer)->addr;  // ToAddress spells what Parse reads
    if (MayConnect(ip, peer)) {
      StartServerExchange(shared_from_this(), std::move(socket), ip, std::move(peer));
    }
  }
  if (socket.is_open()) {
    asio::error_code ignored;
    socket.close(ignored);
  }
  Accept();
}

void AsioTransport::Core::Close() {
  if (closed) return;
  closed = true;
  on_packet = nullptr;
  on_exchange = nullptr;
  admit = nullptr;
  asio::error_code ignored;
  udp.close(ignored);
  acceptor.close(ignored);
  accept_retry.cancel();
  // Abort() unregisters, so walk a copy.
  auto open = connections;
  for (auto& [id, weak] : open)
    if (auto conn = weak.lock()) conn->Abort();
  connections.clear();
}

Result<std::unique_ptr<AsioTransport>> AsioTransport::Bind(asio::io_context& io,
                                                           const Endpoint& bind,
                                                           AsioTransportOptions options) {
  const bool v6 = !bind.addr.is_v4();
  FM_ASSIGN_OR_RETURN(asio::ip::address ip, ToAsioAddress(bind.addr, v6));
  Status last;
  for (int attempt = 0; attempt < kEphemeralTries; attempt++) {
    auto core = std::make_shared<Core>(io, options);
    core->v6 = v6;
    asio::error_code ec;
    core->udp.open(v6 ? udp::v6() : udp::v4(), ec);
    if (!ec && v6 && bind.addr.is_unspecified()) core->udp.set_option(asio::ip::v6_only(false), ec);
    if (!ec) core->udp.bind(udp::endpoint(ip, bind.port), ec);
    if (ec) return BindError("UDP", bind, ec);
    uint16_t port = core->udp.local_endpoint(ec).port();
    if (ec) return FromAsioError(ec, "mesh transport: cannot read the bound UDP port");
    Endpoint at = bind;
    at.port = port;

    core->acceptor.open(v6 ? tcp::v6() : tcp::v4(), ec);
    // SO_REUSEADDR lets a restarted meshd bind while old connections linger
    // in TIME_WAIT; it does not allow two listeners on one port.
    if (!ec) core->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec && v6 && bind.addr.is_unspecified())
      core->acceptor.set_option(asio::ip::v6_only(false), ec);
    if (!ec) core->acceptor.bind(tcp::endpoint(ip, port), ec);
    if (ec == asio::error::address_in_use && bind.port == 0) {
      last = BindError("TCP", at, ec);
      continue;
    }
    if (!ec) core->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return BindError("TCP", at, ec);

    // UDP sends never block the io thread: a full socket buffer drops the
    // packet, which the protocols already tolerate.
    core->udp.non_blocking(true, ec);
    core->bound = at;
    core->local = at.ToString();
    core->recv_buf.resize(options.max_packet_bytes + 1);
    core->Receive();
    core->Accept();
    FM_LOG(Info, "mesh") << "listening on " << core->local << " (UDP and TCP)";
    return std::unique_ptr<AsioTransport>(new AsioTransport(std::move(core)));
  }
  return last;
}

AsioTransport::AsioTransport(std::shared_ptr<Core> core) : core_(std::move(core)) {}
AsioTransport::~AsioTransport() { core_->Close(); }

const AsioTransportStats& AsioTransport::stats() const { return core_->stats; }
size_t AsioTransport::inbound_connections() const { return core_->inbound; }
size_t AsioTransport::outbound_exchanges() const { return core_->outbound; }
const Address& AsioTransport::LocalAddress() const { return core_->local; }
size_t AsioTransport::MaxPacketBytes() const { return core_->options.max_packet_bytes; }

size_t AsioTransport::preauth_connections() const { return core_->preauth.size(); }

void AsioTransport::SetAdmission(size_t head_bytes, Admission admit) {
  if (admit && (head_bytes == 0 || head_bytes > kMaxAdmissionHeadBytes)) {
    // A programming error, not a peer's: refuse everything rather than read
    // an unchecked head of any size.
    FM_LOG(Error, "mesh") << "admission head of " << head_bytes << " bytes is outside 1.."
                          << kMaxAdmissionHeadBytes << "; refusing every exchange";
    head_bytes = kMaxAdmissionHeadBytes;
    admit = [](const Address&, std::span<const uint8_t>, size_t) {
      return Internal("no valid admission check");
    };
  }
  core_->head_bytes = admit ? head_bytes : 0;
  core_->admit = std::move(admit);
}

void AsioTransport::SetKnownPeers(std::vector<IpAddr> members) {
  core_->members = std::unordered_set<IpAddr, IpAddrHash>(members.begin(), members.end());
}

void AsioTransport::SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) {
  core_->on_packet = std::move(on_packet);
  core_->on_exchange = std::move(on_exchange);
}

void AsioTransport::SendPacket(const Address& to, Bytes packet) {
  Core& c = *core_;
  if (c.closed) return;
  if (packet.size() > c.options.max_packet_bytes) {
    c.stats.packets_oversized++;
    return;
  }
  Result<Endpoint> ep = Endpoint::Parse(to);
  Result<asio::ip::address> ip =
      ep.ok() ? ToAsioAddress(ep->addr, c.v6) : Result<asio::ip::address>(ep.status());
  if (!ip.ok()) {
    c.stats.packet_errors++;
    FM_LOG(Debug, "mesh") << "packet to " << to << " dropped: " << ip.status().message();
    return;
  }
  asio::error_code ec;
  size_t n = c.udp.send_to(asio::buffer(packet), udp::endpoint(*ip, ep->port), 0, ec);
  if (ec) {
    c.stats.packet_errors++;
    FM_LOG(Debug, "mesh") << "packet to " << to << " dropped: " << ec.message();
    return;
  }
  c.stats.packets_out++;
  c.stats.bytes_out += n;
}

void AsioTransport::Exchange(const Address& to, Bytes request, int64_t timeout_ns,
                             ExchangeDone done) {
  Core& c = *core_;
  auto fail = [&](Status why) {
    c.stats.exchange_errors++;
    // Posted: the caller may hold locks or state that `done` also touches.
    asio::post(c.io, [core = core_, done = std::move(done), why = std::move(why)]() {
      if (!core->closed) done(why);
    });
  };
  if (c.closed) return;
  Result<Endpoint> ep = Endpoint::Parse(to);
  Result<asio::ip::address> ip =
      ep.ok() ? ToAsioAddress(ep->addr, c.v6) : Result<asio::ip::address>(ep.status());
  if (!ip.ok()) return fail(ip.status().WithContext("exchange with " + to));
  if (c.outbound >= c.options.max_outbound_exchanges)
    return fail(Status(Status::Code::kResourceExhausted,
                       "exchange with " + to + ": " +
                           std::to_string(c.options.max_outbound_exchanges) +
                           " exchanges already in flight"));
  if (request.size() > c.options.max_frame_bytes) {
    c.stats.frames_oversized++;
    return fail(Status(Status::Code::kResourceExhausted,
                       "exchange with " + to + ": request of " + std::to_string(request.size()) +
                           " bytes exceeds the frame limit of " +
                           std::to_string(c.options.max_frame_bytes)));
  }
  StartClientExchange(core_, tcp::endpoint(*ip, ep->port), to, std::move(request), timeout_ns,
                      std::move(done));
}

}  // namespace flowmesh::mesh
