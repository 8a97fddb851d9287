// What the mesh protocols run on: a clock with timers (Runtime) and a way to
// send packets and make request/response exchanges (Transport). Real life is
// Asio on one io_context (UDP for probes and gossip, TCP for push-pull and
// queries); tests and bench/ use the simulated network (sim/sim_network.h) driven
// by a virtual clock, so thousands of nodes run deterministically in one
// process. Everything a protocol object does happens on its runtime's one
// thread: no locks inside the protocols.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "node/common/status.h"

namespace flowmesh::mesh {

using Bytes = std::vector<uint8_t>;
// A node's transport address, "ip:port" (Endpoint::ToString spelling).
using Address = std::string;

class Runtime {
 public:
  using TimerId = uint64_t;
  virtual ~Runtime() = default;
  // Monotonic ns (virtual in simulation).
  virtual int64_t NowNs() const = 0;
  // Runs fn once after delay_ns on the runtime's thread. Never inline.
  virtual TimerId After(int64_t delay_ns, std::function<void()> fn) = 0;
  virtual void Cancel(TimerId id) = 0;
  // Uniform random number from the runtime's generator (seeded in simulation).
  virtual uint64_t Random() = 0;
};

class Transport {
 public:
  using PacketHandler = std::function<void(const Address& from, std::span<const uint8_t> packet)>;
  // The answer to one exchange request: call it exactly once, on the
  // runtime's thread, now or later; the bytes go back to the asker, and an
  // error closes the exchange without an answer. Calling it after the
  // transport (or the asker) gave up is harmless.
  using ExchangeReply = std::function<void(Result<Bytes> response)>;
  // Answers one exchange request. `request` is valid only during the call:
  // a handler that answers later copies what it needs.
  using ExchangeHandler = std::function<void(const Address& from, std::span<const uint8_t> request,
                                             ExchangeReply reply)>;
  using ExchangeDone = std::function<void(Result<Bytes> response)>;
  // Decides, from the first bytes of an exchange request, whether the rest
  // may be read at all: `head` is the request's first head_bytes, and
  // `frame_len` the length its frame announces (head included). An error
  // closes the exchange before any buffer for the rest is allocated.
  using Admission =
      std::function<Status(const Address& from, std::span<const uint8_t> head, size_t frame_len)>;

  virtual ~Transport() = default;
  virtual const Address& LocalAddress() const = 0;
  virtual void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) = 0;
  // Best effort, like UDP: may be lost, delayed or reordered. Packets larger
  // than MaxPacketBytes() are refused by the caller's encoder, not here.
  virtual void SendPacket(const Address& to, Bytes packet) = 0;
  // Reliable request/response, like a TCP connection: `done` runs exactly
  // once, with the response or an error (timeout, refused, reset).
  virtual void Exchange(const Address& to, Bytes request, int64_t timeout_ns,
                        ExchangeDone done) = 0;
  virtual size_t MaxPacketBytes() const { return 1400; }
  // Installs (null removes) the admission check of exchange requests, so an
  // unauthenticated peer cannot make this node buffer a large request. A
  // request shorter than head_bytes is refused while a check is installed.
  // Transports that buffer nothing per peer may ignore it.
  virtual void SetAdmission(size_t head_bytes, Admission admit) {
    (void)head_bytes;
    (void)admit;
  }
};

// An ExchangeHandler for protocols that answer at once.
inline Transport::ExchangeHandler AnswerAtOnce(
    std::function<Result<Bytes>(const Address& from, std::span<const uint8_t> request)> fn) {
  if (!fn) return nullptr;
  return [fn = std::move(fn)](const Address& from, std::span<const uint8_t> request,
                              Transport::ExchangeReply reply) { reply(fn(from, request)); };
}

}  // namespace flowmesh::mesh
