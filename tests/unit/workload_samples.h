// Workloads the unit tests of every output share: a systemd unit, a docker
// container and a pod's container, as the process cache would fill them.
#pragma once

#include <string>

#include "node/proc/workload.h"

namespace flowmesh::testing {

inline Workload SampleUnit() {
  Workload w;
  w.kind = WorkloadKind::kUnit;
  w.id = w.unit = "nginx.service";
  w.cgroup = "/system.slice/nginx.service";
  return w;
}

inline Workload SampleContainer() {
  Workload w;
  w.kind = WorkloadKind::kContainer;
  w.runtime = "docker";
  w.id = "3f2a1c4d5e6f77889900aabbccddeeff00112233445566778899aabbccddeeff";
  w.name = "web";
  w.unit = "docker-" + w.id + ".scope";
  w.cgroup = "/system.slice/" + w.unit;
  return w;
}

inline Workload SamplePodContainer() {
  Workload w;
  w.kind = WorkloadKind::kContainer;
  w.runtime = "containerd";
  w.id = std::string(64, 'a');
  w.name = "api";
  w.unit = "cri-containerd-" + w.id + ".scope";
  w.pod = Pod{"5c6f3e8a-1b2c-4d5e-8f90-0123456789ab", "pay-7d9c", "shop", "burstable"};
  w.cgroup =
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5c6f3e8a_1b2c_4d5e_"
      "8f90_0123456789ab.slice/" +
      w.unit;
  return w;
}

}  // namespace flowmesh::testing
