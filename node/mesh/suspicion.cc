// Suspicion timeouts with confirmations (Lifeguard LHA-Suspicion).
#include "node/mesh/suspicion.h"

#include <algorithm>
#include <cmath>

namespace flowmesh::mesh {

int64_t SuspicionMinTimeout(int suspicion_mult, size_t n, int64_t probe_interval_ns) {
  double scale = std::max(1.0, std::log10(std::max(1.0, static_cast<double>(n))));
  // Three decimals of the scale, as memberlist keeps them in integer time.
  int64_t milli = static_cast<int64_t>(scale * 1000);
  return suspicion_mult * milli * probe_interval_ns / 1000;
}

int64_t RemainingSuspicionTime(int n, int k, int64_t elapsed_ns, int64_t min_ns, int64_t max_ns) {
  double frac = std::log(n + 1.0) / std::log(k + 1.0);
  double raw_s = max_ns / 1e9 - frac * (max_ns - min_ns) / 1e9;
  int64_t timeout_ns = static_cast<int64_t>(std::floor(1000.0 * raw_s)) * 1000000;
  timeout_ns = std::max(timeout_ns, min_ns);
  return timeout_ns - elapsed_ns;
}

Suspicion::Suspicion(Runtime& runtime, uint32_t from, int k, int64_t min_ns, int64_t max_ns,
                     std::function<void()> on_timeout)
    : runtime_(runtime),
      k_(k),
      min_ns_(min_ns),
      max_ns_(max_ns),
      start_ns_(runtime.NowNs()),
      seen_{from},
      on_timeout_(std::move(on_timeout)) {
  Arm(k < 1 ? min_ns : max_ns);
}

Suspicion::~Suspicion() {
  if (timer_ != 0) runtime_.Cancel(timer_);
}

void Suspicion::Arm(int64_t delay_ns) {
  if (timer_ != 0) runtime_.Cancel(timer_);
  delay_ns = std::max<int64_t>(delay_ns, 0);
  deadline_ns_ = runtime_.NowNs() + delay_ns;
  timer_ = runtime_.After(delay_ns, [this] {
    timer_ = 0;
    on_timeout_();  // may destroy *this: nothing after
  });
}

bool Suspicion::Confirm(uint32_t from) {
  if (n_ >= k_) return false;
  if (std::find(seen_.begin(), seen_.end(), from) != seen_.end()) return false;
  seen_.push_back(from);
  n_++;
  int64_t elapsed = runtime_.NowNs() - start_ns_;
  Arm(RemainingSuspicionTime(n_, k_, elapsed, min_ns_, max_ns_));
  return true;
}

}  // namespace flowmesh::mesh
