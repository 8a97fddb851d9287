# The lab's workloads (issue 15), sourced by topology.sh: each server runs the
# way a runtime runs it, in a cgroup named as that runtime names it, with the
# runtime's own files where meshd reads names from. systemd is not PID 1 on
# the lab machine and there is no Docker engine or kubelet, so the lab makes
# the cgroups itself (cgroup v2; on a hybrid host at /sys/fs/cgroup/unified)
# and writes the files as the runtimes do. Every host's cgroups sit under its
# own directory, so the layout below it is what that host would have:
#
#   <v2>/flowmesh-lab-<prefix>/<host>/
#     web-1    system.slice/nginx.service                      (systemd unit)
#     app-1    system.slice/flowmesh-lab-app.service           (systemd unit)
#     app-2    kubepods.slice/kubepods-burstable.slice/
#                kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
#                                                              (a pod's container, containerd)
#     cache-1  system.slice/redis-server.service
#     kv-1     system.slice/memcached.service
#     docker-1 system.slice/docker-<id>.scope                  (docker, its container fmt-8c)
#     client-1, client-2: user.slice/user-0.slice/session-1.scope (curl, redis-cli)
#
# and each host's runtime root, given to its meshd as --runtime-root, holds
# what the runtime keeps on a real host:
#   docker-1  WORKDIR/docker-1/root/var/lib/docker/containers/<id>/config.v2.json (name "web")
#   app-2     WORKDIR/app-2/root/run/containerd/io.containerd.runtime.v2.task/k8s.io/<id>/config.json
#             (pod shop/api-7d9c5b-x2k4q, container "api") and
#             WORKDIR/app-2/root/var/lib/kubelet/pods/<uid>/etc-hosts
# shellcheck shell=bash

# A container id as runtimes make them (64 hex), fixed per lab so the names
# in trees are the same from run to run.
lab_container_id() { printf 'flowmesh-lab %s' "$1" | sha256sum | cut -c1-64; }
docker_id() { lab_container_id docker-web; }
pod_container_id() { lab_container_id pod-api; }
pod_sandbox_id() { lab_container_id pod-sandbox; }
pod_uid() { echo 5f1c6e2a-8b3d-4c7e-9a10-2b4c6d8e0f13; }
pod_name() { echo api-7d9c5b-x2k4q; }

cgroup_v2_root() {
  local r
  for r in /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [ "$(stat -f -c %T "$r" 2>/dev/null)" = cgroup2fs ] && { echo "$r"; return 0; }
  done
  die "no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup: the lab's workloads need one"
}

# Where host I's cgroups live (its "root cgroup").
lab_cgroup_base() { echo "$(cgroup_v2_root)/flowmesh-lab-$prefix"; }
host_cgroup_root() { echo "$(lab_cgroup_base)/$(name_of "$1")"; }

# The cgroup host I's server runs in, below its root; "" = none (lb-1).
server_cgroup_of() {
  case "$1" in
    1|7) echo user.slice/user-0.slice/session-1.scope ;;
    2) echo system.slice/nginx.service ;;
    3) echo system.slice/flowmesh-lab-app.service ;;
    4) local uid; uid=$(pod_uid)
       echo "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice/cri-containerd-$(pod_container_id).scope" ;;
    5) echo system.slice/redis-server.service ;;
    6) echo system.slice/memcached.service ;;
    8) echo "system.slice/docker-$(docker_id).scope" ;;
    *) echo "" ;;
  esac
}

runtime_root_of() { echo "$work/$(name_of "$1")/root"; }


# Runs CMD... in namespace NS inside cgroup CG (a directory under the v2
# root) from its first instruction: a shell joins the cgroup, then execs into
# the namespace and CMD, so the server's listen() and connect() already
# happen in it. (Joined before `ip netns exec`: that remounts /sys, where
# the cgroup files are not.) Output to LOG; prints the pid.
spawn_in_cgroup() {
  local ns=$1 cg=$2 log=$3; shift 3
  mkdir -p "$cg"
  sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' "$cg" "$ns" setsid "$@" \
    </dev/null >"$log" 2>&1 &
  echo $!
}

