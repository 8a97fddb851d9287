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

// For a terminal (every name made printable):
//   map: 4 of 5 members answered (not cache-1), 5 workloads, 2 external, 1 balancer, 7 edges, ...
//
//   web-1
//     nginx.service ('nginx', pgid=4656)  10.213.0.2:80
//       <-- 'curl' pgid 5982 on client-1  10.213.0.2:80  3 conns 1.4 KB
//       --> 10.213.250.1:80 balancer on lb-1  10.213.250.1:80  12 conns 91.9 KB
// then "external (no meshd)", the members that did not answer (in full)
// and why, and with a baseline "changes since ...": "+ ... appeared",
// "- ... disappeared", "~ ... changed x3.0".
std::string FormatMapText(const MapResult& result);

// Graphviz: a cluster per host, workloads as boxes, balancers as diamonds,
// external addresses as ellipses, unreachable and unconfirmed nodes dashed
// grey; edges labelled with connections, bytes and "via"; with a baseline,
// appeared edges green, disappeared red and dashed, changed orange.
std::string FormatMapDot(const MapResult& result);

}  // namespace flowmesh
