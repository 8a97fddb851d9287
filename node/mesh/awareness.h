// Lifeguard's local health (memberlist's "awareness"): a score 0..max-1 that
// rises when this node's own probes fail without nacks or when it has to
// refute a suspicion, and falls with every successful probe. Probe interval
// and timeout are scaled by score+1, so a node that is itself slow waits
// longer before it blames others.
#pragma once

#include <cstdint>

namespace flowmesh::mesh {

class Awareness {
 public:
  // max: the multiplier's ceiling (memberlist's AwarenessMaxMultiplier, 8),
  // so the score stays within 0..max-1.
  explicit Awareness(int max) : max_(max < 1 ? 1 : max) {}

  void ApplyDelta(int delta);
  int Score() const { return score_; }
  int64_t ScaleTimeout(int64_t timeout_ns) const { return timeout_ns * (score_ + 1); }

 private:
  int max_;
  int score_ = 0;
};

}  // namespace flowmesh::mesh
