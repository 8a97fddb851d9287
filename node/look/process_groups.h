// Which of a host's processes a look shows as one (by workload, pgid or pid),
// and which of them stands for the group: the local directory's grouping of
// the store's processes and flows.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/flow/flow.h"
#include "node/look/look_types.h"

namespace flowmesh {

using ProcId = std::pair<uint32_t, uint64_t>;  // (pid, start_ticks)

// What the store knows about processes, and their groups (ProcessGroupKey):
// by workload across restarts, by pgid, or alone. A process the store does
// not know is a group of its own.
class ProcessIndex {
 public:
  ProcessIndex(std::vector<ProcessDetails> all, GroupBy group_by);

  // A listener's owner as the listener kept it (its ref and workload), for
  // when the store has no row for it (processes expire; listen history and
  // the endpoint table keep the owner longer) or a row without a workload:
  // the listener still groups and shows by workload.
  void AddListenerOwner(const EndpointRecord& listener);

  // The stored details, or only what the caller knows (pid, start, comm).
  ProcessDetails Details(uint32_t pid, uint64_t start_ticks, std::string_view comm = {}) const;
  std::string Group(uint32_t pid, uint64_t start_ticks) const;
  // The process to show for a group, of its members with flows (->
  // connections; not empty): by pid, the process; by pgid, the leader of the
  // busiest member when known (nginx's master); by workload, the latest
  // started member (the unit's process after a restart, not the one that
  // died), or its leader when that is of the same workload.
  ProcessDetails Representative(const std::map<ProcId, uint64_t>& members) const;

 private:
  GroupBy group_by_;
  std::map<ProcId, ProcessDetails> by_id_;
};

}  // namespace flowmesh
