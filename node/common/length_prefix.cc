// Length-prefix encoding and the cap check.
#include "node/common/length_prefix.h"

#include <string>

namespace flowmesh {

Result<LengthPrefix> EncodeLengthPrefix(size_t size, size_t max) {
  if (size > max || size > UINT32_MAX)
    return Status(Status::Code::kResourceExhausted, "message of " + std::to_string(size) +
                                                        " bytes exceeds the frame limit of " +
                                                        std::to_string(max) + " bytes");
  LengthPrefix h;
  for (size_t i = 0; i < kLengthPrefixBytes; i++) h[i] = static_cast<uint8_t>(size >> (8 * i));
  return h;
}

Result<size_t> DecodeLengthPrefix(std::span<const uint8_t, kLengthPrefixBytes> prefix, size_t max) {
  uint32_t len = 0;
  for (size_t i = 0; i < kLengthPrefixBytes; i++) len |= uint32_t{prefix[i]} << (8 * i);
  if (len > max)
    return Status(Status::Code::kResourceExhausted, "frame of " + std::to_string(len) +
                                                        " bytes exceeds the limit of " +
                                                        std::to_string(max) + " bytes");
  return size_t{len};
}

}  // namespace flowmesh
