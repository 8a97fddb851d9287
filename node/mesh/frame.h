// Stream framing for mesh exchanges over TCP: the common length prefix
// (node/common/length_prefix.h) with the mesh's cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "node/common/length_prefix.h"
#include "node/common/status.h"

namespace flowmesh::mesh {

constexpr size_t kStreamHeaderBytes = kLengthPrefixBytes;
// A push-pull sync of a few thousand nodes' endpoint tables fits with room.
constexpr size_t kMaxStreamFrameBytes = 4 * 1024 * 1024;

using FrameHeader = LengthPrefix;

// The header for a payload of `size` bytes; fails if `size` exceeds `max`.
inline Result<FrameHeader> EncodeFrameHeader(size_t size, size_t max = kMaxStreamFrameBytes) {
  return EncodeLengthPrefix(size, max);
}
// The payload length a header announces; fails (kResourceExhausted) above
// `max`. Zero is a valid, empty payload.
inline Result<size_t> DecodeFrameHeader(std::span<const uint8_t, kStreamHeaderBytes> header,
                                        size_t max = kMaxStreamFrameBytes) {
  return DecodeLengthPrefix(header, max);
}

}  // namespace flowmesh::mesh
