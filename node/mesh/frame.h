// Stream framing for mesh exchanges over TCP: a 4-byte little-endian length,
// then that many bytes. The length is checked against a cap before anything
// is allocated, so a hostile header costs nothing but the connection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/common/status.h"

namespace flowmesh::mesh {

constexpr size_t kStreamHeaderBytes = 4;
// A push-pull sync of a few thousand nodes' endpoint tables fits with room.
constexpr size_t kMaxStreamFrameBytes = 4 * 1024 * 1024;

using FrameHeader = std::array<uint8_t, kStreamHeaderBytes>;

// The header for a payload of `size` bytes; fails if `size` exceeds `max`.
Result<FrameHeader> EncodeFrameHeader(size_t size, size_t max = kMaxStreamFrameBytes);
// The payload length a header announces; fails (kResourceExhausted) above
// `max`. Zero is a valid, empty payload.
Result<size_t> DecodeFrameHeader(std::span<const uint8_t, kStreamHeaderBytes> header,
                                 size_t max = kMaxStreamFrameBytes);

}  // namespace flowmesh::mesh
