// RingBacklog: ring-buffer records copied out of the ring while nothing can
// deliver them yet (BpfProbe::HoldEvents), handed back in the order they
// came. Chunks of 1 MiB, each freed once delivered.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

namespace flowmesh {

class RingBacklog {
 public:
  // Copies one record (kept 8-byte aligned, as the ring hands them out).
  void Append(const void* data, size_t size) {
    const size_t words = 1 + (size + 7) / 8;
    if (chunks_.empty() || chunks_.back().size() + words > chunks_.back().capacity()) {
      chunks_.emplace_back();
      chunks_.back().reserve(std::max(kChunkWords, words));
    }
    std::vector<uint64_t>& c = chunks_.back();
    c.push_back(size);
    const size_t at = c.size();
    c.resize(at + words - 1);
    std::memcpy(c.data() + at, data, size);
    bytes_ += words * 8;
    records_++;
  }

  // Hands at most `max` records to fn(const void* data, size_t size),
  // oldest first. Returns how many it handed.
  template <typename Fn>
  size_t Drain(size_t max, Fn&& fn) {
    size_t n = 0;
    while (n < max && !chunks_.empty()) {
      std::vector<uint64_t>& c = chunks_.front();
      if (head_ == c.size()) {
        chunks_.pop_front();
        head_ = 0;
        continue;
      }
      const size_t size = c[head_];
      const size_t words = 1 + (size + 7) / 8;
      fn(static_cast<const void*>(c.data() + head_ + 1), size);
      head_ += words;
      bytes_ -= words * 8;
      records_--;
      n++;
    }
    if (records_ == 0) {
      chunks_.clear();
      head_ = 0;
    }
    return n;
  }

  bool empty() const { return records_ == 0; }
  size_t records() const { return records_; }
  // Bytes the records take here (sizes and padding included).
  size_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kChunkWords = (1 << 20) / 8;
  std::deque<std::vector<uint64_t>> chunks_;  // each: size word, data words, ...
  size_t head_ = 0;                           // the next record's word in chunks_.front()
  size_t bytes_ = 0;
  size_t records_ = 0;
};

}  // namespace flowmesh
