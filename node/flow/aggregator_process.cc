// The aggregator's processes: which to look up and write into the batch
// (first sight, the hourly refresh, and again whenever a later lookup names
// them otherwise: a walk skipped at first sight, a container its runtime
// names late, a move the probe saw), and their workloads on the listeners
// they own. The store overwrites a process's row with each write.
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/flow/aggregator.h"

namespace flowmesh {
namespace {

ProcessDetails DetailsFromRef(const ProcessRef& ref) {
  ProcessDetails d;
  d.pid = ref.pid;
  d.start_ticks = ref.start_ticks;
  d.comm = std::string(ref.comm_view());
  return d;
}

void Mix(size_t& h, size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); }

// What a second write is for: the cgroup and its workload (the rest of a
// verified identity does not change). A hash, not a copy: up to
// max_processes of them are kept.
size_t Fingerprint(const ProcessDetails& d) {
  const Workload& w = d.workload;
  const std::hash<std::string> str;
  size_t h = std::hash<uint64_t>{}(d.cgroup_id);
  Mix(h,
      static_cast<size_t>(w.kind) | (size_t{w.user_unit} << 8) | (size_t{w.pod.has_value()} << 9));
  for (const std::string* f : {&w.runtime, &w.id, &w.name, &w.unit, &w.cgroup}) Mix(h, str(*f));
  if (w.pod)
    for (const std::string* f : {&w.pod->uid, &w.pod->name, &w.pod->ns, &w.pod->qos})
      Mix(h, str(*f));
  return h;
}

bool Owns(const EndpointRecord& l, const ProcessRef& p) {
  return l.proc.pid == p.pid && l.proc.start_ticks == p.start_ticks;
}

}  // namespace

void Aggregator::NoteProcess(const ProcessRef& proc, int64_t ts_ns, Work& w, bool owner) {
  if (!proc.known()) return;
  auto [it, inserted] = processes_.try_emplace(ProcKey{proc.pid, proc.start_ticks});
  ProcSeen& seen = it->second;
  if (inserted || ts_ns - seen.written_ns >= options_.process_refresh_ns) {
    seen.written_ns = seen.checked_ns = ts_ns;
    seen.cgroup_id = proc.cgroup_id;
    w.processes.push_back({proc, /*write=*/true});
    if (processes_.size() > options_.max_processes) BoundProcesses(ts_ns);
    return;
  }
  // Written already. Again when the probe saw it in another cgroup, or when
  // what was written may be named by now; then written only if it changed.
  // At most every process_recheck_ns: a process that moved after listen()
  // has refs of both cgroups (accepted connections carry the listener's).
  const bool moved = proc.cgroup_id != 0 && proc.cgroup_id != seen.cgroup_id;
  const bool due = ts_ns - seen.checked_ns >= options_.process_recheck_ns;
  if (!owner && !((moved || seen.may_change) && due)) return;
  seen.checked_ns = ts_ns;
  if (proc.cgroup_id != 0) seen.cgroup_id = proc.cgroup_id;
  w.processes.push_back({proc, /*write=*/false});
}

void Aggregator::BoundProcesses(int64_t now_ns) {
  std::erase_if(processes_, [&](const auto& p) {
    return now_ns - p.second.written_ns >= options_.process_refresh_ns;
  });
  // Still too many live processes: forgetting one only means writing its
  // details once more.
  if (processes_.size() > options_.max_processes) processes_.clear();
}

void Aggregator::LookUpProcesses(const std::vector<ProcLookup>& lookups,
                                 const std::vector<ConnKey>& listened) {
  // Outside the locks: details may come from /proc.
  std::vector<ProcessDetails> details;
  details.reserve(lookups.size());
  for (const ProcLookup& l : lookups)
    details.push_back(cache_ ? cache_->Lookup(l.ref) : DetailsFromRef(l.ref));

  std::lock_guard lock(state_mu_);
  std::lock_guard pending(pending_mu_);
  std::vector<size_t> renamed;  // of lookups
  for (size_t i = 0; i < lookups.size(); ++i) {
    const ProcessRef& ref = lookups[i].ref;
    const size_t fp = Fingerprint(details[i]);
    bool write = lookups[i].write;
    auto it = processes_.find(ProcKey{ref.pid, ref.start_ticks});
    if (it != processes_.end()) {
      ProcSeen& seen = it->second;
      if (seen.looked_up && seen.fingerprint != fp) {
        write = true;
        renamed.push_back(i);
        stats_.processes_renamed++;
      }
      seen.fingerprint = fp;
      seen.looked_up = true;
      seen.may_change = cache_ != nullptr && cache_->MayNameLater(details[i]);
    }
    if (write) pending_.processes.push_back(details[i]);
  }
  // Listeners just added (their owner may not have been cached then), and
  // every listener of a process named otherwise now.
  if (!listened.empty()) {
    // A start-up seed brings thousands of listeners in one run.
    std::unordered_map<ProcKey, size_t, ProcKeyHash> looked;
    for (size_t i = 0; i < lookups.size(); ++i)
      looked.try_emplace(ProcKey{lookups[i].ref.pid, lookups[i].ref.start_ticks}, i);
    for (const ConnKey& lk : listened) {
      auto l = listeners_.find(lk);
      if (l == listeners_.end()) continue;  // it stopped listening since
      auto i = looked.find(ProcKey{l->second.proc.pid, l->second.proc.start_ticks});
      if (i != looked.end()) SetListenerWorkload(l->second, details[i->second].workload);
    }
  }
  for (size_t i : renamed)
    for (auto& [lk, l] : listeners_)
      if (Owns(l, lookups[i].ref)) SetListenerWorkload(l, details[i].workload);
}

Workload Aggregator::OwnerWorkload(const ProcessRef& owner) const {
  if (cache_ == nullptr || !owner.known()) return {};
  std::optional<ProcessDetails> d = cache_->Peek(owner);
  return d ? d->workload : Workload{};
}

void Aggregator::SetListenerWorkload(EndpointRecord& l, const Workload& workload) {
  if (l.workload == workload) return;
  l.workload = workload;
  Work w;
  w.added.push_back(l);
  MergeLocked(w);
}

}  // namespace flowmesh
