// Control-socket framing: the common length prefix (node/common/length_prefix.h),
// then one unpacked Cap'n Proto message in flat-array form. The decoder is pure (bytes in,
// validated messages out) so framing is tested without sockets.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "node/common/length_prefix.h"
#include "node/common/status.h"

namespace flowmesh {

constexpr size_t kFrameHeaderBytes = kLengthPrefixBytes;
// A request is a union with at most a filter; 64 KiB is generous.
constexpr size_t kMaxRequestBytes = 64 * 1024;
// About 150k connections fit in one reply; beyond that meshd answers an error.
constexpr size_t kMaxResponseBytes = 64 * 1024 * 1024;
// Our schema nests five deep, except a look tree: two levels (a list and a
// node) per hop, at most kMaxLookDepth (16) hops each way below the root.
constexpr int kFrameNestingLimit = 40;

// Reader limits for a message of `words` words: a reader may traverse the
// message a few times over (accessors re-read) but never amplify beyond that.
capnp::ReaderOptions FrameReaderOptions(size_t words);

// The frame for `message`, or an error if it would exceed `max_bytes`.
Result<std::vector<uint8_t>> EncodeFrame(capnp::MessageBuilder& message, size_t max_bytes);

// One complete message whose structure has been validated (every pointer in
// bounds, nesting within the limit). Owns its word-aligned copy.
class Frame {
 public:
  Frame() = default;
  Frame(Frame&&) = default;
  // The reader points into words_, so it goes first.
  Frame& operator=(Frame&& other) noexcept {
    reader_.reset();
    words_ = std::move(other.words_);
    reader_ = std::move(other.reader_);
    return *this;
  }

  bool empty() const { return reader_ == nullptr; }
  size_t size_bytes() const { return words_.size() * sizeof(capnp::word); }
  // Readers still throw kj::Exception on a schema mismatch they cannot
  // default (e.g. a list where a struct should be); callers convert through
  // convert.h, which catches.
  template <typename T>
  typename T::Reader Root() {
    return reader_->getRoot<T>();
  }

 private:
  friend class FrameDecoder;
  kj::Array<capnp::word> words_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

class FrameDecoder {
 public:
  explicit FrameDecoder(size_t max_bytes) : max_bytes_(max_bytes) {}

  // Consumes bytes; complete frames queue up for Next(). The first oversized
  // or malformed frame is an error and the decoder stays failed, because a
  // byte stream cannot be resynchronized: the caller counts it and closes.
  Status Feed(const void* data, size_t size);
  // Moves the next complete frame into *out; false when there is none yet.
  bool Next(Frame* out);

  bool failed() const { return !error_.ok(); }
  // True between frames (nothing of a next frame buffered).
  bool idle() const { return header_have_ == 0 && body_.size() == 0; }

 private:
  Status Complete();

  const size_t max_bytes_;
  Status error_;
  LengthPrefix header_ = {};
  size_t header_have_ = 0;
  kj::Array<capnp::word> body_;  // allocated only after the length passed the cap
  size_t body_have_ = 0;
  std::deque<Frame> ready_;
};

}  // namespace flowmesh
