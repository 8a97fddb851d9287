// The one length-prefix framer for byte streams (the control socket, mesh
// exchanges over TCP): a 4-byte little-endian length, then that many bytes.
// The length is checked against the caller's cap before anything is
// allocated, so a hostile header costs nothing but the connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/common/status.h"

namespace flowmesh {

constexpr size_t kLengthPrefixBytes = 4;
using LengthPrefix = std::array<uint8_t, kLengthPrefixBytes>;

// The prefix for a payload of `size` bytes; kResourceExhausted ("message of
// N bytes exceeds the frame limit of M bytes") if `size` exceeds `max`.
Result<LengthPrefix> EncodeLengthPrefix(size_t size, size_t max);
// The payload length a prefix announces; kResourceExhausted ("frame of N
// bytes exceeds the limit of M bytes") above `max`. Zero is a valid length:
// whether an empty payload makes sense is the protocol's call.
Result<size_t> DecodeLengthPrefix(std::span<const uint8_t, kLengthPrefixBytes> prefix, size_t max);

}  // namespace flowmesh
