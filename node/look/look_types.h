// What a look asks and answers, as plain data: the query, the tree and the
// names of its directions and statuses. meshctl and the control protocol
// carry these; the engine (look.h) walks them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/flow/flow.h"
#include "node/store/store_types.h"

namespace flowmesh {

enum class LookDirection : uint8_t { kBoth, kIn, kOut };  // in = clients, out = dependencies
// unconfirmed: a client host with meshd where no process has a matching
// flow (the leaf keeps the server side's counts), or a dependency whose
// owner has no listener or flow there; unsynced: no member's table
// claims the address, but a live member's table has not arrived yet.
enum class LookStatus : uint8_t {
  kOk,
  kNoAgent,
  kUnreachable,
  kCycle,
  kDepthLimit,
  kUnconfirmed,
  kUnsynced
};

// How a tree puts processes of one host into one node: by workload (the unit
// or container, across restarts; processes without one by pgid), by pgid
// (nginx's master and workers), or each process alone.
enum class GroupBy : uint8_t { kWorkload, kPgid, kPid };

std::string_view GroupByName(GroupBy g);  // "workload", "pgid", "pid"
Result<GroupBy> ParseGroupBy(std::string_view text);
// The group a process of one host falls in: "w<WorkloadGroupKey>" by
// workload when it has one, else "g<pgid>" (by workload or pgid) when it has
// a pgid, else "p<pid>/<start>". The local directory groups flows with it
// and the walk finds repeats on a path with it, so both agree.
std::string ProcessGroupKey(const ProcessDetails& p, GroupBy g);

std::string_view LookDirectionName(LookDirection d);  // "both", "in", "out"
std::string_view LookStatusName(LookStatus s);        // "ok", "no-agent", ...
Result<LookDirection> ParseLookDirection(std::string_view text);
Result<LookStatus> ParseLookStatus(std::string_view text);

struct LookQuery {
  Endpoint target;  // port 0: the host's processes with active flows, downward only
  LookDirection direction = LookDirection::kBoth;
  int depth = 3;
  GroupBy group_by = GroupBy::kWorkload;
  TimeWindow window;
  // The mesh-wide walk: how long one node may take to answer (it becomes an
  // `unreachable` leaf after that), and the whole walk.
  int64_t hop_timeout_ns = 2'000'000'000;
  int64_t timeout_ns = 10'000'000'000;
};

// One vertex of the tree. `stats` describe the edge to the parent (absent
// on the root).
struct LookNode {
  std::string host;  // owning node's name; "" = unknown (no-agent)
  IpAddr addr;
  uint16_t port = 0;  // 0 = none (a client address)
  std::optional<ProcessDetails> process;
  // A balancer's front (addr:port), not a process: its dependencies are the
  // backends it sent connections to, its clients the real clients.
  bool balancer = false;
  // The edge to the parent was dialled as this and a NAT translated it (a
  // Service VIP, a published port, a balancer's front); port 0 = none.
  Endpoint via;
  // Other fronts that reach this endpoint (its published ports, a
  // balancer's VIP); shown on the node.
  std::vector<Endpoint> aliases;
  LookStatus status = LookStatus::kOk;
  // Why the status, for the reader: the failure of an unreachable node
  // ("no answer from app-2 in time"), what an unconfirmed host lacks.
  std::string status_detail;
  std::optional<FlowStats> stats;
  std::vector<LookNode> clients;
  std::vector<LookNode> dependencies;
};

struct LookResult {
  LookQuery query;
  LookNode root;
};

}  // namespace flowmesh
