# The control socket between meshctl and its local meshd (a Unix stream
# socket, mode 0600). Each frame is a 4-byte little-endian length followed by
# one Cap'n Proto message (flat array, unpacked); the length is checked
# against a cap before anything is allocated.
@0xed762d1c66d26a35;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flowmesh::schema");

using import "common.capnp".ProcessDetails;
using import "common.capnp".Workload;
using import "common.capnp".FlowStats;
using import "common.capnp".Endpoint;

struct Process {
  pid @0 :UInt32;          # 0 = unknown
  startTicks @1 :UInt64;   # /proc/<pid>/stat starttime; (pid, startTicks) is the identity
  comm @2 :Text;
  pgid @3 :UInt32;         # 0 = unknown
  # Its unit or container as meshd resolved it (issue 15): 1 + its index in
  # Response.workloads, which holds each once; 0 = none known (or a meshd of
  # before).
  workload @4 :UInt32;
}

struct Counters {
  bytesTx @0 :UInt64;
  bytesRx @1 :UInt64;
  segsOut @2 :UInt32;
  segsIn @3 :UInt32;
  retrans @4 :UInt32;
  rttUs @5 :UInt32;
  rttvarUs @6 :UInt32;
}

enum EventKind { open @0; close @1; listen @2; unlisten @3; update @4; }
enum Direction { unknown @0; active @1; passive @2; }
enum Source { kernel @0; poll @1; seed @2; }

# One TCP socket: family is 2 (AF_INET) or 10 (AF_INET6); addresses are 4 or
# 16 bytes in network order; ports in host order.
struct SocketKey {
  netns @0 :UInt32;
  family @1 :UInt16;
  laddr @2 :Data;
  lport @3 :UInt16;
  raddr @4 :Data;
  rport @5 :UInt16;
}

struct Event {
  kind @0 :EventKind;
  direction @1 :Direction;
  source @2 :Source;
  tsNs @3 :Int64;          # Unix epoch ns
  key @4 :SocketKey;
  process @5 :Process;
  counters @6 :Counters;
  durationNs @7 :UInt64;
}

struct Connection {
  key @0 :SocketKey;
  direction @1 :Direction;
  source @2 :Source;
  process @3 :Process;
  counters @4 :Counters;
  openedNs @5 :Int64;
  updatedNs @6 :Int64;
}

# Empty lists and zeros select everything.
struct Filter {
  pid @0 :UInt32;
  family @1 :UInt16;
  lports @2 :List(UInt16);
  rports @3 :List(UInt16);
  # The process's workload (issue 15); "" = any. A meshd of before ignores
  # them, so meshctl checks what comes back too.
  unit @4 :Text;           # the systemd unit: "nginx.service"
  container @5 :Text;      # a container's name (a pod's container by its name) or id prefix
}

struct NamedCount {
  name @0 :Text;
  value @1 :UInt64;
}

struct StatusInfo {
  nodeName @0 :Text;
  version @1 :Text;
  pid @2 :UInt32;
  startedNs @3 :Int64;
  probeMode @4 :Text;      # "streaming" or "polling"
  probeReason @5 :Text;    # why this mode (e.g. the fallback's cause)
  events @6 :UInt64;       # delivered by the probe
  lost @7 :UInt64;         # known missed
  malformed @8 :UInt64;    # records dropped as undecodable
  detail @9 :List(NamedCount);
  openConnections @10 :UInt64;
  listeners @11 :UInt64;
  opens @12 :UInt64;
  closes @13 :UInt64;
  watchers @14 :UInt32;
  netns @15 :Text;         # "all", "self (4026531840)", ...
  firstEventNs @16 :Int64; # when the first event arrived; 0 = none yet
  polls @17 :UInt64;       # sock_diag dumps (polling mode and refreshes)
  closeWithoutOpen @18 :UInt64;   # closes of connections never seen open
  closeUnattributed @19 :UInt64;  # ... whose process stayed unknown
  store @20 :StoreInfo;
  mesh @21 :MeshInfo;
  reconstructedCloses @22 :UInt64;    # closes the probe missed, made up from sock_diag
  reconstructedUnlistens @23 :UInt64;
  lateClosesDropped @24 :UInt64;      # real closes after a reconstructed one: dropped
  conntrack @25 :Text;     # NAT translations: "on: ..." or "off: why"
  workloads @26 :Text;     # naming units and containers from cgroups: "on: ..." or "off: why"
  ui @27 :Text;            # the web page: "on: http://IP:PORT/ (token required)" or "off"
  bpfMaps @28 :List(BpfMapInfo);  # the streaming probe's maps; empty when polling
}

struct BpfMapInfo {
  name @0 :Text;           # events, socks, listeners, bss, rodata
  memlockBytes @1 :UInt64; # kernel memory, as /proc/PID/fdinfo's memlock: says
  maxEntries @2 :UInt64;   # capacity (the ring buffer's: bytes)
}

