// HugePageAllocator: for the arrays a lookup reaches at random, such as the
// index and the entries of a FlatMap holding 100k open connections.
//
// Each lookup in such an array lands on a page no recent lookup touched: a
// TLB miss as well as a cache miss, and under a hypervisor's nested paging a
// TLB miss walks two sets of page tables; filling a table of 4 KiB pages
// also takes a page fault per page. On the lab's VM with 50k idle
// connections (100k entries), 2 MiB transparent huge pages took meshd's
// start-up snapshot from about 760 to 520 ms and the probe thread from 0.145
// to 0.136 s per 100k churned connections, for 1 MB more resident.
//
// Arrays of at least 2 MiB are mapped on their own, aligned to 2 MiB, and
// advised MADV_HUGEPAGE over their whole 2 MiB pages; the tail past the last
// whole one keeps small pages, so nothing is made resident that the array
// would not have touched anyway. Smaller arrays come from the heap as usual.
// The advice is only advice: with THP "never", or no huge page free, the
// kernel gives small pages and nothing else changes. Freeing unmaps at once,
// so a table that shrinks gives its memory back to the kernel.
#pragma once

#include <cstddef>
#include <new>

namespace flowmesh {

namespace huge_pages {
inline constexpr size_t kSize = size_t{2} << 20;
// n bytes, aligned to kSize, whole huge pages advised; throws bad_alloc.
void* Map(size_t bytes);
void Unmap(void* p, size_t bytes);
}  // namespace huge_pages

template <typename T>
struct HugePageAllocator {
  using value_type = T;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(size_t n) {
    const size_t bytes = n * sizeof(T);
    if (bytes < huge_pages::kSize) return static_cast<T*>(::operator new(bytes));
    return static_cast<T*>(huge_pages::Map(bytes));
  }
  void deallocate(T* p, size_t n) noexcept {
    const size_t bytes = n * sizeof(T);
    if (bytes < huge_pages::kSize) {
      ::operator delete(p);
    } else {
      huge_pages::Unmap(p, bytes);
    }
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace flowmesh
