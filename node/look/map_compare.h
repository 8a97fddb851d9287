// The map's changes between two windows: edges that appeared, disappeared,
// or whose traffic changed by more than a factor either way.
#pragma once

#include <vector>

#include "node/look/map_types.h"

namespace flowmesh {

// Edges by (from, to, endpoint). Changed: active connections after/before
// beyond `factor` or under 1/factor; when the counts are equal, bytes moved
// the same way (an edge from 0 bytes to some is changed only by its
// connections). From 0 connections to N, the factor shown is N (a finite
// number: the JSON has no infinity). By kind (appeared, disappeared,
// changed), then edge key.
std::vector<MapEdgeChange> CompareMaps(const MapGraph& baseline, const MapGraph& now,
                                       double factor);

}  // namespace flowmesh
