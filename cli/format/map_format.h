// How `meshctl map` and the web page's /api/map print a map: the JSON of
// docs/api.md (one object, the same bytes from both), a text listing and
// Graphviz dot.
#pragma once

#include <string>

#include "node/look/map_types.h"

namespace flowmesh {

// docs/api.md "GET /api/map": {"query", "window", "summary", "nodes",
// "edges", "members", "changes"} on one line and a newline.
std::string FormatMapJson(const MapResult& result);

}  // namespace flowmesh
