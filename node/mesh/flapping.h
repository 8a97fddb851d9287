// Flapping made visible: a live member that keeps being suspected and keeps
// refuting it is invisible to SWIM (it never dies), yet it means packet loss,
// a full neighbour table or a starved process. This counts suspicions,
// refutations, incarnation bumps, false deaths and alive<->suspect flaps per
// member, and warns (at most once a minute each) when this node keeps
// refuting or a member keeps flapping.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/common/log.h"
#include "node/mesh/interner.h"

namespace flowmesh::mesh {

struct FlapStats {
  uint64_t suspicions_raised = 0;    // members this node's own probes suspected
  uint64_t suspicions_received = 0;  // suspicions of others this node took from peers' news
  uint64_t refutations = 0;          // suspicions or death notices of this node it refuted
  uint64_t incarnation_bumps =
      0;                      // times this node raised its incarnation (refutations, conflicts)
  uint64_t false_deaths = 0;  // members held dead that came back alive in the same life
  uint64_t flaps = 0;         // suspect -> alive returns, all members
};

struct MemberFlaps {
  uint32_t name = 0;  // interned
  uint64_t flaps = 0;
  uint64_t false_deaths = 0;
};

class FlapTracker {
 public:
  // Three refutations (or flaps of one member) within a minute warrant a warning.
  static constexpr int kWarnCount = 3;
  static constexpr int64_t kWarnWindowNs = 60'000'000'000;

  FlapTracker(const std::string& self_name, const Interner& interner)
      : self_name_(self_name), interner_(interner) {}

  void SuspicionRaised() { stats_.suspicions_raised++; }
  void SuspicionReceived() { stats_.suspicions_received++; }
  void IncarnationBumped() { stats_.incarnation_bumps++; }
  // This node refuted being suspected or declared dead; incarnation is the new one.
  void Refuted(int64_t now_ns, uint32_t incarnation);
  // A suspected member proved alive (a flap).
  void Recovered(uint32_t member, int64_t now_ns);
  // A member this node held dead came back alive without a restart.
  void FalseDeath(uint32_t member, int64_t now_ns);
  // The member was forgotten (reaped).
  void Forget(uint32_t member) { members_.erase(member); }

  const FlapStats& stats() const { return stats_; }
  // Members that flapped or came back from a false death, most flaps first, at most `limit`.
  std::vector<MemberFlaps> Members(size_t limit) const;

 private:
  // The last kWarnCount event times, to tell "kWarnCount within the window".
  struct Recent {
    std::array<int64_t, kWarnCount> at{};
    size_t next = 0;
    uint64_t total = 0;
    // True if this event makes kWarnCount within the window.
    bool Add(int64_t now_ns);
  };
  struct PerMember {
    MemberFlaps counts;
    Recent recent;
  };

  std::string self_name_;
  const Interner& interner_;
  FlapStats stats_;
  Recent refutations_;
  std::unordered_map<uint32_t, PerMember> members_;
  log::RateLimit refute_warning_{kWarnWindowNs};
  log::RateLimit flap_warning_{kWarnWindowNs};
};

}  // namespace flowmesh::mesh
