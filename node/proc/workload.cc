// Workload kind names, group keys and labels.
#include "node/proc/workload.h"

namespace flowmesh {

std::string_view WorkloadKindName(WorkloadKind k) {
  switch (k) {
    case WorkloadKind::kNone:
      return "none";
    case WorkloadKind::kUnit:
      return "unit";
    case WorkloadKind::kContainer:
      return "container";
  }
  return "none";
}

std::optional<WorkloadKind> ParseWorkloadKind(std::string_view text) {
  for (WorkloadKind k : {WorkloadKind::kNone, WorkloadKind::kUnit, WorkloadKind::kContainer})
    if (text == WorkloadKindName(k)) return k;
  return std::nullopt;
}

std::string_view ShortContainerId(std::string_view id) { return id.substr(0, 12); }

bool IsSessionScope(std::string_view unit) {
  return unit.starts_with("session-") && unit.ends_with(".scope");
}

std::string WorkloadGroupKey(const Workload& w) {
  switch (w.kind) {
    case WorkloadKind::kNone:
      return "";
    case WorkloadKind::kUnit:
      // A login session is not a service: what a person runs in it (a curl,
      // then a redis-cli) stays apart, grouped by process group as before.
      if (IsSessionScope(w.id)) return "";
      // A manager (PID 1, or a user's systemd) holds the sockets of the
      // services it socket-activates, and runs nothing else there that is
      // one service: its init.scope groups by process group.
      if (w.id == "init.scope") return "";
      return (w.user_unit ? "uu:" : "u:") + w.id;
    case WorkloadKind::kContainer: {
      // A user's container (below user@<uid>.service) never groups with
      // the system's container whose id it copied.
      std::string user = w.user_unit ? "uc:" : "";
      if (w.pod) {
        const Pod& p = *w.pod;
        std::string pod = p.name.empty() ? "uid:" + p.uid : p.ns + "/" + p.name;
        return user + "k:" + pod + "/" + (w.name.empty() ? "id:" + w.id : w.name);
      }
      return user + "c:" + w.runtime + ":" + (w.name.empty() ? "id:" + w.id : w.name);
    }
  }
  return "";
}

std::string WorkloadLabel(const Workload& w) {
  switch (w.kind) {
    case WorkloadKind::kNone:
      return "";
    case WorkloadKind::kUnit:
      return (w.user_unit ? "user unit " : "") + w.id;
    case WorkloadKind::kContainer: {
      std::string id(ShortContainerId(w.id));
      std::string how = w.runtime.empty() ? id : w.runtime + (id.empty() ? "" : " " + id);
      if (w.pod) {
        const Pod& p = *w.pod;
        std::string pod = p.name.empty() ? p.uid : (p.ns.empty() ? "" : p.ns + "/") + p.name;
        std::string s = "pod " + pod;
        if (!w.name.empty()) s += "/" + w.name;
        return how.empty() ? s : s + " (" + how + ")";
      }
      std::string s = "container " + (w.name.empty() ? id : w.name);
      if (!w.name.empty() && !how.empty()) s += " (" + how + ")";
      else if (w.name.empty() && !w.runtime.empty()) s += " (" + w.runtime + ")";
      return s;
    }
  }
  return "";
}

}  // namespace flowmesh
