// The map's changes between two windows: edges that appeared, disappeared,
// or whose traffic changed by more than a factor either way.
#pragma once

#include <vector>

#include "node/look/map_types.h"

namespace flowmesh {

// Edges by (from, to, endpoint). Changed: active connections or bytes
// moved, after/before, beyond `factor` or under 1/factor; the factor shown
// is whichever of the two moved further. Counts are per the baseline's
// window length when both windows are closed (a 1h baseline against 10m:
// this window's counts times 6). A zero baseline counts as one, so from 0
// to N the factor is N, a finite number (the JSON has no infinity) held to
// `factor` like any other. By kind (appeared, disappeared, changed), then
// edge key.
std::vector<MapEdgeChange> CompareMaps(const MapGraph& baseline, const MapGraph& now,
                                       double factor);

// The changes of two whole maps whose ends a cut kept in either window
// (CutMap of each). Compared whole, then cut: an edge the cut of one window
// reaches and the other's does not is not "disappeared" while it exists.
std::vector<MapEdgeChange> ChangesWithin(std::vector<MapEdgeChange> changes,
                                         const MapGraph& now_cut, const MapGraph& baseline_cut);

}  // namespace flowmesh
