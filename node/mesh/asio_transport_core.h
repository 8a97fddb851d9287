// Internals shared by asio_transport.cc (sockets, UDP, accepting),
// asio_inbound.cc (slots and the byte budget) and asio_exchange.cc (one TCP
// exchange each way). Not for other users.
#pragma once

#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "node/mesh/asio_transport.h"
#include "node/mesh/refusals.h"

namespace flowmesh::mesh {

// An open TCP exchange, inbound or outbound.
class AsioConnection {
 public:
  virtual ~AsioConnection() = default;
  // Closes the socket at once, without callbacks (the transport is closing,
  // or a member needs the slot).
  virtual void Abort() = 0;
};

// Upper bound for Transport::SetAdmission's head: it is read before the
// peer is known, so it must stay small.
constexpr size_t kMaxAdmissionHeadBytes = 1024;

struct AsioTransport::Core : std::enable_shared_from_this<AsioTransport::Core> {
  Core(asio::io_context& io_context, AsioTransportOptions opts)
      : io(io_context),
        udp(io_context),
        acceptor(io_context),
        accept_retry(io_context),
        options(opts) {}

  void Receive();
  void OnReceive(const asio::error_code& ec, size_t n);
  void Accept();
  void OnAccept(const asio::error_code& ec, asio::ip::tcp::socket socket);
  void Close();
  uint64_t Register(std::weak_ptr<AsioConnection> conn);
  void Unregister(uint64_t id) { connections.erase(id); }

  // asio_inbound.cc: who gets an inbound slot, and the frame byte budget.
  // Whether a connection from `ip` may start; evicts an unauthenticated
  // non-member for a member, counts and logs refusals.
  bool MayConnect(const IpAddr& ip, const Address& peer);
  void EnterPreauth(uint64_t id, const IpAddr& ip, std::weak_ptr<AsioConnection> conn);
  void LeavePreauth(uint64_t id);  // idempotent
  // Books `bytes` of a frame of `frame_len` against the budget; false
  // (counted, logged) if they do not fit.
  bool Reserve(size_t bytes, size_t frame_len, const std::string& what);
  void Release(size_t len) { stats.inbound_reserved_bytes -= len; }
  void Buffered(size_t grew);
  void Unbuffered(size_t freed) { stats.inbound_buffered_bytes -= freed; }
  void Refuse(const char* reason, const std::string& what);

  asio::io_context& io;
  asio::ip::udp::socket udp;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  const AsioTransportOptions options;
  AsioTransportStats stats;
  Endpoint bound;
  Address local;
  bool v6 = false;  // sockets are AF_INET6 (dual-stack when bound to [::])
  PacketHandler on_packet;
  ExchangeHandler on_exchange;
  bool closed = false;
  Bytes recv_buf;
  asio::ip::udp::endpoint recv_from;
  std::unordered_map<uint64_t, std::weak_ptr<AsioConnection>> connections;
  uint64_t next_connection = 1;
  size_t inbound = 0;
  size_t outbound = 0;

  size_t head_bytes = 0;
  Transport::Admission admit;
  std::unordered_set<IpAddr, IpAddrHash> members;
  struct Preauth {
    IpAddr ip;
    std::weak_ptr<AsioConnection> conn;
  };
  // Unauthenticated connections by id, which is their age: oldest first.
  std::map<uint64_t, Preauth> preauth;
  std::unordered_map<IpAddr, size_t, IpAddrHash> preauth_by_ip;
  RefusalLog refusal_log;
};

// "ip:port" for a socket address, v4-mapped IPv6 folded to IPv4.
Address ToAddress(const asio::ip::address& addr, uint16_t port);
// A mesh address as a socket address for our sockets' family.
Result<asio::ip::address> ToAsioAddress(const IpAddr& ip, bool v6_socket);
Status FromAsioError(const asio::error_code& ec, const std::string& what);

void StartServerExchange(std::shared_ptr<AsioTransport::Core> core, asio::ip::tcp::socket socket,
                         const IpAddr& ip, Address peer);
void StartClientExchange(std::shared_ptr<AsioTransport::Core> core, asio::ip::tcp::endpoint to,
                         Address to_text, Bytes request, int64_t timeout_ns,
                         Transport::ExchangeDone done);

}  // namespace flowmesh::mesh
