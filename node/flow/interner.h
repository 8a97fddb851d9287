// Interner: one shared copy of a value many table entries hold (the process
// of thousands of connections, the flow of thousands more), named by a
// 4-byte id, so a table keeps an id per entry instead of a copy.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace flowmesh {

// Id 0 is T{} and costs nothing; every other id is counted: Intern takes a
// reference, Release drops one. A value no one holds stays interned (and
// keeps its id) until more than max(kMinUnused, half the values) are
// unheld, then those are forgotten together and their ids reused: under
// churn a process or flow goes from one open connection to none and back
// all the time, and each round trip would otherwise allocate and free a
// hash node. Not thread-safe: the owning table's lock guards it.
template <typename T, typename Hash, typename Eq = std::equal_to<T>>
class Interner {
 public:
  static constexpr size_t kMinUnused = 1024;

  uint32_t Intern(const T& value) {
    if (Eq{}(value, T{})) return 0;
    // Consecutive events are mostly of one process and one flow.
    if (last_ != 0 && Eq{}(slots_[last_ - 1].value, value)) {
      Take(last_);
      return last_;
    }
    auto [it, inserted] = index_.try_emplace(value, 0);
    if (!inserted) {
      Take(it->second);
      last_ = it->second;
      return it->second;
    }
    uint32_t id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
      slots_[id - 1] = Slot{value, 1, true};
    } else {
      slots_.push_back(Slot{value, 1, true});
      id = static_cast<uint32_t>(slots_.size());
    }
    it->second = id;
    last_ = id;
    return id;
  }

  const T& Get(uint32_t id) const { return id == 0 ? kEmpty : slots_[id - 1].value; }

  void Release(uint32_t id) {
    if (id == 0 || --slots_[id - 1].refs > 0) return;
    if (++unheld_ > std::max(kMinUnused, index_.size() / 2)) Sweep();
  }

  // Drops `*id`'s reference and takes one on `value` (in that order of
  // effect, so an entry set to what it holds keeps its id).
  void Replace(uint32_t* id, const T& value) {
    uint32_t next = Intern(value);
    Release(*id);
    *id = next;
  }

  // Distinct values held now.
  size_t size() const { return index_.size() - unheld_; }
  // Ids allocated, held or not (bounded by the values held at the peak plus
  // the unheld ones kept).
  size_t slots() const { return slots_.size(); }

 private:
  struct Slot {
    T value{};
    uint32_t refs = 0;
    bool interned = false;  // in index_ (else its id is in free_)
  };

  void Take(uint32_t id) {
    if (slots_[id - 1].refs++ == 0) unheld_--;
  }

  void Sweep() {
    for (size_t i = 0; i < slots_.size(); i++) {
      Slot& s = slots_[i];
      if (!s.interned || s.refs > 0) continue;
      index_.erase(s.value);
      s = Slot{};
      free_.push_back(static_cast<uint32_t>(i + 1));
    }
    unheld_ = 0;
    if (last_ != 0 && !slots_[last_ - 1].interned) last_ = 0;
  }

  static inline const T kEmpty{};
  std::vector<Slot> slots_;     // id - 1
  std::vector<uint32_t> free_;  // ids no value has, for reuse
  std::unordered_map<T, uint32_t, Hash, Eq> index_;
  size_t unheld_ = 0;  // interned values no one holds
  uint32_t last_ = 0;  // the id Intern gave last, if still interned
};

}  // namespace flowmesh
