// String interning for the mesh views.
#include "node/mesh/interner.h"

#include <functional>

namespace flowmesh::mesh {

size_t Interner::Probe(std::string_view text, uint64_t h) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    uint32_t slot = slots_[i];
    if (slot == 0) return i;
    if (hashes_[slot - 1] == h && strings_[slot - 1] == text) return i;
  }
}

void Interner::Grow() {
  std::vector<uint32_t> old = std::move(slots_);
  slots_.assign(old.size() * 2, 0);
  size_t mask = slots_.size() - 1;
  for (uint32_t slot : old) {
    if (slot == 0) continue;
    size_t i = hashes_[slot - 1] & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }
}

uint32_t Interner::Intern(std::string_view text) {
  uint64_t h = std::hash<std::string_view>{}(text);
  size_t i = Probe(text, h);
  if (slots_[i] != 0) return slots_[i] - 1;
  uint32_t id = static_cast<uint32_t>(strings_.size());
  strings_.emplace_back(text);
  hashes_.push_back(h);
  slots_[i] = id + 1;
  // At most half full keeps probe runs short.
  if (2 * strings_.size() > slots_.size()) Grow();
  return id;
}

std::optional<uint32_t> Interner::Find(std::string_view text) const {
  size_t i = Probe(text, std::hash<std::string_view>{}(text));
  if (slots_[i] == 0) return std::nullopt;
  return slots_[i] - 1;
}

}  // namespace flowmesh::mesh
