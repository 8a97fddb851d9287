#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "node/probe/ring_backlog.h"

namespace flowmesh {
namespace {

// Record i: i % 300 bytes, each byte a function of i and its offset.
std::string Record(size_t i) {
  std::string r(i % 300, '\0');
  for (size_t j = 0; j < r.size(); j++) r[j] = static_cast<char>(i * 31 + j);
  return r;
}

TEST(RingBacklog, HandsRecordsBackInOrderAcrossChunks) {
  RingBacklog b;
  EXPECT_TRUE(b.empty());
  // About 3 MB: several 1 MiB chunks, records split at none of them.
  constexpr size_t kRecords = 20'000;
  size_t next_in = 0, next_out = 0;
  auto check = [&](const void* data, size_t size) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 8, 0u) << "8-byte aligned, as the ring's";
    const std::string want = Record(next_out++);
    ASSERT_EQ(size, want.size());
    EXPECT_EQ(std::memcmp(data, want.data(), size), 0);
  };
  // Appends and drains interleaved, as the probe thread does while behind.
  while (next_in < kRecords) {
    for (int i = 0; i < 700 && next_in < kRecords; i++) {
      const std::string r = Record(next_in++);
      b.Append(r.data(), r.size());
    }
    EXPECT_EQ(b.Drain(500, check), 500u);
  }
  EXPECT_EQ(b.records(), kRecords - next_out);
  EXPECT_EQ(b.Drain(1'000'000, check), kRecords - (kRecords / 700 + 1) * 500);
  EXPECT_EQ(next_out, kRecords);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.bytes(), 0u);
  EXPECT_EQ(b.Drain(10, check), 0u);
}

TEST(RingBacklog, CountsTheBytesItHolds) {
  RingBacklog b;
  const char data[13] = "twelve bytes";
  b.Append(data, 12);  // a size word and two data words
  b.Append(data, 0);   // a size word
  EXPECT_EQ(b.bytes(), 8u * 3 + 8u);
  EXPECT_EQ(b.records(), 2u);
  std::vector<size_t> sizes;
  b.Drain(1, [&](const void*, size_t size) { sizes.push_back(size); });
  EXPECT_EQ(b.bytes(), 8u);
  b.Drain(1, [&](const void*, size_t size) { sizes.push_back(size); });
  EXPECT_EQ(sizes, (std::vector<size_t>{12, 0}));
  EXPECT_EQ(b.bytes(), 0u);
}

TEST(RingBacklog, HoldsARecordLargerThanAChunk) {
  RingBacklog b;
  const std::string big(3 << 20, 'x');
  b.Append("a", 1);
  b.Append(big.data(), big.size());
  b.Append("b", 1);
  std::vector<size_t> sizes;
  b.Drain(10, [&](const void* d, size_t size) {
    sizes.push_back(size);
    if (size == big.size()) {
      EXPECT_EQ(std::memcmp(d, big.data(), size), 0);
    }
  });
  EXPECT_EQ(sizes, (std::vector<size_t>{1, big.size(), 1}));
}

}  // namespace
}  // namespace flowmesh
