// The members one node knows, kept compact (interned strings, 40 bytes each)
// because a simulation holds N views of N members. Also the probe order:
// members are probed round-robin in a shuffled order, new members inserted
// at a random later position (memberlist), so every member is probed once
// per round and failure detection time stays bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "node/mesh/messages.h"

namespace flowmesh::mesh {

struct Member {
  uint32_t name = 0;     // interned
  uint32_t addr = 0;     // interned "ip:port"
  uint32_t node_id = 0;  // interned
  uint32_t incarnation = 0;
  uint64_t generation = 0;
  int64_t state_change_ns = 0;
  MemberState state = MemberState::kDead;

  bool live() const { return state == MemberState::kAlive || state == MemberState::kSuspect; }
};

class MemberList {
 public:
  using Random = std::function<uint64_t()>;

  Member* Find(uint32_t name);
  const Member* Find(uint32_t name) const;
  // Adds a member not known yet; returns it (pointers stay valid until the
  // next Add or Reap).
  Member* Add(const Member& member, uint64_t random);
  // Changes state and keeps the live count.
  void SetState(Member* member, MemberState state, int64_t now_ns);

  size_t size() const { return members_.size(); }
  size_t live() const { return live_; }
  const std::vector<Member>& all() const { return members_; }

  // The next member to probe other than `self`, skipping dead and left ones;
  // null if there is none. At the end of a round the order is reshuffled.
  Member* NextProbeTarget(uint32_t self, const Random& random);
  // Removes members that are dead or left and satisfy `reap`; returns their names.
  std::vector<uint32_t> Reap(const std::function<bool(const Member&)>& reap);
  // Up to k distinct random members accepted by `keep` (memberlist kRandomNodes).
  std::vector<Member*> RandomMembers(size_t k, const Random& random,
                                     const std::function<bool(const Member&)>& keep);

 private:
  void Shuffle(const Random& random);

  std::vector<Member> members_;
  std::vector<uint32_t> slot_of_;      // interned name -> slot + 1 (0: unknown)
  std::vector<uint32_t> probe_order_;  // interned names
  size_t probe_index_ = 0;
  size_t live_ = 0;
};

}  // namespace flowmesh::mesh
