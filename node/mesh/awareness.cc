// Lifeguard local health score.
#include "node/mesh/awareness.h"

#include <algorithm>

namespace flowmesh::mesh {

void Awareness::ApplyDelta(int delta) { score_ = std::clamp(score_ + delta, 0, max_ - 1); }

}  // namespace flowmesh::mesh
