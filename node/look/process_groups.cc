// ProcessIndex: a host's processes grouped as a look asks.
#include "node/look/process_groups.h"

#include <algorithm>
#include <tuple>

namespace flowmesh {

ProcessIndex::ProcessIndex(std::vector<ProcessDetails> all, GroupBy group_by)
    : group_by_(group_by) {
  for (ProcessDetails& p : all) by_id_[{p.pid, p.start_ticks}] = std::move(p);
}

void ProcessIndex::AddListenerOwner(const EndpointRecord& listener) {
  const ProcessRef& owner = listener.proc;
  if (!owner.known()) return;
  auto [it, inserted] = by_id_.try_emplace({owner.pid, owner.start_ticks});
  ProcessDetails& d = it->second;
  if (inserted) {
    d.pid = owner.pid;
    d.start_ticks = owner.start_ticks;
    d.pgid = owner.pgid;
    d.comm = std::string(owner.comm_view());
    d.cgroup_id = owner.cgroup_id;
  }
  if (d.workload.empty()) d.workload = listener.workload;
}

ProcessDetails ProcessIndex::Details(uint32_t pid, uint64_t start_ticks,
                                     std::string_view comm) const {
  auto it = by_id_.find({pid, start_ticks});
  if (it != by_id_.end()) return it->second;
  ProcessDetails d;
  d.pid = pid;
  d.start_ticks = start_ticks;
  d.comm = std::string(comm);
  return d;
}

std::string ProcessIndex::Group(uint32_t pid, uint64_t start_ticks) const {
  return ProcessGroupKey(Details(pid, start_ticks), group_by_);
}

ProcessDetails ProcessIndex::Representative(const std::map<ProcId, uint64_t>& members) const {
  auto most = std::max_element(members.begin(), members.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  ProcessDetails shown = Details(most->first.first, most->first.second);
  if (group_by_ == GroupBy::kPid) return shown;
  const std::string group = ProcessGroupKey(shown, group_by_);
  if (group_by_ == GroupBy::kWorkload && group[0] == 'w') {
    // Start ticks, then connections: the process of the latest restart.
    auto latest =
        std::max_element(members.begin(), members.end(), [](const auto& a, const auto& b) {
          return std::tie(a.first.second, a.second) < std::tie(b.first.second, b.second);
        });
    shown = Details(latest->first.first, latest->first.second);
  }
  if (shown.pgid == 0) return shown;
  for (const auto& [id, p] : by_id_)
    if (p.pid == shown.pgid && p.pgid == shown.pgid && ProcessGroupKey(p, group_by_) == group)
      return p;
  return shown;
}

}  // namespace flowmesh
