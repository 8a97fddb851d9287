// How `meshctl look` prints a tree: Shawk's text tree, DESIGN.md's JSON and
// Graphviz dot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/look/look_types.h"

namespace flowmesh {

// Shawk's tree, one line per node and a newline after each, the process's
// workload (WorkloadLabel) before it when it has one:
//   10.213.0.2:80 nginx.service ('nginx', pgid=4656) on web-1
//   └<-- 10.213.0.1 ('curl', pgid=5982) on client-1  3 conns 1.2 KB
//   └--> 10.213.0.3:8000 container web (docker 3f2a1c4d5e6f) ('python3', pgid=6111) on app-1 ...
//        └--> 10.213.0.4:6379 ('redis-server', pgid=2127) on cache-1 [depth-limit]  1 conn 80 B
// A non-ok status follows in brackets, then the edge's connections and bytes
// (both directions). Through NAT, after the host: " via VIP:port" when the
// edge was dialled as another address, " (also FRONT, ...)" for the node's
// other fronts; a balancer reads "10.213.0.9:8000 balancer on lb-1".
std::string FormatLookTree(const LookResult& result);

// {"query": {...}, "root": NODE} on one line, as DESIGN.md specifies; a
// node's "process" has "workload" (WorkloadJson: an object, or null).
std::string FormatLookJson(const LookResult& result);

// A Graphviz digraph: one vertex per process group on a host, as the look
// grouped them (a process reached twice, as in a cycle, is one vertex; the
// workload label is its first line), arrows from caller to callee
// labelled with connections and bytes (and "via X" through a NAT); a
// balancer's front is a vertex of its own, a diamond.
std::string FormatLookDot(const LookResult& result);

// The "process" and "stats" objects of a look node, which the map's nodes
// and edges share (map_format.h).
std::string LookProcessJson(const ProcessDetails& p);
std::string LookStatsJson(const FlowStats& s);

// "512 B", "3.4 KB", "1.2 MB" (units of 1024, as tcplife).
std::string FormatLookBytes(uint64_t bytes);
// Connections open at some moment in the window; when some of them opened
// before it (a pool, a keep-alive), how many opened inside it: "3 conns (1 new)".
std::string FormatLookConns(const FlowStats& s);
// A Graphviz quoted string: line breaks become dot's \n, other control
// characters '?', quotes and backslashes escaped (so no \N or \G expands).
std::string DotQuote(std::string_view s);

}  // namespace flowmesh
