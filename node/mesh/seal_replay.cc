// The replay guard's window and bounded id set.
#include "node/mesh/seal_replay.h"

namespace flowmesh::mesh {

const char* FreshnessName(Freshness f) {
  switch (f) {
    case Freshness::kFresh: return "fresh";
    case Freshness::kReplayed: return "replayed";
    case Freshness::kTooOld: return "too old";
    case Freshness::kTooNew: return "too new";
    case Freshness::kBeforeFloor: return "replayed or sent before this node started";
  }
  return "?";
}

void ReplayGuard::Forget() {
  auto [sent_ns, id] = by_time_.top();
  by_time_.pop();
  ids_.erase(id);
  if (sent_ns > floor_ns_) floor_ns_ = sent_ns;
}

Freshness ReplayGuard::Peek(int64_t sent_ns, int64_t now_ns) const {
  if (sent_ns > now_ns + options_.window_ns) return Freshness::kTooNew;
  if (sent_ns < now_ns - options_.window_ns) return Freshness::kTooOld;
  if (sent_ns <= floor_ns_) return Freshness::kBeforeFloor;
  return Freshness::kFresh;
}

Freshness ReplayGuard::Check(int64_t sent_ns, uint64_t id, int64_t now_ns) {
  const int64_t oldest = now_ns - options_.window_ns;
  while (!by_time_.empty() && by_time_.top().first < oldest) Forget();
  if (Freshness f = Peek(sent_ns, now_ns); f != Freshness::kFresh) return f;
  if (ids_.contains(id)) return Freshness::kReplayed;
  if (ids_.size() >= options_.max_remembered && !by_time_.empty()) {
    // Full of genuine traffic: forgetting the oldest raises the floor to its
    // time, so a message no newer than that would be unprovable; refuse it.
    if (sent_ns <= by_time_.top().first) return Freshness::kBeforeFloor;
    Forget();
  }
  ids_.insert(id);
  by_time_.emplace(sent_ns, id);
  return Freshness::kFresh;
}

}  // namespace flowmesh::mesh
