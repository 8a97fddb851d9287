// `map`: the whole mesh's service-level graph in a window, merged at the
// asking node from every member's answer (map_merge.h), and the changes
// between two windows (map_compare.h). Plain data: meshctl, the control
// protocol and the web page's JSON API (docs/api.md) carry these.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/flow/flow.h"
#include "node/look/look_types.h"
#include "node/store/store_types.h"

namespace flowmesh {

enum class MapNodeKind : uint8_t {
  kWorkload,  // a workload (or process group, by --group-by) on a member
  kBalancer,  // a front a member's NAT balances (a VIP:port) to backends
  kExternal,  // an address no member claims: a server endpoint, or a client address (port 0)
};
std::string_view MapNodeKindName(MapNodeKind k);  // "workload", "balancer", "external"
Result<MapNodeKind> ParseMapNodeKind(std::string_view text);

// One vertex. Its id is the same from every member and in every window
// (a workload's group key is its unit or container across restarts):
//   workload  "<host>/<ProcessGroupKey>"      e.g. "web-1/wunit:nginx.service"
//   balancer  "<host>/lb:<front ip:port>"     e.g. "lb-1/lb:10.96.0.10:80"
//   external  "ext:<ip:port>" or "ext:<ip>"   e.g. "ext:203.0.113.9:443"
//   a client host's unconfirmed connections   "<host>/unconfirmed:<ip>"
//   an unreachable member's own addresses     "<host>/unreachable"
struct MapNode {
  std::string id;
  MapNodeKind kind = MapNodeKind::kWorkload;
  std::string host;  // the member; "" for external
  // A workload's representative process (its workload inside); none for a
  // balancer, an external address, or a member that did not answer and
  // announced no owner.
  std::optional<ProcessDetails> process;
  // Where it listens (workload), its front (balancer), the address (external;
  // port 0 = a client address with no agent).
  std::vector<Endpoint> endpoints;
  // ok; unreachable: its member did not answer (the node comes from the
  // member's gossiped table); no-agent: external; unconfirmed: a client
  // host with meshd where no process has a matching flow; unsynced: no
  // table claims the address but a live member's table is not in yet.
  LookStatus status = LookStatus::kOk;
  std::string status_detail;  // why the status ("no answer from app-2 in 2s")
  // What every output shows first: "nginx.service", "container web",
  // "pod shop/api-7d9c5b-x2k4q/api", "'curl' pgid 1234", "203.0.113.9:443".
  std::string label;
};

// Connections from one node to another, at one server endpoint. The same
// connections seen by both ends are one edge.
struct MapEdge {
  std::string from;   // the client's node id
  std::string to;     // the server's node id
  Endpoint endpoint;  // the server endpoint the connections reached
  Endpoint via;       // what was dialled when a NAT translated it; port 0 = none
  // The client side's counts when its member reported the edge, else the
  // server side's.
  FlowStats stats;
  bool client_seen = false;  // the client's member reported these connections
  bool server_seen = false;  // the server's member reported them
};

// How each member took part in this map.
struct MapMember {
  std::string name;
  std::string address;  // its mesh address ("ip:port")
  std::string state;    // alive, suspect, dead, left
  bool answered = false;
  std::string error;  // why not ("no answer in 2s", "dead: not asked", "meshd without map")
  uint64_t answer_bytes = 0;  // the size of its answer on the wire
  int64_t latency_ns = 0;     // from query sent to answer decoded
  bool truncated = false;     // it had more than an answer may carry; the rest is missing
};

struct MapGraph {
  TimeWindow window;
  std::vector<MapNode> nodes;  // by id
  std::vector<MapEdge> edges;  // by (from, to, endpoint)
  std::vector<MapMember> members;  // by name; this node included
};

// What an edge did between the baseline window and this one. The key of an
// edge is (from, to, endpoint).
enum class MapChangeKind : uint8_t { kAppeared, kDisappeared, kChanged };
std::string_view MapChangeKindName(MapChangeKind k);  // "appeared", "disappeared", "changed"

struct MapEdgeChange {
  MapChangeKind kind = MapChangeKind::kAppeared;
  MapEdge edge;                    // this window's (appeared, changed) or the baseline's (disappeared)
  std::optional<FlowStats> before;  // the baseline's stats (changed, disappeared)
  // after / before of connections (active()) or of bytes moved, whichever
  // moved further from 1 (either may make an edge changed); per the
  // baseline's window length; a zero baseline counts as 1. > 1 grew, < 1
  // shrank (map_compare.h).
  double factor = 0;
};

struct MapQuery {
  TimeWindow window;
  GroupBy group_by = GroupBy::kWorkload;
  // Cut the map around nodes: those on `host`, and those whose label, unit,
  // container name, pod or endpoint contains `workload`; `depth` edges away
  // from them, either way (0 = only them). Both empty = the whole map.
  std::string host;
  std::string workload;
  int depth = 1;
  // Members asked at once, each with `hop_timeout_ns` to answer; the whole
  // map within `timeout_ns`.
  int concurrency = 64;
  int64_t hop_timeout_ns = 2'000'000'000;
  int64_t timeout_ns = 5'000'000'000;
  // Also compare with this window: edges that appeared, disappeared, or
  // changed by more than `change_factor` either way.
  std::optional<TimeWindow> baseline;
  double change_factor = 2.0;
};

struct MapResult {
  MapQuery query;
  MapGraph graph;
  std::optional<MapGraph> baseline;  // with query.baseline
  std::vector<MapEdgeChange> changes;  // with query.baseline: by kind, then edge key
};

// Bounds every map query is held to, from meshctl and from the page alike.
// A map holds a control worker or a page worker until it is done (a
// 1,000-member map takes under 2 s); longer is not a map query.
constexpr int64_t kMaxMapTimeoutNs = 60'000'000'000;
constexpr size_t kMaxMapQueryTextBytes = 1024;  // --host, --workload
// The mesh transport has 256 outbound exchanges; meshctl's and the page's
// maps share them. At most kMaxMapsRunning maps gather at once on a node,
// whoever asked, each with at most kMaxMapMemberQueries member queries out
// (MapQuery.concurrency is clamped to it); another waits up to
// kMapSlotWaitNs for one to finish, then is refused.
constexpr int kMaxMapsRunning = 2;
constexpr int kMaxMapMemberQueries = 64;
constexpr int64_t kMapSlotWaitNs = 1'000'000'000;
// The members' answers one map reads, in wire bytes, both windows together
// (1,000 members may send 4 MiB each). A member whose answer comes after
// the budget is spent is truncated: nothing of it is drawn, and it says why.
constexpr uint64_t kMaxMapAnswerBytes = 256ull << 20;

// `text` cut to at most `max` bytes, not inside a UTF-8 character. What a
// peer or a process names (an error, a label) may be any length; the map's
// decoders refuse what is over their limits, so encoders cut it first.
std::string ClampMapText(std::string_view text, size_t max);
// The most of a member's error text the asker keeps: it goes into the
// status of each of that member's nodes.
constexpr size_t kMaxMapPeerErrorBytes = 256;

// A map query as meshctl's flags and /api/map's parameters spell it; both
// parse it here, so they ask the same question. Empty = the default.
struct MapQueryText {
  std::string since = "1h";  // --since: a duration before now, "now" or RFC 3339
  std::string until;         // --until: default now
  // --compare-to OFFSET: the baseline is this window moved OFFSET back
  // ("24h": the same hour yesterday). Or --baseline-since/--baseline-until.
  std::string compare_to;
  std::string baseline_since;
  std::string baseline_until;
  std::string change_factor;  // --change-factor: default 2
  std::string group_by;       // workload, pgid, pid
  std::string host;
  std::string workload;
  std::string depth;  // default 1
  std::string timeout;  // the whole map; default 5s
};
// The query, or an error naming the flag (as "--name") and what is wrong
// with its value.
Result<MapQuery> ParseMapQueryText(const MapQueryText& text, int64_t now_ns);

}  // namespace flowmesh