struct MeshInfo {
  enabled @0 :Bool;
  address @1 :Text;
  sealed @2 :Bool;
  keys @3 :UInt32;
  alive @4 :UInt64;
  suspect @5 :UInt64;
  dead @6 :UInt64;
  left @7 :UInt64;
  bytesIn @8 :UInt64;
  bytesOut @9 :UInt64;
  malformed @10 :UInt64;
  queriesIn @11 :UInt64;
  looks @12 :UInt64;
  lookRoundTrips @13 :UInt64;
  refusals @14 :List(Refusal);   # every drop and refusal by reason, zeros included
  suspicionsRaised @15 :UInt64;
  suspicionsReceived @16 :UInt64;
  refutations @17 :UInt64;
  incarnationBumps @18 :UInt64;
  falseDeaths @19 :UInt64;
  flaps @20 :UInt64;
  flapping @21 :List(MemberFlapping);
  lookUnanswered @22 :List(Refusal);  # look queries sent from here without answers, by reason
  maps @23 :UInt64;                   # maps run from here (issue 16)
  mapUnanswered @24 :List(Refusal);   # their member queries without a map, by reason
}

struct Refusal {
  reason @0 :Text;
  count @1 :UInt64;
  help @2 :Text;
}

struct MemberFlapping {
  name @0 :Text;
  flaps @1 :UInt64;
  falseDeaths @2 :UInt64;
}

struct StoreInfo {
  dir @0 :Text;
  diskBytes @1 :UInt64;
  records @2 :UInt64;      # connection records held
  oldestNs @3 :Int64;      # close time of the oldest record; 0 = none
  flushes @4 :UInt64;
  pendingRecords @5 :UInt64;   # aggregated, not yet written
  droppedRecords @6 :UInt64;   # given up after write errors (disk full, read-only)
  writeErrors @7 :UInt64;
  lastError @8 :Text;      # "" when the last write succeeded
  expiredRecords @9 :UInt64;   # removed by retention
  flows @10 :UInt64;       # flow deltas written
  duplicates @11 :UInt64;  # opens/closes reported twice (both probes) and ignored
  recordsOff @12 :Bool;    # meshd --records off: flows only, no per-connection records
}

# ---- History: meshctl flows, endpoints, look ----

# One closed connection.
struct Record {
  tsNs @0 :Int64;          # close time, Unix epoch ns
  key @1 :SocketKey;
  direction @2 :Direction;
  process @3 :Process;
  counters @4 :Counters;   # payload bytes
  durationNs @5 :UInt64;
  reconstructed @6 :Bool;  # a close the probe missed, made up from sock_diag
}

struct FlowsQuery {
  filter @0 :Filter;
  sinceNs @1 :Int64;
  untilNs @2 :Int64;       # 0 = now
  limit @3 :UInt64;        # 0 = no limit
}

# Records stream as several of these; the last one has done = true.
struct RecordBatch {
  records @0 :List(Record);
  done @1 :Bool;
  truncated @2 :Bool;      # the limit stopped the scan
}

struct EndpointInfo {
  netns @0 :UInt32;
  family @1 :UInt16;
  addr @2 :Data;
  port @3 :UInt16;
  process @4 :ProcessDetails;
  sinceNs @5 :Int64;
  node @6 :Text;           # owner in the mesh; "" = the node that answered
  # Not empty: addr:port is a front the node's NAT translates (an alias),
  # not a listener. A published port has one target, the listener it
  # reaches (process: its owner); a balancer's front the backends it
  # forwarded to (no process). A meshctl of before shows it as an endpoint.
  targets @7 :List(Endpoint);
  balancer @8 :Bool;
}

struct PeerInfo {
  name @0 :Text;
  addr @1 :Text;
  state @2 :Text;          # alive, suspect, dead, left
  incarnation @3 :UInt32;
  endpoints @4 :UInt64;
  stateChangeNs @5 :Int64;
  generation @6 :UInt64;
  nodeId @7 :Text;
}

enum LookDirection { both @0; in @1; out @2; }
enum LookStatus {
  ok @0; noAgent @1; unreachable @2; cycle @3; depthLimit @4;
  unconfirmed @5;  # a client host with meshd that has no matching process
  unsynced @6;     # no table claims the address; a live member's table is not in yet
}

struct LookQuery {
  family @0 :UInt16;
  addr @1 :Data;
  port @2 :UInt16;         # 0 = the host's processes
  direction @3 :LookDirection;
  depth @4 :UInt32;
  sinceNs @5 :Int64;
  untilNs @6 :Int64;
  hopTimeoutNs @7 :Int64;  # 0 = meshd's default (2 s)
  timeoutNs @8 :Int64;     # the whole walk; 0 = meshd's default (10 s)
  # "workload", "pgid" or "pid" (look_types.h GroupByName); "" (a meshctl
  # of before issue 15) = pgid, as it was.
  groupBy @9 :Text;
}

