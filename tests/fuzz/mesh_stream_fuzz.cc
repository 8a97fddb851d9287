// The mesh's outer layers, both directions: the TCP frame header
// (node/mesh/frame.h, as asio_exchange.cc reads it) and the sealed envelope
// (SealedTransport over a transport the harness drives), with a fixed test
// key so the fuzzer gets past AES-GCM: besides raw bytes, the harness seals
// the fuzz bytes itself, either verbatim (the sealed header inside is fuzzed)
// or behind a well-formed header (what follows it is fuzzed).
//
// A request is [sealed head][sealed body] (sealed_transport.h); with a good
// header the harness seals a matching head in front, so the admission check
// and the body's checks are both reached.
//
//   input = [mode][body...]
//   mode % 3:       0 a packet arrives, 1 a request arrives (server side),
//                   2 a response arrives to our request (client side)
//   (mode / 3) % 3: 0 raw bytes off the wire (request and response: a TCP
//                   stream, [length 4][frame]), 1 sealed verbatim, 2 sealed
//                   behind a good header; body[0] moves its clock, body[1]
//                   bit 0 gives a response another request's id
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "node/common/log.h"
#include "node/mesh/frame.h"
#include "node/mesh/keyring.h"
#include "node/mesh/seal.h"
#include "node/mesh/sealed_transport.h"
#include "tests/fuzz/fuzz_mesh.h"

namespace flowmesh::fuzz {
namespace {

using mesh::Bytes;

constexpr int64_t kWallNs = kTestWallNs;
// sealed_transport.cc's kinds
constexpr uint8_t kPacket = 1, kRequest = 2, kResponse = 3, kRequestHead = 4;

void PutLe(Bytes& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// The frame a TCP stream carries, as asio_exchange.cc reads it: nullopt when
// the header is refused or the stream ends before the frame does.
std::optional<std::span<const uint8_t>> ReadFrame(std::span<const uint8_t> stream) {
  if (stream.size() < mesh::kStreamHeaderBytes) return std::nullopt;
  Result<size_t> len = mesh::DecodeFrameHeader(stream.first<mesh::kStreamHeaderBytes>());
  if (!len.ok()) return std::nullopt;
  stream = stream.subspan(mesh::kStreamHeaderBytes);
  if (*len > stream.size()) return std::nullopt;
  return stream.first(*len);
}

struct Harness {
  const mesh::Keyring keyring = TestKeyring();
  mesh::Sealer sealer{keyring, kTestLabel};  // the peer's side of the seal
};

}  // namespace
}  // namespace flowmesh::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  using namespace flowmesh::fuzz;
  static Harness h;
  if (size < 1) return 0;
  const int direction = data[0] % 3;
  const int envelope = (data[0] / 3) % 3;
  std::span<const uint8_t> body(data + 1, size - 1);

  FakeTransport inner("10.0.0.1:7946");
  mesh::SealOptions options;
  options.label = kTestLabel;
  options.wall_clock = [] { return kWallNs; };
  auto sealed = std::make_unique<mesh::SealedTransport>(inner, h.keyring, std::move(options));
  // The server side answers with what it was asked, so its replies are sealed too.
  sealed->SetHandlers([](const mesh::Address&, std::span<const uint8_t>) {},
                      mesh::AnswerAtOnce([](const mesh::Address&, std::span<const uint8_t> req) {
                        return Result<Bytes>(Bytes(req.begin(), req.end()));
                      }));

  // The client side: one request out, so a response has something to answer.
  uint64_t request_id = 0;
  if (direction == 2) {
    sealed->Exchange("10.0.0.2:7946", Bytes{1, 2, 3}, 1'000'000'000, [](Result<Bytes> response) {});
    if (inner.outgoing().size() != 1) __builtin_trap();
    const Bytes& sent = inner.outgoing().front().request;
    if (sent.size() < mesh::kRequestHeadBytes) __builtin_trap();
    Result<Bytes> opened =
        h.sealer.Open(std::span<const uint8_t>(sent).subspan(mesh::kRequestHeadBytes));
    if (!opened.ok() || opened->size() < mesh::kSealHeaderBytes) __builtin_trap();
    std::memcpy(&request_id, opened->data() + 9, 8);  // little-endian host
  }

  Bytes wire;
  if (envelope == 0) {
    if (direction == 0) {
      wire.assign(body.begin(), body.end());
    } else {
      std::optional<std::span<const uint8_t>> frame = ReadFrame(body);
      if (!frame) return 0;
      wire.assign(frame->begin(), frame->end());
    }
  } else {
    Bytes plain;
    if (envelope == 2) {
      int8_t skew = body.empty() ? 0 : static_cast<int8_t>(body[0]);
      bool other_id = body.size() > 1 && (body[1] & 1);
      body = body.subspan(std::min<size_t>(body.size(), 2));
      const uint8_t kinds[] = {kPacket, kRequest, kResponse};
      plain.push_back(kinds[direction]);
      PutLe(plain, static_cast<uint64_t>(kWallNs + int64_t{skew} * 1'000'000'000), 8);
      PutLe(plain, direction == 2 && !other_id ? request_id : 0x1234 + size, 8);
      PutLe(plain, direction == 2 ? 1 : 0, 4);
    }
    plain.insert(plain.end(), body.begin(), body.end());
    Result<Bytes> s = h.sealer.Seal(plain);
    if (!s.ok()) __builtin_trap();
    wire = std::move(*s);
    if (direction == 1 && envelope == 2) {
      // The head a real sender puts first: same clock and id, the body's length.
      Bytes head_plain(plain.begin(), plain.begin() + mesh::kSealHeaderBytes);
      head_plain[0] = kRequestHead;
      PutLe(head_plain, wire.size(), 4);
      Result<Bytes> head = h.sealer.Seal(head_plain);
      if (!head.ok()) __builtin_trap();
      wire.insert(wire.begin(), head->begin(), head->end());
    }
  }

  switch (direction) {
    case 0: inner.DeliverPacket("10.0.0.2:7946", wire); break;
    case 1:
      inner.DeliverRequest("10.0.0.2:7946", wire, [](Result<Bytes> reply) {
        // What asio_exchange.cc writes back: the frame header, then the reply.
        if (reply.ok()) (void)mesh::EncodeFrameHeader(reply->size());
      });
      break;
    case 2: inner.AnswerOldest(std::move(wire)); break;
  }
  inner.FailAll();
  return 0;
}
