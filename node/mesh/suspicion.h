// Lifeguard's local-health-aware suspicion: a suspect is declared dead after a
// timeout that starts at `max` and shrinks toward `min` as independent
// confirmations (other members suspecting the same node) arrive, so real
// failures are declared fast while a lone, possibly slow accuser cannot kill
// a healthy node quickly. Numbers as in memberlist (suspicion.go).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "node/mesh/transport.h"

namespace flowmesh::mesh {

// min = mult * max(1, log10(n)) * probe_interval (memberlist suspicionTimeout).
int64_t SuspicionMinTimeout(int suspicion_mult, size_t n, int64_t probe_interval_ns);

// Time left after `elapsed_ns` with n of k expected confirmations: the
// timeout falls from max to min with log(n+1)/log(k+1), floored to the ms.
int64_t RemainingSuspicionTime(int n, int k, int64_t elapsed_ns, int64_t min_ns, int64_t max_ns);

class Suspicion {
 public:
  // `from` (an interned name) started the suspicion and cannot confirm it.
  // k: confirmations expected; with k < 1 the timeout is min from the start.
  Suspicion(Runtime& runtime, uint32_t from, int k, int64_t min_ns, int64_t max_ns,
            std::function<void()> on_timeout);
  ~Suspicion();
  Suspicion(const Suspicion&) = delete;
  Suspicion& operator=(const Suspicion&) = delete;

  // Counts one confirmation from a member not heard from yet and reschedules
  // the timeout; false if it was not new (or enough were already counted),
  // which is also the caller's cue not to re-gossip it.
  bool Confirm(uint32_t from);

  int confirmations() const { return n_; }
  int64_t deadline_ns() const { return deadline_ns_; }

 private:
  void Arm(int64_t delay_ns);

  Runtime& runtime_;
  int k_;
  int n_ = 0;
  int64_t min_ns_;
  int64_t max_ns_;
  int64_t start_ns_;
  int64_t deadline_ns_ = 0;
  std::vector<uint32_t> seen_;
  std::function<void()> on_timeout_;
  Runtime::TimerId timer_ = 0;
};

}  // namespace flowmesh::mesh
