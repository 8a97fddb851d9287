// Reads a BPF ring buffer (BPF_MAP_TYPE_RINGBUF) with its data pages mapped
// once. libbpf's consumer maps them twice in a row, so that a record which
// wraps past the end reads contiguously; the kernel fills every page of a
// ring mapping at mmap time, so RSS counts the ring twice (16 MB for meshd's
// default 8 MB ring). Here a record that wraps, one in tens of thousands, is
// copied into a scratch buffer instead.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "node/common/status.h"

namespace flowmesh {

class RingReader {
 public:
  // Called for each committed record, in order, with the record's bytes
  // (8-byte aligned). A negative return stops the consume; it is returned.
  using SampleFn = int (*)(void* ctx, void* data, size_t size);

  // `map_fd`: the ring buffer map; `size`: its max_entries (a power of two,
  // a multiple of the page size). The reader does not own the fd.
  static Result<std::unique_ptr<RingReader>> Open(int map_fd, size_t size);
  ~RingReader();
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Poll this (EPOLLIN) for records: the kernel wakes it as the program asks.
  int fd() const { return fd_; }
  // Hands every committed record to fn, then releases their space to the
  // kernel. Returns how many were handed over (capped at INT32_MAX), or fn's
  // negative return.
  int64_t Consume(SampleFn fn, void* ctx);
  // Bytes of the ring mapped into this process (each page once).
  size_t mapped_bytes() const { return page_ + page_ + size_; }

 private:
  RingReader(int fd, size_t size, size_t page) : fd_(fd), size_(size), page_(page) {}

  const int fd_;
  const size_t size_;
  const size_t page_;
  unsigned long* consumer_ = nullptr;  // the consumer page: ours to write
  void* producer_map_ = nullptr;       // the producer page, then the data once
  const unsigned long* producer_ = nullptr;
  const uint8_t* data_ = nullptr;
  std::vector<uint64_t> scratch_;  // a wrapping record, reassembled (8-byte aligned)
};

}  // namespace flowmesh
