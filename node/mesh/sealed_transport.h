// A Transport decorator that seals everything the mesh sends and opens (and
// checks) everything it receives, over any Transport: the Asio one in meshd,
// the simulated one in tests. Inside each sealed message, before the payload:
//
//   [kind 1][sender wall clock ns 8][id 8][sequence 4]
//
// A packet and an exchange request carry a fresh random id and go through the
// replay guard, whose floor starts at this object's creation, so a restarted
// node does not accept replays of what was sent to its previous process. An exchange is a
// two-message stream: the response carries the request's id and sequence 1, so an old response
// cannot answer a new request and no message of a stream can be replayed or reordered into another.
//
// An exchange request is one frame of two sealed parts:
//
//   [sealed head, kRequestHeadBytes: kind 4, clock, id, sequence 0, body length 4][sealed body]
//
// The inner transport reads the head first and asks Admit (installed with
// SetAdmission) before it buffers the body: only a peer with the key, the
// label, a clock in the window and the frame's true length gets that far, so
// a stranger cannot make a node hold more than a head per connection. The
// full check (head and body open, same id, the id fresh) follows on arrival.
// Whatever fails to open or check is dropped, counted, and never reaches the protocols, so a node
// with the wrong key or label changes nothing. Without a keyring (insecure mode) bytes pass through
// unchanged, and no admission check is installed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "node/mesh/keyring.h"
#include "node/mesh/seal.h"
#include "node/mesh/seal_replay.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

constexpr size_t kSealHeaderBytes = 1 + 8 + 8 + 4;
// A request's sealed head: the header and the body's length, sealed.
constexpr size_t kRequestHeadBytes = kSealOverhead + kSealHeaderBytes + 4;

struct SealOptions {
  std::string label;  // the cluster label; both ends must agree
  ReplayOptions replay;
  // Wall clock in Unix ns; tests move it.
  std::function<int64_t()> wall_clock;
};

// Heads refused by the admission check are counted here by cause too, and
// once more in the inner transport's own count of admission failures.
struct SealStats {
  uint64_t sealed = 0;        // messages sealed and handed to the inner transport
  uint64_t opened = 0;        // messages that opened and passed every check
  uint64_t open_failed = 0;   // no key opens it: wrong key or label, tampered, garbage
  uint64_t malformed = 0;     // opened, but the header inside is wrong (kind, length)
  uint64_t replayed = 0;      // id already seen, or a response to another request
  uint64_t before_floor = 0;  // in the window but sent before we started, or forgotten
  uint64_t too_old = 0;       // sender clock behind ours by more than the window
  uint64_t too_new = 0;       // sender clock ahead of ours by more than the window
  uint64_t seal_failed = 0;   // could not seal (empty keyring, OpenSSL failure)
};

class SealedTransport : public Transport {
 public:
  // Insecure: a pass-through (meshd without --cluster-key-file).
  explicit SealedTransport(Transport& inner);
  // Sealed with `keyring`, which is read at every message so rotations apply
  // at once; `inner` and `keyring` must outlive this object.
  SealedTransport(Transport& inner, const Keyring& keyring, SealOptions options);
  // Detaches from `inner`: no callback of this object runs afterwards, and
  // pending exchanges end with an error if `inner` still completes them.
  ~SealedTransport() override;

  bool insecure() const;
  const SealStats& stats() const;

  const Address& LocalAddress() const override;
  void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) override;
  void SendPacket(const Address& to, Bytes packet) override;
  void Exchange(const Address& to, Bytes request, int64_t timeout_ns, ExchangeDone done) override;
  size_t MaxPacketBytes() const override;

  struct Core;

 private:
  std::shared_ptr<Core> core_;
};

}  // namespace flowmesh::mesh
