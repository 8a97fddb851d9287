// The replay guard's window and bounded id set.
#include "node/mesh/seal_replay.h"

namespace flowmesh::mesh {

const char* FreshnessName(Freshness f) {
  switch (f) {
    case Freshness::kFresh: return "fresh";
    case Freshness::kReplayed: return "replayed";
    case Freshness::kTooOld: return "too old";
    case Freshness::kTooNew: return "too new";
  }
  return "?";
}

void ReplayGuard::Forget() {
  auto [sent_ns, id] = by_time_.top();
  by_time_.pop();
  ids_.erase(id);
  if (sent_ns > floor_ns_) floor_ns_ = sent_ns;
}

Freshness ReplayGuard::Check(int64_t sent_ns, uint64_t id, int64_t now_ns) {
  const int64_t oldest = now_ns - options_.window_ns;
  while (!by_time_.empty() && by_time_.top().first < oldest) Forget();
  if (sent_ns > now_ns + options_.window_ns) return Freshness::kTooNew;
  if (sent_ns < oldest || sent_ns <= floor_ns_) return Freshness::kTooOld;
  if (ids_.contains(id)) return Freshness::kReplayed;
  if (ids_.size() >= options_.max_remembered && !by_time_.empty()) {
    // Full of genuine traffic: forgetting the oldest raises the floor to its
    // time, so a message no newer than that would be unprovable; refuse it.
    if (sent_ns <= by_time_.top().first) return Freshness::kTooOld;
    Forget();
  }
  ids_.insert(id);
  by_time_.emplace(sent_ns, id);
  return Freshness::kFresh;
}

}  // namespace flowmesh::mesh
