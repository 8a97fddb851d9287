// Compact member storage, probe order and random selection.
#include "node/mesh/member_list.h"

#include <algorithm>

namespace flowmesh::mesh {

Member* MemberList::Find(uint32_t name) {
  if (name >= slot_of_.size() || slot_of_[name] == 0) return nullptr;
  return &members_[slot_of_[name] - 1];
}

const Member* MemberList::Find(uint32_t name) const {
  return const_cast<MemberList*>(this)->Find(name);
}

Member* MemberList::Add(const Member& member, uint64_t random) {
  if (member.name >= slot_of_.size()) slot_of_.resize(member.name + 1, 0);
  members_.push_back(member);
  slot_of_[member.name] = static_cast<uint32_t>(members_.size());
  if (member.live()) live_++;
  // A random position not yet passed in this round: appending would make
  // newcomers wait for a whole round, placing them early would skip them.
  probe_order_.push_back(member.name);
  size_t rest = probe_order_.size() - probe_index_;
  size_t pos = probe_index_ + random % rest;
  std::swap(probe_order_[pos], probe_order_.back());
  return &members_.back();
}

void MemberList::SetState(Member* member, MemberState state, int64_t now_ns) {
  bool was_live = member->live();
  member->state = state;
  member->state_change_ns = now_ns;
  if (was_live && !member->live()) live_--;
  if (!was_live && member->live()) live_++;
}

void MemberList::Shuffle(const Random& random) {
  for (size_t i = probe_order_.size(); i > 1; i--)
    std::swap(probe_order_[i - 1], probe_order_[random() % i]);
  probe_index_ = 0;
}

Member* MemberList::NextProbeTarget(uint32_t self, const Random& random) {
  // At most one full pass plus the reshuffle: the loop ends even when no
  // member qualifies.
  for (size_t tries = 0; tries <= probe_order_.size(); tries++) {
    if (probe_index_ >= probe_order_.size()) Shuffle(random);
    if (probe_order_.empty()) return nullptr;
    Member* m = Find(probe_order_[probe_index_++]);
    if (m == nullptr || m->name == self || !m->live()) continue;
    return m;
  }
  return nullptr;
}

std::vector<uint32_t> MemberList::Reap(const std::function<bool(const Member&)>& reap) {
  std::vector<uint32_t> gone;
  for (size_t i = 0; i < members_.size();) {
    Member& m = members_[i];
    if (m.live() || !reap(m)) {
      i++;
      continue;
    }
    gone.push_back(m.name);
    slot_of_[m.name] = 0;
    if (i + 1 != members_.size()) {
      m = members_.back();
      slot_of_[m.name] = static_cast<uint32_t>(i + 1);
    }
    members_.pop_back();
  }
  if (!gone.empty()) {
    std::erase_if(probe_order_, [&](uint32_t name) { return Find(name) == nullptr; });
    probe_index_ = std::min(probe_index_, probe_order_.size());
  }
  return gone;
}

std::vector<Member*> MemberList::RandomMembers(size_t k, const Random& random,
                                               const std::function<bool(const Member&)>& keep) {
  std::vector<Member*> out;
  size_t n = members_.size();
  for (size_t i = 0; i < 3 * n && out.size() < k; i++) {
    Member* m = &members_[random() % n];
    if (!keep(*m) || std::find(out.begin(), out.end(), m) != out.end()) continue;
    out.push_back(m);
  }
  return out;
}

}  // namespace flowmesh::mesh
