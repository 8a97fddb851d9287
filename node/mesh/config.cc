// Interval scaling for push-pull.
#include "node/mesh/config.h"

#include <cmath>

namespace flowmesh::mesh {

int64_t PushPullInterval(int64_t base_ns, size_t n) {
  constexpr double kThreshold = 32;
  if (n <= kThreshold) return base_ns;
  double multiplier = std::ceil(std::log2(static_cast<double>(n)) - std::log2(kThreshold)) + 1.0;
  return static_cast<int64_t>(multiplier) * base_ns;
}

}  // namespace flowmesh::mesh
