// One reason meshd drops or refuses something from the network, with its
// count: the plain record that travels from the mesh (node/mesh/refusals.h)
// through the control protocol to `meshctl status` and /metrics.
#pragma once

#include <cstdint>
#include <string>

namespace flowmesh {

struct Refusal {
  std::string reason;  // a Prometheus label value: lower_snake_case, stable
  uint64_t count = 0;
  std::string help;  // one line for an operator: what was dropped and why
};

}  // namespace flowmesh
