// The plain structs the control protocol carries besides the data path's own
// plain types (events, open connections, records, look trees): node status,
// endpoints, peers and key operations. meshctl includes this, so nothing here
// reaches the store, the probes or their libraries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "node/common/refusal.h"
#include "node/flow/flow.h"
#include "node/flow/open_connection.h"
#include "node/probe/probe_stats.h"
#include "node/store/store_types.h"

namespace flowmesh {

// The store as `meshctl status` shows it: RocksDB's figures plus the
// flusher's and the aggregator's.
struct StoreStatus {
  StoreStats stats;
  uint64_t flushes = 0;
  uint64_t records_written = 0;  // closed-connection records written since start
  uint64_t pending_records = 0;
  uint64_t dropped_records = 0;
  uint64_t flows = 0;
  uint64_t duplicates = 0;
  bool records_off = false;  // meshd --records off: flows only
  // In-process only (metrics): open connections carried into a checkpoint,
  // and checkpoints missed because the probe thread stalled (AggregatorStats).
  uint64_t carried = 0;
  uint64_t checkpoints_missed = 0;
};

// A member that flapped between alive and suspect, or came back from a false
// death, as this node saw it.
struct MemberFlapping {
  std::string name;
  uint64_t flaps = 0;
  uint64_t false_deaths = 0;
};

// The mesh as `meshctl status` shows it; `enabled` false = not in a mesh.
struct MeshStatus {
  bool enabled = false;
  std::string address;  // advertised ip:port
  bool sealed = false;
  uint32_t keys = 0;
  uint64_t alive = 0, suspect = 0, dead = 0, left = 0;
  uint64_t bytes_in = 0, bytes_out = 0;  // gossip, syncs and queries
  // Arrived whole but dropped: did not unseal (wrong key or label, tampered),
  // replayed, too old or too new, or did not decode. `refusals` has these and
  // every other drop (oversized, empty, refused connections, timeouts).
  uint64_t malformed = 0;
  uint64_t queries_in = 0;        // look and key queries answered for others
  uint64_t looks = 0;             // mesh-wide looks run from here
  uint64_t look_round_trips = 0;  // ... and the queries they sent
  // Of those, the ones without answers by reason (each an `unreachable` node).
  std::vector<Refusal> look_unanswered;
  uint64_t maps = 0;  // maps run from here
  // Their member queries that came back without a map, by reason (look's and no_map).
  std::vector<Refusal> map_unanswered;
  // Every drop and refusal by reason, zeros included, in a fixed order.
  std::vector<Refusal> refusals;
  // Flapping (node/mesh/flapping.h).
  uint64_t suspicions_raised = 0;        // by this node's probes
  uint64_t suspicions_received = 0;      // of others, from peers' news
  uint64_t refutations = 0;              // of suspicions or deaths of this node
  uint64_t incarnation_bumps = 0;        // of this node's incarnation
  uint64_t false_deaths = 0;             // members held dead that came back in the same life
  uint64_t flaps = 0;                    // suspect -> alive returns, all members
  std::vector<MemberFlapping> flapping;  // most first, a bounded few
};

// A listening endpoint with its owner's details, for `meshctl endpoints`.
struct EndpointView {
  EndpointRecord endpoint;
  ProcessDetails process;
  std::string node;  // owner in the mesh; "" = this node
  // Not empty: `endpoint` is a front the node's NAT translates, not a
  // listener. Published port: one target, the listener it reaches, and
  // `process` its owner. Balancer: the backends, no process.
  std::vector<Endpoint> targets;
  bool balancer = false;
  bool alias() const { return !targets.empty(); }
};

// A member of the mesh, for `meshctl peers`.
struct PeerView {
  std::string name;
  std::string addr;   // "ip:port"
  std::string state;  // alive, suspect, dead, left
  uint32_t incarnation = 0;
  uint64_t endpoints = 0;
  int64_t state_change_ns = 0;  // Unix ns
  uint64_t generation = 0;
  std::string node_id;
};

// meshctl keys: the operation, and each member's keyring after it.
enum class KeyOp : uint8_t { kList, kInstall, kUse, kRemove };
struct KeyState {
  std::string fingerprint;
  bool primary = false;
};
struct NodeKeys {
  std::string node;
  std::string error;  // "" = done
  std::vector<KeyState> keys;
};

struct NodeStatus {
  std::string node_name;
  std::string version;
  uint32_t pid = 0;
  int64_t started_ns = 0;
  std::string probe_mode;
  std::string probe_reason;
  std::string netns;
  // NAT translations: "on: N translated connections held, ...", or "off: why".
  std::string conntrack;
  // Workloads named from cgroups: "on: N cgroups named, ...", or "off: why".
  std::string workloads;
  // The web page (--ui-listen): "on: http://IP:PORT/ (token required)" or "off".
  std::string ui;
  ProbeStats probe;
  ConnTableStats table;
  uint32_t watchers = 0;
  int64_t first_event_ns = 0;
  StoreStatus store;
  MeshStatus mesh;
};

}  // namespace flowmesh
