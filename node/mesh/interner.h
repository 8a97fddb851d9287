// Strings held once, named by a dense 32-bit id: member names, addresses and
// node ids repeat in every node's view of the mesh, so the views keep ids.
// Simulations share one interner between all their nodes, which is what lets
// 10,000 nodes that each know 10,000 members fit in memory. Never shrinks:
// it holds what the mesh has ever named, a few bytes per member.
//
// Every received alive message looks its name up here, so the table is open
// addressing over ids with the hashes kept beside them: one probe usually
// touches only two small arrays before the final string compare.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowmesh::mesh {

class Interner {
 public:
  Interner() : slots_(64, 0) {}

  uint32_t Intern(std::string_view text);
  std::optional<uint32_t> Find(std::string_view text) const;
  const std::string& Get(uint32_t id) const { return strings_[id]; }
  size_t size() const { return strings_.size(); }

 private:
  // The slot holding `text` (hash `h`), or the empty slot where it would go.
  size_t Probe(std::string_view text, uint64_t h) const;
  void Grow();

  std::deque<std::string> strings_;  // by id
  std::vector<uint64_t> hashes_;     // by id
  std::vector<uint32_t> slots_;      // id + 1, 0 = empty; size a power of two
};

}  // namespace flowmesh::mesh
