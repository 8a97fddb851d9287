// The mesh protocols behind the seal: packets (SWIM messages with piggybacked
// gossip and table deltas), exchange requests (push-pull, table push, the
// fallback ping, queries) and the responses to this node's own exchanges
// (join, push-pull), decoded (node/mesh/wire.cc, wire_convert.cc) and applied
// to a running MeshNode (membership, table_sync.cc) on a virtual clock.
//
//   input = a sequence of [op][length 2, little-endian][bytes], where op % 4:
//     0 a packet from a peer, 1 an exchange request from a peer,
//     2 the answer to the oldest exchange this node started,
//     3 time passes (bytes[0] * 50 ms), so timers run and start exchanges
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/common/log.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/wire.h"
#include "tests/fuzz/fuzz_mesh.h"

namespace flowmesh::fuzz {
namespace {

using mesh::Bytes;

// A decoded message re-encodes, and what we encode we decode: the two sides
// of wire.cc must agree on everything the decoder accepts.
template <typename Msg, typename Encode, typename Decode>
void RoundTrip(const Msg& m, Encode encode, Decode decode) {
  Result<Bytes> again = encode(m);
  if (again.ok() && !decode(*again).ok()) __builtin_trap();
}

Result<Bytes> EncodeDecodedPacket(const mesh::PacketMsg& packet) {
  std::vector<mesh::EncodedGossip> encoded;
  for (const mesh::GossipMsg& g : packet.gossip) encoded.push_back(mesh::EncodeGossip(g));
  std::vector<const mesh::EncodedGossip*> gossip;
  for (const mesh::EncodedGossip& e : encoded) gossip.push_back(&e);
  return mesh::EncodePacket(packet.primary, gossip);
}

void CheckPacket(std::span<const uint8_t> bytes) {
  if (Result<mesh::PacketMsg> p = mesh::DecodePacket(bytes); p.ok())
    RoundTrip(*p, EncodeDecodedPacket, mesh::DecodePacket);
}

void CheckDecoders(std::span<const uint8_t> bytes) {
  if (Result<mesh::ExchangeRequestMsg> r = mesh::DecodeExchangeRequest(bytes); r.ok())
    RoundTrip(*r, mesh::EncodeExchangeRequest, mesh::DecodeExchangeRequest);
  if (Result<mesh::ExchangeResponseMsg> r = mesh::DecodeExchangeResponse(bytes); r.ok())
    RoundTrip(*r, mesh::EncodeExchangeResponse, mesh::DecodeExchangeResponse);
}

}  // namespace
}  // namespace flowmesh::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  using namespace flowmesh::fuzz;
  const mesh::Address kPeer = "10.0.0.2:7946";

  FakeRuntime runtime;
  FakeTransport transport("10.0.0.1:7946");
  mesh::MeshConfig config;
  config.name = "n1";
  config.node_id = "id-n1";
  config.max_queued_broadcasts = 64;
  config.table_sync_budget_bytes = 16 * 1024;
  {
    mesh::MeshNode node(runtime, transport, config);
    IpAddr self = *IpAddr::Parse("10.0.0.1");
    node.SetLocalTable({self}, {{self, 443, 10, 10, "nginx", "/usr/sbin/nginx"}});
    // Joining through a seed: the join is the first exchange waiting for an answer.
    node.Start({kPeer});

    std::span<const uint8_t> in(data, size);
    for (int steps = 0; in.size() >= 3 && steps < 64; steps++) {
      uint8_t op = in[0] % 4;
      size_t len = std::min<size_t>(in[1] | size_t{in[2]} << 8, in.size() - 3);
      std::span<const uint8_t> bytes = in.subspan(3, len);
      in = in.subspan(3 + len);
      switch (op) {
        case 0: transport.DeliverPacket(kPeer, bytes); break;
        case 1:
          CheckDecoders(bytes);
          transport.DeliverRequest(kPeer, bytes, [](Result<Bytes>) {});
          break;
        case 2: transport.AnswerOldest(Bytes(bytes.begin(), bytes.end())); break;
        case 3: runtime.RunFor((bytes.empty() ? 1 : bytes[0]) * 50 * mesh::kMs); break;
      }
    }
    // What meshd reads back from the state the messages left.
    (void)node.Members();
    (void)node.Tables(true);
    (void)node.Stats();
    (void)node.KnownPeers();
    transport.FailAll();
  }
  return 0;
}
