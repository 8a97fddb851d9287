# The control socket between meshctl and its local meshd (a Unix stream
# socket, mode 0600). Each frame is a 4-byte little-endian length followed by
# one Cap'n Proto message (flat array, unpacked); the length is checked
# against a cap before anything is allocated.
@0xed762d1c66d26a35;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flowmesh::schema");

struct Process {
  pid @0 :UInt32;          # 0 = unknown
  startTicks @1 :UInt64;   # /proc/<pid>/stat starttime; (pid, startTicks) is the identity
  comm @2 :Text;
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
}

struct Request {
  union {
    status @0 :Void;
    connections @1 :Filter;  # one Response.connections
    watch @2 :Filter;        # a stream of Response.event until the client goes
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
  }
}
