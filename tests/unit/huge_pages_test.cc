#include "node/common/huge_pages.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace flowmesh {
namespace {

struct Mapping {
  uintptr_t start = 0, end = 0;
  std::string flags;  // smaps' VmFlags ("hg": advised MADV_HUGEPAGE)
};

// The mapping of this process holding p, from /proc/self/smaps; none if p
// is not mapped.
std::optional<Mapping> MappingOf(const void* p) {
  const auto addr = reinterpret_cast<uintptr_t>(p);
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  std::optional<Mapping> current;
  while (std::getline(smaps, line)) {
    uintptr_t start = 0, end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> start >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      current = (addr >= start && addr < end) ? std::optional<Mapping>(Mapping{start, end, ""})
                                              : std::nullopt;
      continue;
    }
    if (current && line.rfind("VmFlags:", 0) == 0) {
      current->flags = line.substr(8);
      return current;
    }
  }
  return std::nullopt;
}

TEST(HugePageAllocator, LargeArraysAreAlignedAdvisedAndUnmappedWhenFreed) {
  HugePageAllocator<uint64_t> alloc;
  const size_t n = (size_t{5} << 20) / sizeof(uint64_t);  // 5 MiB: two whole huge pages and a tail
  uint64_t* p = alloc.allocate(n);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % huge_pages::kSize, 0u);
  for (size_t i = 0; i < n; ++i) p[i] = i * 3;
  for (size_t i = 0; i < n; i += 4097) ASSERT_EQ(p[i], i * 3);
  std::optional<Mapping> head = MappingOf(p);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->start, reinterpret_cast<uintptr_t>(p));
  // The two whole huge pages are advised; the tail past them is not.
  EXPECT_EQ(head->end - head->start, 2 * huge_pages::kSize);
  EXPECT_NE(head->flags.find(" hg"), std::string::npos) << head->flags;
  std::optional<Mapping> tail = MappingOf(p + n - 1);
  ASSERT_TRUE(tail.has_value());
  EXPECT_EQ(tail->flags.find(" hg"), std::string::npos) << tail->flags;
  alloc.deallocate(p, n);
  EXPECT_FALSE(MappingOf(p).has_value());
  EXPECT_FALSE(MappingOf(p + n - 1).has_value());
}

TEST(HugePageAllocator, SmallArraysComeFromTheHeap) {
  HugePageAllocator<uint64_t> alloc;
  const size_t n = 1000;
  uint64_t* p = alloc.allocate(n);
  for (size_t i = 0; i < n; ++i) p[i] = i;
  std::optional<Mapping> m = MappingOf(p);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->flags.find(" hg"), std::string::npos) << m->flags;
  alloc.deallocate(p, n);
}

TEST(HugePageAllocator, AVectorKeepsItsContentsAcrossTheThreshold) {
  std::vector<uint32_t, HugePageAllocator<uint32_t>> v;
  for (uint32_t i = 0; i < 3'000'000; ++i) v.push_back(i);  // 12 MB: mapped, grown, moved
  for (uint32_t i = 0; i < 3'000'000; i += 999) ASSERT_EQ(v[i], i);
  v.resize(10);
  v.shrink_to_fit();  // back to the heap
  EXPECT_EQ(v[9], 9u);
}

}  // namespace
}  // namespace flowmesh
