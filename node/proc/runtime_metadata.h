// The human names of containers and pods, from the files container runtimes
// and the kubelet keep on the host: docker's config.v2.json, the OCI spec
// containerd and cri-o write per task, podman's containers.json, the
// kubelet's pod directory (etc-hosts for the name, the service account
// volume's namespace file for the namespace). Files only: never a runtime's socket, never the
// API server, so naming a container costs a few bounded reads.
#pragma once

#include <cstddef>
#include <string>

#include "node/proc/workload.h"

namespace flowmesh {

struct RuntimeRoots {
  // The host's root directory: "/" on a host, a lab host's own tree in the
  // lab, a fixture in tests. Every path below is read under it.
  std::string root = "/";
  std::string docker_data = "/var/lib/docker";  // dockerd --data-root
  size_t max_file_bytes = 1 << 20;              // one container's config
  size_t max_index_bytes = 8 << 20;             // podman's list of every container
};

struct MetadataOutcome {
  bool found = false;  // a runtime's file for this container was read and understood
  int malformed = 0;   // files there but not understood: too big, not JSON, wrong shape
  std::string error;   // the last of those, naming the file
};

// Adds what the runtime's files say to a container workload: its name (in
// a pod, the container's name in the pod spec), the pod's name and
// namespace, and the runtime when the cgroup path did not say (a kubepods
// cgroupfs path). Never fails: a malformed file is counted in the outcome
// and the workload keeps its id. Units and workloads with no id are left
// alone, except that a pod's name is looked up by its uid; so are
// containers below a user's manager (user_unit), which no system file names.
MetadataOutcome AddRuntimeMetadata(const RuntimeRoots& roots, Workload* w);

}  // namespace flowmesh