# Host I's server CMD..., in its workload's cgroup.
spawn_server() {
  local i=$1 log=$2; shift 2
  spawn_in_cgroup "$(ns_of "$i")" "$(host_cgroup_root "$i")/$(server_cgroup_of "$i")" "$log" "$@"
}

# CMD... as a client on host I (its login session's cgroup), in the foreground.
client_in_session() {
  local i=$1; shift
  local cg; cg="$(host_cgroup_root "$i")/$(server_cgroup_of "$i")"
  mkdir -p "$cg"
  sh -c 'echo $$ >"$0/cgroup.procs" && exec ip netns exec "$@"' "$cg" "$(ns_of "$i")" "$@"
}

# The runtimes' files, written before the servers start.
workloads_up() {
  local d id uid created
  created=$(date -u +%Y-%m-%dT%H:%M:%S.000000000Z)
  # docker-1: /var/lib/docker/containers/<id>/config.v2.json, as dockerd
  # writes it (only the fields a reader of it needs, and a few around them).
  id=$(docker_id)
  d=$(runtime_root_of 8)/var/lib/docker/containers/$id; mkdir -p "$d"
  cat >"$d/config.v2.json" <<JSON
{"StreamConfig":{},"State":{"Running":true,"Paused":false,"Restarting":false,"OOMKilled":false,"Dead":false,"Pid":0,"ExitCode":0,"Error":"","StartedAt":"$created","FinishedAt":"0001-01-01T00:00:00Z","Health":null},"ID":"$id","Created":"$created","Managed":false,"Path":"/docker-entrypoint.sh","Args":["nginx","-g","daemon off;"],"Config":{"Hostname":"${id:0:12}","Domainname":"","User":"","ExposedPorts":{"80/tcp":{}},"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["nginx","-g","daemon off;"],"Image":"nginx:1.25","Labels":{"maintainer":"NGINX Docker Maintainers"}},"Image":"sha256:$(lab_container_id image)","Name":"/web","RestartCount":0,"Driver":"overlay2","Platform":"linux","HostnamePath":"/var/lib/docker/containers/$id/hostname","LogPath":"/var/lib/docker/containers/$id/$id-json.log"}
JSON
  # app-2: a pod's container under containerd's CRI plugin: the OCI bundle's
  # config.json in the shim's task directory, with the CRI annotations.
  id=$(pod_container_id); uid=$(pod_uid)
  d=$(runtime_root_of 4)/run/containerd/io.containerd.runtime.v2.task/k8s.io/$id; mkdir -p "$d"
  cat >"$d/config.json" <<JSON
{"ociVersion":"1.1.0","process":{"user":{"uid":0,"gid":0},"args":["python3","lab_app.py"],"cwd":"/"},"root":{"path":"rootfs"},"hostname":"$(pod_name)","annotations":{"io.kubernetes.cri.container-name":"api","io.kubernetes.cri.container-type":"container","io.kubernetes.cri.image-name":"registry.example/shop/api:2.4.1","io.kubernetes.cri.sandbox-id":"$(pod_sandbox_id)","io.kubernetes.cri.sandbox-name":"$(pod_name)","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"$uid"},"linux":{"cgroupsPath":"kubepods-burstable-pod${uid//-/_}.slice:cri-containerd:$id","namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"uts"},{"type":"mount"},{"type":"network","path":"/proc/1/ns/net"}]}}
JSON
  # The kubelet's pod directory: etc-hosts names the pod (its hostname).
  d=$(runtime_root_of 4)/var/lib/kubelet/pods/$uid; mkdir -p "$d/containers/api" "$d/volumes"
  printf '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n10.213.0.4\t%s\n' "$(pod_name)" \
    >"$d/etc-hosts"
}

# Removes the lab's cgroups, deepest first, once their processes are gone
# (a cgroup with a dying process refuses rmdir for a moment: retried).
workloads_down() {
  local base n left
  base=$(lab_cgroup_base 2>/dev/null) || return 0
  [ -d "$base" ] || return 0
  for n in $(seq 50); do
    find "$base" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$base" ] || return 0
    sleep 0.1
  done
  left=$(find "$base" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')
  echo "topology: cannot remove the lab's cgroups under $base (processes still in them: ${left:-none})" >&2
}
