# The mesh wire format: SWIM/Lifeguard membership and Scuttlebutt endpoint
# tables. A UDP packet is one packed Packet (a primary message plus piggybacked
# gossip, at most the packet budget); a reliable exchange (TCP) carries one
# packed ExchangeRequest and gets one packed ExchangeResponse back. Sealing
# (AES-GCM) wraps these bytes; node/mesh/wire.cc decodes them with tight
# ReaderOptions after checking the size against a cap.
@0x83c0815082e2a3ea;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("flowmesh::schema::mesh");

using Common = import "common.capnp";

# ---- Membership ----

enum MemberStatus { alive @0; suspect @1; dead @2; left @3; }

# Direct probe. `target` is the name the prober expects: a node answering on
# a reused address under another name must not ack for it.
struct Ping {
  seq @0 :UInt32;
  target @1 :Text;
}

struct Ack {
  seq @0 :UInt32;
}

# Sent by an indirect prober that got no ack from the target in time: tells the
# asker that the helper itself is fine, so a missing ack is about the target
# (or about the asker's own health, Lifeguard's local health signal).
struct Nack {
  seq @0 :UInt32;
}

# Indirect probe: "ping `target` at `targetAddr` for me and relay the ack".
struct PingReq {
  seq @0 :UInt32;
  target @1 :Text;
  targetAddr @2 :Text;
  wantNack @3 :Bool;
}

# A member's identity and liveness claim. Order is (generation, incarnation):
# a restarted node (higher generation) wins over any incarnation of its past.
struct Alive {
  name @0 :Text;
  addr @1 :Text;
  nodeId @2 :Text;
  generation @3 :UInt64;
  incarnation @4 :UInt32;
}

struct Suspect {
  name @0 :Text;
  generation @1 :UInt64;
  incarnation @2 :UInt32;
  from @3 :Text;
}

# from == name means the member left gracefully.
struct Dead {
  name @0 :Text;
  generation @1 :UInt64;
  incarnation @2 :UInt32;
  from @3 :Text;
}

# ---- Endpoint tables (Scuttlebutt) ----

# One versioned entry of an owner's table: an address of the owner (isAddress),
# a listening endpoint with its process, or a NAT alias (alias). A deleted
# entry is a tombstone.
struct TableEntry {
  version @0 :UInt64;
  deleted @1 :Bool;
  isAddress @2 :Bool;
  addr @3 :Data;           # 4 or 16 bytes, network order
  port @4 :UInt16;
  pid @5 :UInt32;
  pgid @6 :UInt32;
  comm @7 :Text;
  exe @8 :Text;
  # An alias: addr:port is a front this owner's NAT translates to target
  # (a published port: pid..exe own the listener it reaches; a balancer's
  # front: one entry per backend). A peer that predates aliases reads only
  # the fields above, so an alias also sets deleted and isAddress: to it,
  # the tombstone of an address row with a port, a key no row of its own
  # has (addresses carry port 0). It shows nothing of it and collects it
  # with its tombstones. Whether the alias is deleted is aliasDeleted.
  alias @9 :Bool;
  aliasDeleted @10 :Bool;
  target @11 :Data;        # 4 or 16 bytes, network order
  targetPort @12 :UInt16;
  balancer @13 :Bool;
  # The owner's workload (issue 15): a listener's systemd unit or container,
  # so `endpoints --all` names it; its cgroup path stays home (long, and only
  # the owner's look needs it). A peer of before leaves it unset (none) and
  # ignores it; texts are bounded on receive (wire.h kMaxWorkloadBytes) and
  # a kind this node does not know (a newer peer's) reads as none.
  workload @14 :Common.Workload;
}

# What a node holds of one owner's table.
struct TableDigest {
  owner @0 :Text;
  generation @1 :UInt64;
  version @2 :UInt64;
}

# Entries of `owner` with fromVersion < version <= toVersion, ascending. A
# receiver holding (generation, v >= fromVersion) applies it; reset replaces
# the whole table (a new generation, or a peer behind tombstone collection).
# Entries empty and fromVersion == toVersion: a digest-only notice.
struct TableDelta {
  owner @0 :Text;
  generation @1 :UInt64;
  fromVersion @2 :UInt64;
  toVersion @3 :UInt64;
  reset @4 :Bool;
  entries @5 :List(TableEntry);
}

# ---- Packets ----

struct Gossip {
  union {
    alive @0 :Alive;
    suspect @1 :Suspect;
    dead @2 :Dead;
    table @3 :TableDelta;
  }
}

struct Packet {
  union {
    none @0 :Void;              # gossip only
    ping @1 :Ping;
    ack @2 :Ack;
    nack @3 :Nack;
    pingReq @4 :PingReq;
    tableRequest @5 :List(TableDigest);   # pull: "send me what I miss"
    tableReply @6 :List(TableDelta);
  }
  # Each one a flat, unpacked message whose root is a Gossip: queued gossip is
  # encoded once and copied as bytes into every packet that carries it.
  gossip @7 :List(Data);
}

# ---- Reliable exchanges ----

struct MemberEntry {
  name @0 :Text;
  addr @1 :Text;
  nodeId @2 :Text;
  generation @3 :UInt64;
  incarnation @4 :UInt32;
  status @5 :MemberStatus;
  tableGeneration @6 :UInt64;   # the sender's digest of this member's table
  tableVersion @7 :UInt64;
}

# Full state sync (and join). The answer also carries the table deltas the
# asker is missing according to its digests.
struct PushPull {
  join @0 :Bool;
  members @1 :List(MemberEntry);
  tables @2 :List(TableDelta);
}

# ---- Key rotation (meshctl keys; node/mesh/key_rotation.h) ----

enum KeyOp { list @0; install @1; use @2; remove @3; }

struct KeyRequest {
  op @0 :KeyOp;
  key @1 :Data;            # 32 bytes; empty for list
  # The one member this request is for (its node name). Sealing proves who
  # may send it, not to whom: without this, a request captured on its way to
  # one member could be replayed to another within the replay window.
  recipient @2 :Text;
}

struct KeyResponse {
  error @0 :Text;          # non-empty: the operation failed on this node
  fingerprints @1 :List(Text);  # the keyring after it, the primary first
}

struct ExchangeRequest {
  union {
    pushPull @0 :PushPull;
    ping @1 :Ping;                 # the TCP fallback of a failed UDP probe
    tables @2 :List(TableDelta);   # push: deltas the peer showed it misses
    query @3 :Data;                # a look query (schema/query.capnp), for the layer above
    keys @4 :KeyRequest;           # a key operation on this member's keyring
  }
}

struct ExchangeResponse {
  union {
    pushPull @0 :PushPull;
    ack @1 :Ack;
    done @2 :Void;
    query @3 :Data;                # the answer to a query
    keys @4 :KeyResponse;          # the keyring after the key operation
  }
}
