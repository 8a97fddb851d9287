// Replay protection for sealed mesh messages: each carries its sender's wall
// clock and a random 64-bit id inside the ciphertext; a receiver accepts a
// message only if its time is within the window of its own clock and its id
// has not been seen. Memory is bounded: ids are forgotten once their time
// leaves the window, or, under a flood of genuine traffic, oldest first; either
// way a "floor" remembers the newest forgotten time, and nothing at or below
// the floor is accepted again, so forgetting never reopens a replay (not even
// if the local clock steps backwards).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <queue>
#include <unordered_set>
#include <utility>
#include <vector>

namespace flowmesh::mesh {

struct ReplayOptions {
  // Accepted clock difference between sender and receiver, both ways. Nodes
  // whose clocks differ by more cannot talk: run NTP.
  int64_t window_ns = 30'000'000'000;
  // Ids remembered at most; about 32 bytes each. Steady state is the
  // authenticated message rate times twice the window.
  size_t max_remembered = 1 << 16;
};

// kTooOld and kTooNew are outside the window (clock skew, or a very old
// recording); kBeforeFloor is inside it but at or below the floor: sent
// before this process started, or forgotten (so possibly a replay).
enum class Freshness { kFresh, kReplayed, kTooOld, kTooNew, kBeforeFloor };
const char* FreshnessName(Freshness f);

class ReplayGuard {
 public:
  explicit ReplayGuard(ReplayOptions options = {}) : options_(options) {}

  // Refuses everything sent at or before `ns` from now on. Set to the start
  // time, so a restart (which empties the set) does not reopen replays of
  // what the previous process already accepted.
  void RaiseFloor(int64_t ns) {
    if (ns > floor_ns_) floor_ns_ = ns;
  }
  // Decides about one authenticated message and, if fresh, remembers it.
  Freshness Check(int64_t sent_ns, uint64_t id, int64_t now_ns);
  // What Check would say from the time alone, remembering nothing: for
  // admitting a request's head before its body is read.
  Freshness Peek(int64_t sent_ns, int64_t now_ns) const;
  // Whether `id` was accepted and is still remembered.
  bool Seen(uint64_t id) const { return ids_.contains(id); }

  size_t remembered() const { return ids_.size(); }
  const ReplayOptions& options() const { return options_; }

 private:
  void Forget();

  using Entry = std::pair<int64_t, uint64_t>;  // (sent_ns, id), oldest on top
  ReplayOptions options_;
  std::unordered_set<uint64_t> ids_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> by_time_;
  int64_t floor_ns_ = std::numeric_limits<int64_t>::min();
};

}  // namespace flowmesh::mesh
