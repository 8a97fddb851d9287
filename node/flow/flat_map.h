// FlatMap: the hash map for tables with an entry per open connection, where
// a host with a pool of 50k idle connections keeps 100k entries that a
// lookup for a churning one must not touch.
//
// std::unordered_map chains each entry in its own heap node, and a lookup
// reads the node before its bucket and the one after its match (libstdc++),
// most likely idle ones: two cache misses per lookup once the idle pool is
// larger than the cache (perf: 40% of the probe thread at 10k idle). Here a
// lookup probes an index of 8-byte slots (a tag from the hash and a
// position) and reads only the entry whose tag matches. Entries sit packed
// in one vector: no allocation per insert, and an erase moves the last entry
// into the hole.
//
// Differences from std::unordered_map, which the tables using it rely on:
// - any insert may move every entry (references and iterators are good
//   until the next insert or erase);
// - erase(it) moves the last entry to `it` and returns `it`, so
//   `it = erase(it)` in a forward loop visits every entry once;
// - iteration is in no particular order.
// Not thread-safe: the owning table's lock guards it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "node/common/huge_pages.h"

namespace flowmesh {

// How many events ahead a run prefetches its keys' slots (FlatMap::prefetch):
// enough misses in flight to overlap, few enough that the first is still
// cached when its event comes.
inline constexpr size_t kPrefetchAhead = 8;

template <typename K, typename V, typename Hash, typename Eq = std::equal_to<K>>
class FlatMap {
 public:
  using value_type = std::pair<K, V>;
  using iterator = value_type*;
  using const_iterator = const value_type*;

  FlatMap() : index_(kMinIndex), mask_(kMinIndex - 1) {}

