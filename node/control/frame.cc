// Frame encoding and the incremental, validating decoder.
#include "node/control/frame.h"

#include <capnp/any.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace flowmesh {

capnp::ReaderOptions FrameReaderOptions(size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 4 * static_cast<uint64_t>(words) + 64;
  options.nestingLimit = kFrameNestingLimit;
  return options;
}

Result<std::vector<uint8_t>> EncodeFrame(capnp::MessageBuilder& message, size_t max_bytes) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  kj::ArrayPtr<const kj::byte> bytes = flat.asBytes();
  FM_ASSIGN_OR_RETURN(LengthPrefix prefix, EncodeLengthPrefix(bytes.size(), max_bytes));
  std::vector<uint8_t> out(kFrameHeaderBytes + bytes.size());
  std::memcpy(out.data(), prefix.data(), kFrameHeaderBytes);
  std::memcpy(out.data() + kFrameHeaderBytes, bytes.begin(), bytes.size());
  return out;
}

Status FrameDecoder::Feed(const void* data, size_t size) {
  if (!error_.ok()) return error_;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    if (header_have_ < kFrameHeaderBytes) {
      size_t take = std::min(size, kFrameHeaderBytes - header_have_);
      std::memcpy(header_.data() + header_have_, p, take);
      header_have_ += take;
      p += take;
      size -= take;
      if (header_have_ < kFrameHeaderBytes) break;
      // Every check on the length happens here, before a byte is allocated.
      Result<size_t> length = DecodeLengthPrefix(header_, max_bytes_);
      size_t len = length.ok() ? *length : 0;
      if (!length.ok())
        error_ = InvalidArgument(length.status().message());
      else if (len == 0)
        error_ = InvalidArgument("empty frame (length 0)");
      else if (len % sizeof(capnp::word) != 0)
        error_ = InvalidArgument("frame length " + std::to_string(len) +
                                 " is not a whole number of 8-byte words");
      if (!error_.ok()) return error_;
      body_ = kj::heapArray<capnp::word>(len / sizeof(capnp::word));
      body_have_ = 0;
      continue;
    }
    kj::ArrayPtr<kj::byte> dst = body_.asBytes();
    size_t take = std::min(size, dst.size() - body_have_);
    std::memcpy(dst.begin() + body_have_, p, take);
    body_have_ += take;
    p += take;
    size -= take;
    if (body_have_ == dst.size()) {
      error_ = Complete();
      if (!error_.ok()) return error_;
    }
  }
  return Status::Ok();
}

Status FrameDecoder::Complete() {
  Frame frame;
  frame.words_ = std::move(body_);
  header_have_ = 0;
  body_have_ = 0;
  capnp::ReaderOptions options = FrameReaderOptions(frame.words_.size());
  try {
    // Walk the whole message once with a throwaway reader: every pointer is
    // bounds-checked and the nesting limit applied, so a frame that gets
    // this far cannot surprise the converters with out-of-bounds data.
    capnp::FlatArrayMessageReader check(frame.words_, options);
    if (check.getEnd() != frame.words_.end())
      return InvalidArgument("malformed frame: the message is shorter than the frame length");
    check.getRoot<capnp::AnyPointer>().targetSize();
    // A fresh reader, so the walk above does not eat into its traversal budget.
    frame.reader_ = std::make_unique<capnp::FlatArrayMessageReader>(frame.words_, options);
  } catch (const kj::Exception& e) {
    return InvalidArgument("malformed frame: " + std::string(e.getDescription().cStr()));
  }
  ready_.push_back(std::move(frame));
  return Status::Ok();
}

bool FrameDecoder::Next(Frame* out) {
  if (ready_.empty()) return false;
  *out = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

}  // namespace flowmesh
