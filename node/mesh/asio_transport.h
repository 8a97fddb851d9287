// The mesh Transport in meshd: one UDP socket for packets (probes, gossip) and
// a TCP listener on the same ip:port for exchanges (push-pull sync, queries),
// all on one asio::io_context. An exchange is one connection carrying one
// length-prefixed request and one length-prefixed response (frame.h).
//
// Everything is bounded: datagram size, frame size (checked before
// allocation), concurrent connections both ways, and the time a peer may take
// to send its request or read our answer, so neither a slow peer (slowloris)
// nor a hostile one can pin memory or descriptors. Whatever is refused is
// counted in stats() and logged at a rate limit (refusals.h).
//
// A peer has not proved the cluster key until its request's sealed head has
// passed the admission check (Transport::SetAdmission); without a check
// (insecure mode) it never does, and its connection stays "unauthenticated"
// until its whole request has arrived. Unauthenticated connections get a
// short deadline, a few slots per source address and a small share of all
// slots; a known member (SetKnownPeers) evicts the oldest one of a non-member
// when they are full. Frame buffers grow as bytes arrive, and all frames
// being read (requests and responses) share one byte budget, so what a
// stranger can make this node hold is small and globally bounded.
//
// Call every method on the io_context's thread; the io_context must outlive
// the transport. Destroying the transport closes every socket and drops
// pending callbacks: none runs afterwards.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "node/common/net.h"
#include "node/mesh/frame.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

struct AsioTransportOptions {
  // Largest datagram accepted or sent; fits an Ethernet MTU with headers.
  size_t max_packet_bytes = 1400;
  size_t max_frame_bytes = kMaxStreamFrameBytes;
  size_t max_inbound_connections = 256;
  size_t max_outbound_exchanges = 256;
  // Of max_inbound_connections, how many may be unauthenticated at once, and
  // how many of those may come from one address (known members are exempt
  // from the per-address limit).
  size_t max_preauth_connections = 64;
  size_t max_preauth_per_source = 8;
  // All frames being read at once, requests and responses together, may
  // hold at most this many bytes; a frame that would exceed it is refused.
  // A frame from a peer that proved the key (and a response) is booked in
  // full when its length arrives, an unproven one as its bytes arrive.
  size_t inbound_budget_bytes = 32 * 1024 * 1024;
  // Frames are read (and their buffers grown) at most this much at a time.
  size_t read_chunk_bytes = 64 * 1024;
  // From accept until the frame header and the sealed head (or, insecure,
  // the header) have arrived: a peer that says nothing is cut off here.
  int64_t preauth_timeout_ns = 2'000'000'000;
  // From then until the whole request has arrived; a peer that trickles
  // bytes gets no more time than one that stops.
  int64_t request_timeout_ns = 5'000'000'000;
  // For writing our response, which may be a few MiB to a slow reader.
  int64_t response_timeout_ns = 10'000'000'000;
};

struct AsioTransportStats {
  uint64_t packets_in = 0;
  uint64_t bytes_in = 0;  // UDP payload bytes
  uint64_t packets_out = 0;
  uint64_t bytes_out = 0;
  uint64_t packets_oversized = 0;  // datagrams over max_packet_bytes (either way), dropped
  uint64_t packets_malformed = 0;  // empty datagrams, dropped
  uint64_t packet_errors = 0;      // unparseable address, send or receive failure
  uint64_t exchanges_out = 0;      // answered exchanges we asked
  uint64_t exchange_errors = 0;    // our exchanges that failed (refused, timeout, reset, bad frame)
  uint64_t exchange_timeouts = 0;  // of which timed out
  uint64_t exchanges_in = 0;       // requests answered
  uint64_t inbound_errors = 0;     // inbound connections closed early (reset, handler error)
  uint64_t inbound_timeouts = 0;   // inbound connections cut off by a timeout
  uint64_t frames_oversized = 0;   // length headers over max_frame_bytes, either way
  uint64_t connections_rejected = 0;  // inbound over max_inbound_connections
  uint64_t preauth_per_source = 0;    // refused: the address holds max_preauth_per_source
  uint64_t preauth_full = 0;          // refused: max_preauth_connections taken, not a member
  uint64_t preauth_evicted = 0;       // unauthenticated, closed to let a known member in
  uint64_t preauth_timeouts = 0;      // no header and head within preauth_timeout_ns
  uint64_t admission_failed = 0;      // the admission check refused the head (or it was short)
  uint64_t budget_refused = 0;        // frames over what is left of inbound_budget_bytes
  // Frame buffers, requests and responses: what frames being read hold of
  // the budget (never above inbound_budget_bytes), what is allocated now,
  // and the most ever allocated at once.
  uint64_t inbound_reserved_bytes = 0;
  uint64_t inbound_buffered_bytes = 0;
  uint64_t inbound_buffered_peak = 0;
};

class AsioTransport : public Transport {
 public:
  // Binds UDP and TCP to `bind`. Port 0 picks one free for both (tests).
  static Result<std::unique_ptr<AsioTransport>> Bind(asio::io_context& io, const Endpoint& bind,
                                                     AsioTransportOptions options = {});
  ~AsioTransport() override;
  AsioTransport(const AsioTransport&) = delete;
  AsioTransport& operator=(const AsioTransport&) = delete;

  const AsioTransportStats& stats() const;
  size_t inbound_connections() const;
  size_t outbound_exchanges() const;

  // The bound address with the real port, e.g. "10.0.0.1:7946".
  const Address& LocalAddress() const override;
  // For packets, `from` is the sender's socket address; for exchanges it is
  // the asker's connecting address (its IP, an ephemeral port): protocols
  // name the asker in the request itself.
  void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) override;
  void SendPacket(const Address& to, Bytes packet) override;
  // `done` never runs inside this call.
  void Exchange(const Address& to, Bytes request, int64_t timeout_ns, ExchangeDone done) override;
  size_t MaxPacketBytes() const override;
  // At most 1 KiB of head.
  void SetAdmission(size_t head_bytes, Admission admit) override;
  // The source addresses of the mesh's members: preferred when
  // unauthenticated slots are short. Replaces the previous set.
  void SetKnownPeers(std::vector<IpAddr> members);
  size_t preauth_connections() const;

  struct Core;

 private:
  explicit AsioTransport(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace flowmesh::mesh