  iterator begin() { return entries_.data(); }
  iterator end() { return entries_.data() + entries_.size(); }
  const_iterator begin() const { return entries_.data(); }
  const_iterator end() const { return entries_.data() + entries_.size(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

  iterator find(const K& key) {
    const uint32_t h = HashOf(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot s = index_[i];
      if (s.pos == kEmpty) return end();
      if (s.hash == h && Eq{}(entries_[s.pos].first, key)) return begin() + s.pos;
    }
  }
  const_iterator find(const K& key) const { return const_cast<FlatMap*>(this)->find(key); }
  size_t count(const K& key) const { return find(key) != end() ? 1 : 0; }
  // Starts loading the slot a lookup of key begins at. A table of 100k
  // entries has a 2 MiB index: a key not looked up lately (a new
  // connection's) misses the cache there, and a run of events that
  // prefetches a few keys ahead waits for those misses together instead of
  // one after another (perf: the index load was a fifth of the probe
  // thread's samples at 50k idle connections).
  void prefetch(const K& key) const { __builtin_prefetch(&index_[HashOf(key) & mask_]); }

  // The entry for key, value-initialized if it was not there.
  std::pair<iterator, bool> try_emplace(const K& key) {
    if ((entries_.size() + 1) * 4 > index_.size() * 3) Rehash(IndexSizeFor(entries_.size() + 1));
    const uint32_t h = HashOf(key);
    size_t i = h & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot s = index_[i];
      if (s.pos == kEmpty) break;
      if (s.hash == h && Eq{}(entries_[s.pos].first, key)) return {begin() + s.pos, false};
    }
    if (entries_.size() == entries_.capacity()) entries_.reserve(Grown(entries_.capacity()));
    index_[i] = Slot{h, static_cast<uint32_t>(entries_.size())};
    entries_.emplace_back(key, V{});
    return {end() - 1, true};
  }
  V& operator[](const K& key) { return try_emplace(key).first->second; }

  // Room for n entries without moving them again: a table about to take
  // many at once (the start-up snapshot's 100k) grows once instead of some
  // forty times by a quarter, each a copy of every entry into fresh pages
  // (measured: half of meshd's start-up with 50k idle connections, and 5 MB
  // of its peak RSS). Never shrinks.
  void reserve(size_t n) {
    if (n > entries_.capacity()) entries_.reserve(n);
    if (const size_t size = IndexSizeFor(n); size > index_.size()) Rehash(size);
  }

  // Removes *it; the last entry takes its place (see above).
  iterator erase(iterator it) {
    const auto pos = static_cast<uint32_t>(it - begin());
    const auto last = static_cast<uint32_t>(entries_.size() - 1);
    Unindex(SlotOf(pos, HashOf(it->first)));
    if (pos != last) {
      index_[SlotOf(last, HashOf(entries_[last].first))].pos = pos;
      entries_[pos] = std::move(entries_[last]);
    }
    entries_.pop_back();
    if (entries_.capacity() > kShrinkAbove && entries_.size() * 4 < entries_.capacity()) Shrink();
    return begin() + pos;
  }
  size_t erase(const K& key) {
    iterator it = find(key);
    if (it == end()) return 0;
    erase(it);
    return 1;
  }

  void clear() {
    entries_.clear();
    entries_.shrink_to_fit();
    Index(kMinIndex).swap(index_);
    mask_ = kMinIndex - 1;
  }

  // Heap bytes held (the entries' capacity and the index).
  size_t memory_bytes() const {
    return entries_.capacity() * sizeof(value_type) + index_.capacity() * sizeof(Slot);
  }

 private:
  // The entry at pos in entries_, with the low 32 bits of its (mixed) hash:
  // enough to find its home slot again without reading the entry, and to
  // skip most entries that are not the one looked for.
  struct Slot {
    uint32_t hash = 0;
    uint32_t pos = kEmpty;
  };
  using Index = std::vector<Slot, HugePageAllocator<Slot>>;
  static constexpr uint32_t kEmpty = UINT32_MAX;
  static constexpr size_t kMinIndex = 16;
  // Below this many entries' capacity an emptied table keeps its memory.
  static constexpr size_t kShrinkAbove = 1024;

  // Hashes here mix their fields with little care for the low bits, which
  // pick the slot: spread every bit over them (murmur3's finalizer).
  static uint32_t HashOf(const K& key) {
    uint64_t h = Hash{}(key);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return static_cast<uint32_t>(h);
  }
  // Grows by a quarter, not double: for 100k entries of 120 bytes the spare
  // capacity is resident memory (and moving them all now and then costs
  // less than a heap node each).
  static size_t Grown(size_t capacity) { return capacity + capacity / 4 + 16; }
  // A power of two, at most 3/4 full.
  static size_t IndexSizeFor(size_t n) {
    size_t size = kMinIndex;
    while (n * 4 > size * 3) size *= 2;
    return size;
  }

  // The slot that holds the entry at pos, whose hash is h.
  size_t SlotOf(uint32_t pos, uint32_t h) const {
    size_t i = h & mask_;
    while (index_[i].pos != pos) i = (i + 1) & mask_;
    return i;
  }

  // Empties slot i and moves back the slots after it that probed past it,
  // so a probe never meets a hole before its entry (no tombstones).
  void Unindex(size_t i) {
    for (size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      const Slot s = index_[j];
      if (s.pos == kEmpty) break;
      // s may fill the hole if the hole lies on its probe path (home .. j).
      if (((j - (s.hash & mask_)) & mask_) >= ((j - i) & mask_)) {
        index_[i] = s;
        i = j;
      }
    }
    index_[i] = Slot{};
  }

  void Rehash(size_t size) {
    Index old(size);
    old.swap(index_);
    mask_ = size - 1;
    for (const Slot& s : old) {
      if (s.pos == kEmpty) continue;
      size_t i = s.hash & mask_;
      while (index_[i].pos != kEmpty) i = (i + 1) & mask_;
      index_[i] = s;
    }
  }

  void Shrink() {
    entries_.shrink_to_fit();
    if (const size_t size = IndexSizeFor(entries_.size()); size < index_.size()) Rehash(size);
  }

  // Both reached at random by every lookup: huge pages once large
  // (HugePageAllocator).
  std::vector<value_type, HugePageAllocator<value_type>> entries_;
  Index index_;  // a power of two in size
  size_t mask_;
};

}  // namespace flowmesh
