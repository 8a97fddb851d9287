// Names of look directions, statuses and groupings, both ways, and the
// group key of a process.
#include "node/look/look_types.h"

#include <string>

#include "node/proc/workload.h"

namespace flowmesh {

std::string_view GroupByName(GroupBy g) {
  switch (g) {
    case GroupBy::kWorkload:
      return "workload";
    case GroupBy::kPgid:
      return "pgid";
    case GroupBy::kPid:
      return "pid";
  }
  return "workload";
}

Result<GroupBy> ParseGroupBy(std::string_view text) {
  for (GroupBy g : {GroupBy::kWorkload, GroupBy::kPgid, GroupBy::kPid})
    if (text == GroupByName(g)) return g;
  return InvalidArgument("unknown grouping '" + std::string(text) +
                         "'; use workload, pgid or pid");
}

std::string ProcessGroupKey(const ProcessDetails& p, GroupBy g) {
  if (g == GroupBy::kWorkload && !p.workload.empty()) {
    std::string key = WorkloadGroupKey(p.workload);
    if (!key.empty()) return "w" + key;
  }
  if (g != GroupBy::kPid && p.pgid != 0) return "g" + std::to_string(p.pgid);
  return "p" + std::to_string(p.pid) + "/" + std::to_string(p.start_ticks);
}

std::string_view LookDirectionName(LookDirection d) {
  switch (d) {
    case LookDirection::kBoth: return "both";
    case LookDirection::kIn: return "in";
    case LookDirection::kOut: return "out";
  }
  return "both";
}

std::string_view LookStatusName(LookStatus s) {
  switch (s) {
    case LookStatus::kOk: return "ok";
    case LookStatus::kNoAgent: return "no-agent";
    case LookStatus::kUnreachable: return "unreachable";
    case LookStatus::kCycle: return "cycle";
    case LookStatus::kDepthLimit: return "depth-limit";
    case LookStatus::kUnconfirmed: return "unconfirmed";
    case LookStatus::kUnsynced: return "unsynced";
  }
  return "ok";
}

Result<LookDirection> ParseLookDirection(std::string_view text) {
  for (LookDirection d : {LookDirection::kBoth, LookDirection::kIn, LookDirection::kOut})
    if (text == LookDirectionName(d)) return d;
  return InvalidArgument("unknown direction '" + std::string(text) +
                         "'; use in (clients), out (dependencies) or both");
}

Result<LookStatus> ParseLookStatus(std::string_view text) {
  for (LookStatus s :
       {LookStatus::kOk, LookStatus::kNoAgent, LookStatus::kUnreachable, LookStatus::kCycle,
        LookStatus::kDepthLimit, LookStatus::kUnconfirmed, LookStatus::kUnsynced})
    if (text == LookStatusName(s)) return s;
  return InvalidArgument("unknown look status '" + std::string(text) + "'");
}

}  // namespace flowmesh
