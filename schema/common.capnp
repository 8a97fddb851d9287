# What the control socket (control.capnp) and queries between nodes
# (query.capnp) both carry: addresses, endpoints, flow stats and process
# details. node/wire/ converts them to and from meshd's structs. Moved here
# from those two files with their field numbers, so the wire bytes are the
# same as before.
@0xb46bc1cdc35df0b9;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flowmesh::schema");

struct Addr {
  bytes @0 :Data;          # 4 or 16 bytes, network order; empty = unspecified
}

struct Endpoint {
  addr @0 :Addr;
  port @1 :UInt16;
}

struct ProcessDetails {
  pid @0 :UInt32;
  startTicks @1 :UInt64;
  pgid @2 :UInt32;
  ppid @3 :UInt32;
  comm @4 :Text;
  exe @5 :Text;
  # Issue 15: the process's cgroup v2 id and the workload it names; a node
  # of before leaves them unset (no workload).
  cgroupId @6 :UInt64;
  workload @7 :Workload;
}

# A systemd unit or a container (node/proc/workload.h). kind "" or "none":
# no workload known.
struct Workload {
  kind @0 :Text;           # "unit", "container"
  runtime @1 :Text;        # docker, containerd, cri-o, podman
  id @2 :Text;             # container id; a unit's name
  name @3 :Text;           # container name
  unit @4 :Text;           # the systemd unit holding the cgroup
  userUnit @5 :Bool;
  hasPod @6 :Bool;
  podUid @7 :Text;
  podName @8 :Text;
  podNamespace @9 :Text;
  podQos @10 :Text;
  cgroup @11 :Text;        # the cgroup v2 path
}

struct FlowStats {
  connections @0 :UInt64;
  bytesTx @1 :UInt64;
  bytesRx @2 :UInt64;
  segsOut @3 :UInt64;
  segsIn @4 :UInt64;
  retrans @5 :UInt64;
  rttSumUs @6 :UInt64;
  rttSamples @7 :UInt64;
  rttMaxUs @8 :UInt32;
  firstSeenNs @9 :Int64;
  lastSeenNs @10 :Int64;
  # Connections already open when the window (or bucket) began; 0 from a
  # node of before windows counted open connections. See FlowStats in
  # node/flow/flow.h for how they sum.
  carried @11 :UInt64;
  carriedFromNs @12 :Int64;
}
