// FlapTracker: counters and the rate-limited warnings about flapping.
#include "node/mesh/flapping.h"

#include <algorithm>

namespace flowmesh::mesh {
namespace {

// What an operator checks first. Clock jumps are not among them: SWIM times
// everything on each node's own monotonic clock.
constexpr const char* kLikelyCauses =
    "likely causes: packet loss between the nodes; a full neighbour (ARP/NDP) table, which "
    "drops packets to some peers (check `ip -s neigh` and raise "
    "net.ipv4.neigh.default.gc_thresh3 / net.ipv6.neigh.default.gc_thresh3); or CPU starvation "
    "delaying meshd's acks (check load, CPU limits, steal time). Clock jumps do not cause this: "
    "SWIM times everything on each node's monotonic clock";

std::string Held(uint64_t held, const char* what) {
  return held == 0 ? std::string()
                   : " (" + std::to_string(held) + " more " + what + " in the last minute)";
}

}  // namespace

bool FlapTracker::Recent::Add(int64_t now_ns) {
  at[next] = now_ns;
  next = (next + 1) % at.size();
  total++;
  // at[next] is now the oldest of the last kWarnCount events.
  return total >= static_cast<uint64_t>(kWarnCount) && now_ns - at[next] <= kWarnWindowNs;
}

void FlapTracker::Refuted(int64_t now_ns, uint32_t incarnation) {
  stats_.refutations++;
  if (!refutations_.Add(now_ns)) return;
  uint64_t held = 0;
  if (!refute_warning_.Allow(now_ns, &held)) return;
  FM_LOG(Warn, "mesh") << self_name_ << " had to refute being suspected or declared dead "
                       << kWarnCount << " times within " << kWarnWindowNs / 1'000'000'000
                       << " s (incarnation now " << incarnation << ", " << stats_.refutations
                       << " refutations since start): its peers do not get its acks in time; "
                       << kLikelyCauses << Held(held, "refutations");
}

void FlapTracker::Recovered(uint32_t member, int64_t now_ns) {
  stats_.flaps++;
  PerMember& m = members_[member];
  m.counts.name = member;
  m.counts.flaps++;
  if (!m.recent.Add(now_ns)) return;
  uint64_t held = 0;
  if (!flap_warning_.Allow(now_ns, &held)) return;
  FM_LOG(Warn, "mesh") << "member " << interner_.Get(member) << " went suspect and back to alive "
                       << kWarnCount << " times within " << kWarnWindowNs / 1'000'000'000 << " s ("
                       << m.counts.flaps << " since start), as seen from " << self_name_
                       << ": probes of it fail now and then; " << kLikelyCauses
                       << Held(held, "flaps or false deaths of members");
}

void FlapTracker::FalseDeath(uint32_t member, int64_t now_ns) {
  stats_.false_deaths++;
  PerMember& m = members_[member];
  m.counts.name = member;
  m.counts.false_deaths++;
  uint64_t held = 0;
  if (!flap_warning_.Allow(now_ns, &held)) return;
  FM_LOG(Warn, "mesh") << "member " << interner_.Get(member) << " was held dead by " << self_name_
                       << " but is alive (it refuted with a higher incarnation, same life): a "
                          "false death; "
                       << kLikelyCauses << Held(held, "flaps or false deaths of members");
}

std::vector<MemberFlaps> FlapTracker::Members(size_t limit) const {
  std::vector<MemberFlaps> out;
  out.reserve(members_.size());
  for (const auto& [name, m] : members_) out.push_back(m.counts);
  std::sort(out.begin(), out.end(), [this](const MemberFlaps& a, const MemberFlaps& b) {
    if (a.flaps + a.false_deaths != b.flaps + b.false_deaths)
      return a.flaps + a.false_deaths > b.flaps + b.false_deaths;
    return interner_.Get(a.name) < interner_.Get(b.name);
  });
  if (out.size() > limit) out.resize(limit);
  return out;
}

}  // namespace flowmesh::mesh
