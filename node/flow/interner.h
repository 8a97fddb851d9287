// Interner: one shared copy of a value many table entries hold (the process
// of thousands of connections, the flow of thousands more), named by a
// 4-byte id, so a table keeps an id per entry instead of a copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace flowmesh {

// Id 0 is T{} and costs nothing; every other id is counted: Intern takes a
// reference, Release drops one, and the last Release frees the id for
// reuse. Not thread-safe: the owning table's lock guards it.
template <typename T, typename Hash, typename Eq = std::equal_to<T>>
class Interner {
 public:
  uint32_t Intern(const T& value) {
    if (Eq{}(value, T{})) return 0;
    auto [it, inserted] = index_.try_emplace(value, 0);
    if (!inserted) {
      slots_[it->second - 1].refs++;
      return it->second;
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
      slots_[id - 1] = Slot{value, 1};
    } else {
      slots_.push_back(Slot{value, 1});
      id = static_cast<uint32_t>(slots_.size());
    }
    it->second = id;
    return id;
  }

  const T& Get(uint32_t id) const { return id == 0 ? kEmpty : slots_[id - 1].value; }

  void Release(uint32_t id) {
    if (id == 0) return;
    Slot& s = slots_[id - 1];
    if (--s.refs > 0) return;
    index_.erase(s.value);
    free_.push_back(id);
  }

  // Drops `*id`'s reference and takes one on `value` (in that order of
  // effect, so an entry set to what it holds keeps its id).
  void Replace(uint32_t* id, const T& value) {
    uint32_t next = Intern(value);
    Release(*id);
    *id = next;
  }

  // Distinct values held now.
  size_t size() const { return index_.size(); }

 private:
  struct Slot {
    T value{};
    uint32_t refs = 0;
  };
  static inline const T kEmpty{};
  std::vector<Slot> slots_;     // id - 1
  std::vector<uint32_t> free_;  // ids no entry holds, for reuse
  std::unordered_map<T, uint32_t, Hash, Eq> index_;
};

}  // namespace flowmesh
