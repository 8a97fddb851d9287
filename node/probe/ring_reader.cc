// The ring buffer consumer with the data mapped once (see ring_reader.h).
// Follows the kernel's ring buffer protocol (kernel/bpf/ringbuf.c): an 8-byte
// header before each record holds its length with a busy bit (reserved, not
// yet submitted) and a discard bit; records start 8-byte aligned; positions
// only grow, and the offset in the data is a position modulo the size.
#include "node/probe/ring_reader.h"

#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace flowmesh {

Result<std::unique_ptr<RingReader>> RingReader::Open(int map_fd, size_t size) {
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0 || size == 0 || (size & (size - 1)) != 0 || size % static_cast<size_t>(page) != 0)
    return InvalidArgument("ring buffer of " + std::to_string(size) +
                           " bytes: not a power of two of whole pages");
  std::unique_ptr<RingReader> r(new RingReader(map_fd, size, static_cast<size_t>(page)));
  void* consumer = mmap(nullptr, r->page_, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
  if (consumer == MAP_FAILED)
    return Status::FromErrno(errno, "cannot map the ring buffer's consumer page");
  r->consumer_ = static_cast<unsigned long*>(consumer);
  // The producer page and the data once; the kernel lets a mapping end
  // anywhere inside the ring's area.
  void* producer = mmap(nullptr, r->page_ + size, PROT_READ, MAP_SHARED, map_fd,
                        static_cast<off_t>(r->page_));
  if (producer == MAP_FAILED)
    return Status::FromErrno(errno, "cannot map the ring buffer's data");
  r->producer_map_ = producer;
  r->producer_ = static_cast<const unsigned long*>(producer);
  r->data_ = static_cast<const uint8_t*>(producer) + r->page_;
  return r;
}

RingReader::~RingReader() {
  if (producer_map_ != nullptr) munmap(producer_map_, page_ + size_);
  if (consumer_ != nullptr) munmap(consumer_, page_);
}

int64_t RingReader::Consume(SampleFn fn, void* ctx) {
  const uint64_t mask = size_ - 1;
  int64_t count = 0;
  unsigned long cons = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
  bool more = true;
  while (more) {
    more = false;
    const unsigned long prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    while (cons < prod) {
      const auto* header = reinterpret_cast<const uint32_t*>(data_ + (cons & mask));
      const uint32_t len = __atomic_load_n(header, __ATOMIC_ACQUIRE);
      if (len & BPF_RINGBUF_BUSY_BIT) goto done;  // reserved, not yet submitted
      more = true;
      const uint32_t size = len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
      const unsigned long at = cons + BPF_RINGBUF_HDR_SZ;
      cons += (BPF_RINGBUF_HDR_SZ + size + 7) & ~7UL;
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        const size_t off = at & mask;
        const uint8_t* sample = data_ + off;
        if (off + size > size_) {
          // Wraps past the end: reassemble it from the two pieces.
          scratch_.resize((size + 7) / 8);
          auto* out = reinterpret_cast<uint8_t*>(scratch_.data());
          const size_t first = size_ - off;
          std::memcpy(out, sample, first);
          std::memcpy(out + first, data_, size - first);
          sample = out;
        }
        const int err = fn(ctx, const_cast<uint8_t*>(sample), size);
        if (err < 0) {
          __atomic_store_n(consumer_, cons, __ATOMIC_RELEASE);
          return err;
        }
        if (count < INT32_MAX) ++count;
      }
      // Released record by record, as the kernel may be waiting for room.
      __atomic_store_n(consumer_, cons, __ATOMIC_RELEASE);
    }
  }
done:
  return count;
}

}  // namespace flowmesh