struct LookNode {
  host @0 :Text;
  family @1 :UInt16;
  addr @2 :Data;
  port @3 :UInt16;
  hasProcess @4 :Bool;
  process @5 :ProcessDetails;
  status @6 :LookStatus;
  hasStats @7 :Bool;
  stats @8 :FlowStats;
  clients @9 :List(LookNode);
  dependencies @10 :List(LookNode);
  statusDetail @11 :Text;  # why the status: the failure of an unreachable node, ...
  balancer @12 :Bool;      # a balancer's front, not a process
  via @13 :Endpoint;       # the edge to the parent was dialled as this (port 0 = none)
  aliases @14 :List(Endpoint);  # other fronts that reach this endpoint
}

# meshctl keys: rotation of the cluster key across the running mesh.
enum KeyOp { list @0; install @1; use @2; remove @3; }

struct KeysRequest {
  op @0 :KeyOp;
  key @1 :Text;            # install: base64; use, remove: base64 or a fingerprint prefix
}

struct KeyState {
  fingerprint @0 :Text;
  primary @1 :Bool;
}

# One member's answer: its keyring after the operation, or why it failed.
struct NodeKeys {
  node @0 :Text;
  error @1 :Text;
  keys @2 :List(KeyState);
}

# ---- The map: meshctl map (node/look/map_types.h) ----

# A map query as ParseMapQueryText made it; meshd checks every field again.
struct MapQuery {
  sinceNs @0 :Int64;
  untilNs @1 :Int64;
  groupBy @2 :Text;        # "workload", "pgid" or "pid"
  host @3 :Text;           # cut around this host's nodes; "" = none
  workload @4 :Text;       # ... and around nodes whose names contain this
  depth @5 :UInt32;        # edges away from them (0 = only them)
  concurrency @6 :UInt32;  # members asked at once; 0 = meshd's default
  hopTimeoutNs @7 :Int64;  # one member's answer; 0 = meshd's default
  timeoutNs @8 :Int64;     # the whole map; 0 = meshd's default
  hasBaseline @9 :Bool;    # also compare with baselineSinceNs..baselineUntilNs
  baselineSinceNs @10 :Int64;
  baselineUntilNs @11 :Int64;
  changeFactor @12 :Float64;  # changed: more than this either way; 0 = the default (2)
}

enum MapNodeKind { workload @0; balancer @1; external @2; }
enum MapChangeKind { appeared @0; disappeared @1; changed @2; }

struct MapNode {
  id @0 :Text;
  kind @1 :MapNodeKind;
  host @2 :Text;
  hasProcess @3 :Bool;
  process @4 :ProcessDetails;
  endpoints @5 :List(Endpoint);
  status @6 :LookStatus;
  statusDetail @7 :Text;
  label @8 :Text;
}

struct MapEdge {
  from @0 :Text;
  to @1 :Text;
  endpoint @2 :Endpoint;
  via @3 :Endpoint;        # port 0 = not translated
  stats @4 :FlowStats;
  clientSeen @5 :Bool;
  serverSeen @6 :Bool;
}

struct MapMember {
  name @0 :Text;
  address @1 :Text;
  state @2 :Text;
  answered @3 :Bool;
  error @4 :Text;
  answerBytes @5 :UInt64;
  latencyNs @6 :Int64;
  truncated @7 :Bool;
}

struct MapGraph {
  sinceNs @0 :Int64;
  untilNs @1 :Int64;
  nodes @2 :List(MapNode);
  edges @3 :List(MapEdge);
  members @4 :List(MapMember);
}

struct MapEdgeChange {
  kind @0 :MapChangeKind;
  edge @1 :MapEdge;
  hasBefore @2 :Bool;
  before @3 :FlowStats;
  factor @4 :Float64;
}

struct MapResult {
  query @0 :MapQuery;
  graph @1 :MapGraph;
  hasBaseline @2 :Bool;
  baseline @3 :MapGraph;
  changes @4 :List(MapEdgeChange);
}

struct Request {
  union {
    status @0 :Void;
    connections @1 :Filter;  # one Response.connections
    watch @2 :Filter;        # a stream of Response.event until the client goes
    flows @3 :FlowsQuery;    # a stream of Response.records
    endpoints @4 :Void;      # one Response.endpoints
    look @5 :LookQuery;      # one Response.look
    peers @6 :Void;          # one Response.peers
    meshEndpoints @7 :Void;  # one Response.endpoints: every node's
    keys @8 :KeysRequest;    # one Response.keys: every live member's answer
    # One Response.map. A meshd of before answers "unknown request 9".
    map @9 :MapQuery;
  }
}

struct Response {
  union {
    error @0 :Text;
    status @1 :StatusInfo;
    connections @2 :List(Connection);
    event @3 :Event;
    # Sent on a watch stream when this watcher fell behind and meshd dropped
    # events for it (the probe never waits for a watcher): total so far.
    watchDropped @4 :UInt64;
    records @5 :RecordBatch;
    endpoints @6 :List(EndpointInfo);
    look @7 :LookNode;       # the root of the tree
    peers @8 :List(PeerInfo);
    keys @9 :List(NodeKeys);
    map @11 :MapResult;      # after workloads @10, which is outside the union
  }
  # The workloads Process.workload points into (connections, records, an
  # event).
  workloads @10 :List(Workload);
}
