// Encoding and decoding of mesh packets and exchanges (schema/mesh.capnp,
// packed). Decoding checks the size against a cap before allocating anything
// and reads with tight ReaderOptions; a malformed or oversized input is an
// error that the caller counts and drops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "node/common/status.h"
#include "node/mesh/messages.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

// Our payload per packet: the transport's 1400 bytes minus room for sealing.
constexpr size_t kPacketBudgetBytes = 1350;
// Largest packet accepted on receive (a sealed-off payload is never larger).
constexpr size_t kMaxPacketBytes = 1400;
// Unpacked size cap of a packet: a packed 1400-byte packet of ours unpacks to
// about 2-3 KiB; zero runs could claim far more, so the reader refuses that.
constexpr size_t kMaxPacketWords = 2048;
// Exchanges: a push-pull of 10,000 members is under 1 MiB packed.
constexpr size_t kMaxExchangeBytes = 4u << 20;  // the TCP frame cap (frame.h)
constexpr size_t kMaxExchangeWords = 2u << 20;
// Our schema nests six deep (Packet > gossip > table > entries > entry > text).
constexpr int kNestingLimit = 8;

// Limits on the strings inside messages: anything longer is not ours.
constexpr size_t kMaxNameBytes = 128;
constexpr size_t kMaxAddressBytes = 64;
constexpr size_t kMaxCommBytes = 64;
constexpr size_t kMaxExeBytes = 4096;
// Each text of a gossiped workload: systemd caps unit names at 255 bytes,
// Kubernetes names at 253, a container id is 64 hex digits.
constexpr size_t kMaxWorkloadBytes = 256;

// Which check a message failed, for counting drops by reason; the error's
// message says the rest (which field, how long, the limit).
enum class WireCheck : uint8_t {
  kEmpty,           // no bytes at all
  kOversized,       // over the byte or word cap, before reading anything
  kStructure,       // not a Cap'n Proto message of this schema (truncated, trailing bytes, ...)
  kFieldTooLong,    // a name, address, comm or exe over its limit
  kFieldEmpty,      // a name or address that must be set is empty
  kBadValue,        // an unknown kind or state, versions out of order, a bad address length
  kUnexpectedKind,  // decoded, but not the kind of answer that was asked for (MeshNode)
};
constexpr size_t kWireChecks = 7;
const char* WireCheckName(WireCheck check);  // "empty", "oversized", "field_too_long", ...
// The check a Decode* error failed.
WireCheck CheckOf(const Status& decode_error);

// One gossip message encoded once when queued and copied into every packet
// that carries it. `packed_bytes` estimates its share of a packed packet.
struct EncodedGossip {
  std::vector<uint64_t> words;  // a flat unpacked message whose root is a Gossip
  size_t packed_bytes = 0;
};

EncodedGossip EncodeGossip(const GossipMsg& gossip);

// A packet of `primary` plus the given gossip; an error (kResourceExhausted)
// when the result would exceed kPacketBudgetBytes packed or kMaxPacketWords.
Result<Bytes> EncodePacket(const PrimaryMsg& primary, std::span<const EncodedGossip* const> gossip);
Result<PacketMsg> DecodePacket(std::span<const uint8_t> bytes);

Result<Bytes> EncodeExchangeRequest(const ExchangeRequestMsg& request);
Result<ExchangeRequestMsg> DecodeExchangeRequest(std::span<const uint8_t> bytes);
Result<Bytes> EncodeExchangeResponse(const ExchangeResponseMsg& response);
Result<ExchangeResponseMsg> DecodeExchangeResponse(std::span<const uint8_t> bytes);

// Upper estimates of packed sizes, used to fill budgets before encoding.
size_t EstimateWorkloadBytes(const Workload& w);
size_t EstimateEntryBytes(const TableEntryMsg& entry);
size_t EstimateDeltaBytes(const TableDeltaMsg& delta);
size_t EstimateMemberBytes(const MemberEntryMsg& member);
// A packet holding only `primary`, plus room for the gossip list's header.
size_t EstimatePrimaryBytes(const PrimaryMsg& primary);

}  // namespace flowmesh::mesh
