// Control-socket framing: round trips, partial feeds, and every way a frame
// can be wrong (oversized, empty, misaligned, garbage, too deep, trailing).
#include "node/control/frame.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstring>

#include "schema/control.capnp.h"

namespace flowmesh {
namespace {

std::vector<uint8_t> WatchRequestFrame(uint32_t pid, std::vector<uint16_t> lports) {
  capnp::MallocMessageBuilder message;
  auto filter = message.initRoot<schema::Request>().initWatch();
  filter.setPid(pid);
  auto list = filter.initLports(static_cast<unsigned>(lports.size()));
  for (unsigned i = 0; i < lports.size(); i++) list.set(i, lports[i]);
  Result<std::vector<uint8_t>> frame = EncodeFrame(message, kMaxRequestBytes);
  EXPECT_TRUE(frame.ok()) << frame.status().message();
  return frame.ok() ? *frame : std::vector<uint8_t>{};
}

std::vector<uint8_t> Header(uint32_t len) {
  return {static_cast<uint8_t>(len), static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len >> 16), static_cast<uint8_t>(len >> 24)};
}

// A frame around one segment of raw words, with a correct segment table.
std::vector<uint8_t> RawFrame(const std::vector<uint64_t>& segment) {
  std::vector<uint64_t> words;
  words.push_back(uint64_t{segment.size()} << 32);  // 1 segment (count-1 = 0), its size
  words.insert(words.end(), segment.begin(), segment.end());
  std::vector<uint8_t> out = Header(static_cast<uint32_t>(words.size() * 8));
  size_t at = out.size();
  out.resize(at + words.size() * 8);
  std::memcpy(out.data() + at, words.data(), words.size() * 8);  // host is little-endian
  return out;
}

TEST(Frame, RoundTrip) {
  std::vector<uint8_t> bytes = WatchRequestFrame(42, {80, 443});
  FrameDecoder decoder(kMaxRequestBytes);
  ASSERT_TRUE(decoder.Feed(bytes.data(), bytes.size()).ok());
  Frame frame;
  ASSERT_TRUE(decoder.Next(&frame));
  auto req = frame.Root<schema::Request>();
  ASSERT_TRUE(req.isWatch());
  EXPECT_EQ(req.getWatch().getPid(), 42u);
  ASSERT_EQ(req.getWatch().getLports().size(), 2u);
  EXPECT_EQ(req.getWatch().getLports()[1], 443);
  EXPECT_EQ(frame.size_bytes() + kFrameHeaderBytes, bytes.size());
  EXPECT_FALSE(decoder.Next(&frame));
  EXPECT_TRUE(decoder.idle());
}

TEST(Frame, ByteByByteFeedsYieldFramesExactlyAtTheirEnds) {
  std::vector<uint8_t> a = WatchRequestFrame(1, {});
  std::vector<uint8_t> b = WatchRequestFrame(2, {22});
  std::vector<uint8_t> stream = a;
  stream.insert(stream.end(), b.begin(), b.end());
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint32_t> pids;
  for (size_t i = 0; i < stream.size(); i++) {
    ASSERT_TRUE(decoder.Feed(&stream[i], 1).ok()) << "at byte " << i;
    Frame frame;
    if (decoder.Next(&frame)) {
      EXPECT_TRUE(i + 1 == a.size() || i + 1 == stream.size()) << "frame ended at byte " << i;
      pids.push_back(frame.Root<schema::Request>().getWatch().getPid());
    }
  }
  EXPECT_EQ(pids, (std::vector<uint32_t>{1, 2}));
}

TEST(Frame, SeveralFramesInOneFeed) {
  std::vector<uint8_t> stream;
  for (uint32_t pid = 1; pid <= 3; pid++) {
    std::vector<uint8_t> f = WatchRequestFrame(pid, {});
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameDecoder decoder(kMaxRequestBytes);
  ASSERT_TRUE(decoder.Feed(stream.data(), stream.size()).ok());
  Frame frame;
  for (uint32_t pid = 1; pid <= 3; pid++) {
    ASSERT_TRUE(decoder.Next(&frame));
    EXPECT_EQ(frame.Root<schema::Request>().getWatch().getPid(), pid);
  }
  EXPECT_FALSE(decoder.Next(&frame));
}

TEST(Frame, OversizedLengthIsRejectedFromTheHeaderAlone) {
  // Only the four header bytes: the decoder must refuse before any body
  // (and before allocating 4 GiB for it).
  for (uint32_t len :
       {uint32_t{kMaxRequestBytes + 8}, uint32_t{0xFFFFFFF8}, uint32_t{0xFFFFFFFF}}) {
    FrameDecoder decoder(kMaxRequestBytes);
    std::vector<uint8_t> h = Header(len);
    Status s = decoder.Feed(h.data(), h.size());
    ASSERT_FALSE(s.ok()) << len;
    EXPECT_NE(s.message().find("exceeds the limit of 65536 bytes"), std::string::npos)
        << s.message();
    EXPECT_TRUE(decoder.failed());
  }
  // Exactly at the cap is allowed (and then needs its body).
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint8_t> h = Header(kMaxRequestBytes);
  EXPECT_TRUE(decoder.Feed(h.data(), h.size()).ok());
}

TEST(Frame, ZeroLengthIsAnError) {
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint8_t> h = Header(0);
  Status s = decoder.Feed(h.data(), h.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("empty frame"), std::string::npos) << s.message();
}

TEST(Frame, LengthNotInWholeWordsIsAnError) {
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint8_t> h = Header(13);
  Status s = decoder.Feed(h.data(), h.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("8-byte words"), std::string::npos) << s.message();
}

TEST(Frame, GarbagePayloadIsRejected) {
  std::vector<uint8_t> bytes = Header(24);
  for (int i = 0; i < 24; i++) bytes.push_back(static_cast<uint8_t>(0xA5 ^ (i * 37)));
  FrameDecoder decoder(kMaxRequestBytes);
  Status s = decoder.Feed(bytes.data(), bytes.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("malformed frame"), std::string::npos) << s.message();
  Frame frame;
  EXPECT_FALSE(decoder.Next(&frame));
}

TEST(Frame, OutOfBoundsPointerIsRejected) {
  // Root struct pointer: offset 1000 words, 1 data word: far past the segment.
  uint64_t root = (uint64_t{1000} << 2) | (uint64_t{1} << 32);
  std::vector<uint8_t> bytes = RawFrame({root, 0});
  FrameDecoder decoder(kMaxRequestBytes);
  Status s = decoder.Feed(bytes.data(), bytes.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("malformed frame"), std::string::npos) << s.message();
}

TEST(Frame, NestingBeyondTheLimitIsRejected) {
  // Each word is a one-element pointer list whose element is the next word.
  auto chain = [](int depth) {
    const uint64_t list_of_one_pointer = 1 | (uint64_t{6} << 32) | (uint64_t{1} << 35);
    std::vector<uint64_t> seg(static_cast<size_t>(depth), list_of_one_pointer);
    seg.push_back(0);  // null terminates the chain
    return RawFrame(seg);
  };
  {
    std::vector<uint8_t> ok = chain(kFrameNestingLimit - 2);
    FrameDecoder decoder(kMaxRequestBytes);
    EXPECT_TRUE(decoder.Feed(ok.data(), ok.size()).ok());
  }
  std::vector<uint8_t> deep = chain(kFrameNestingLimit + 4);
  FrameDecoder decoder(kMaxRequestBytes);
  Status s = decoder.Feed(deep.data(), deep.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("malformed frame"), std::string::npos) << s.message();
}

TEST(Frame, MessageShorterThanItsFrameIsRejected) {
  std::vector<uint8_t> bytes = WatchRequestFrame(7, {});
  uint32_t len = static_cast<uint32_t>(bytes.size() - kFrameHeaderBytes + 8);
  std::vector<uint8_t> h = Header(len);
  std::copy(h.begin(), h.end(), bytes.begin());
  bytes.insert(bytes.end(), 8, 0);
  FrameDecoder decoder(kMaxRequestBytes);
  Status s = decoder.Feed(bytes.data(), bytes.size());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("shorter than the frame"), std::string::npos) << s.message();
}

TEST(Frame, AFailedDecoderStaysFailed) {
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint8_t> bad = Header(0);
  ASSERT_FALSE(decoder.Feed(bad.data(), bad.size()).ok());
  std::vector<uint8_t> good = WatchRequestFrame(1, {});
  EXPECT_FALSE(decoder.Feed(good.data(), good.size()).ok());
  Frame frame;
  EXPECT_FALSE(decoder.Next(&frame));
}

TEST(Frame, EncodeRefusesAMessageOverTheCap) {
  capnp::MallocMessageBuilder message;
  auto filter = message.initRoot<schema::Request>().initWatch();
  filter.initLports(40000);  // 80 KB of ports
  Result<std::vector<uint8_t>> frame = EncodeFrame(message, kMaxRequestBytes);
  ASSERT_FALSE(frame.ok());
  EXPECT_NE(frame.status().message().find("exceeds the frame limit"), std::string::npos);
  EXPECT_TRUE(EncodeFrame(message, kMaxResponseBytes).ok());
}

TEST(Frame, ReaderOptionsScaleWithTheFrame) {
  capnp::ReaderOptions small = FrameReaderOptions(10);
  capnp::ReaderOptions large = FrameReaderOptions(10000);
  EXPECT_LT(small.traversalLimitInWords, large.traversalLimitInWords);
  EXPECT_LT(small.traversalLimitInWords, 1000u);
  EXPECT_EQ(small.nestingLimit, kFrameNestingLimit);
}

}  // namespace
}  // namespace flowmesh
