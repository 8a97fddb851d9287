#include "node/common/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace flowmesh::huge_pages {

namespace {
size_t RoundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

void* Map(size_t bytes) {
  const size_t len = RoundUp(bytes, 4096);
  // Map a huge page more than asked, then cut the mapping down to a
  // 2 MiB-aligned start: mmap aligns to 4 KiB only.
  void* raw = mmap(nullptr, len + kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = RoundUp(start, kSize);
  if (aligned > start) munmap(raw, aligned - start);
  if (const size_t after = (start + len + kSize) - (aligned + len); after > 0)
    munmap(reinterpret_cast<void*>(aligned + len), after);
  // Whole huge pages only (see the header); EINVAL with THP compiled out is
  // fine: small pages, as from the heap.
  if (const size_t whole = len / kSize * kSize; whole > 0)
    madvise(reinterpret_cast<void*>(aligned), whole, MADV_HUGEPAGE);
  return reinterpret_cast<void*>(aligned);
}

void Unmap(void* p, size_t bytes) { munmap(p, RoundUp(bytes, 4096)); }

}  // namespace flowmesh::huge_pages
