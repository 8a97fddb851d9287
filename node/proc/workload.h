// Workload: what a process runs as, by its cgroup: a systemd unit, a
// container of a runtime (docker, containerd, cri-o, podman) or a Kubernetes
// pod's container. The name operators know a service by, and the key `look`
// groups processes under across restarts (a new process of nginx.service
// gets a new pid and pgid, never a new unit).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flowmesh {

enum class WorkloadKind : uint8_t {
  kNone = 0,       // no unit or container recognised (the root cgroup, an unknown layout)
  kUnit = 1,       // a systemd unit: a service or a scope, system or user
  kContainer = 2,  // a container, with or without a pod
};

// A Kubernetes pod, from the kubepods cgroup layout (uid, qos) and, where the
// kubelet's or the runtime's files say, its name and namespace.
struct Pod {
  std::string uid;  // "5c6f3e8a-1b2c-4d5e-8f90-0123456789ab" (dashes, as the API shows it)
  std::string name;
  std::string ns;   // namespace
  std::string qos;  // "guaranteed", "burstable" or "besteffort"
  bool operator==(const Pod&) const = default;
};

struct Workload {
  WorkloadKind kind = WorkloadKind::kNone;
  // Container: "docker", "containerd", "cri-o" or "podman"; "" when the
  // layout does not say (a kubepods cgroupfs path with a bare id).
  std::string runtime;
  // Container: its id (hex, as the runtime prints it in full). Unit: the
  // unit's name ("nginx.service").
  std::string id;
  // The human name: a container's name from the runtime's files ("web"; in
  // a pod, the container's name in the pod spec); "" when not known. A
  // unit's name is its id.
  std::string name;
  // The systemd unit the cgroup sits in: "nginx.service",
  // "docker-<id>.scope", "session-2.scope"; "" under the cgroupfs driver.
  std::string unit;
  bool user_unit = false;  // a unit of a user's manager (user@1000.service/...)
  std::optional<Pod> pod;
  // The cgroup v2 path it was parsed from ("/system.slice/nginx.service").
  std::string cgroup;

  bool empty() const { return kind == WorkloadKind::kNone; }
  bool operator==(const Workload&) const = default;
};

std::string_view WorkloadKindName(WorkloadKind k);  // "none", "unit", "container"
std::optional<WorkloadKind> ParseWorkloadKind(std::string_view text);

// The key processes of one workload share on one host, stable across
// restarts of its processes: the unit; a container by its name when known
// (a re-created container keeps it), else its id; a pod's container by pod
// (name, else uid) and container. "" for none, and for a login session's
// scope (session-2.scope): its processes are whatever a person ran, not one
// service, so they group by process group.
std::string WorkloadGroupKey(const Workload& w);

// How a tree shows it, before the process: "nginx.service",
// "container web (docker 3f2a1c4d5e6f)", "pod shop/payments-7d9c/api
// (containerd 3f2a1c4d5e6f)", "user unit app.service". "" for none.
std::string WorkloadLabel(const Workload& w);

// logind's scope of a login session: "session-<id>.scope".
bool IsSessionScope(std::string_view unit);

// The first 12 hex digits, as `docker ps` shows an id.
std::string_view ShortContainerId(std::string_view id);

}  // namespace flowmesh
