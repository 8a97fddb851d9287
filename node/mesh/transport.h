// What the mesh protocols run on: a clock with timers (Runtime) and a way to
// send packets and make request/response exchanges (Transport). Real life is
// Asio on one io_context (UDP for probes and gossip, TCP for push-pull and
// queries); tests and bench/ use the simulated network (sim_network.h) driven
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
  // Answers one exchange request; the returned bytes go back to the asker.
  // An error closes the exchange without an answer.
  using ExchangeHandler =
      std::function<Result<Bytes>(const Address& from, std::span<const uint8_t> request)>;
  using ExchangeDone = std::function<void(Result<Bytes> response)>;

  virtual ~Transport() = default;
  virtual const Address& LocalAddress() const = 0;
  virtual void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) = 0;
  // Best effort, like UDP: may be lost, delayed or reordered. Packets larger
  // than MaxPacketBytes() are refused by the caller's encoder, not here.
  virtual void SendPacket(const Address& to, Bytes packet) = 0;
  // Reliable request/response, like a TCP connection: `done` runs exactly
  // once, with the response or an error (timeout, refused, reset).
  virtual void Exchange(const Address& to, Bytes request, int64_t timeout_ns, ExchangeDone done) = 0;
  virtual size_t MaxPacketBytes() const { return 1400; }
};

}  // namespace flowmesh::mesh
