// What the control server asks of the daemon. The daemon implements it; the
// server (control_server.h) never reaches into the data path otherwise.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/common/refusal.h"
#include "node/control/keys.h"
#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"
#include "node/flow/flow.h"
#include "node/look/look.h"
#include "node/probe/probe.h"
#include "node/store/store.h"

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

struct NodeStatus {
  std::string node_name;
  std::string version;
  uint32_t pid = 0;
  int64_t started_ns = 0;
  std::string probe_mode;
  std::string probe_reason;
  std::string netns;
  ProbeStats probe;
  ConnTableStats table;
  uint32_t watchers = 0;
  int64_t first_event_ns = 0;
  StoreStatus store;
  MeshStatus mesh;
};

class ControlBackend {
 public:
  virtual ~ControlBackend() = default;
  virtual NodeStatus GetStatus() = 0;
  virtual std::vector<OpenConnection> GetConnections() = 0;
  // A live queue of events for one watcher; the caller Close()s it when done.
  virtual std::shared_ptr<Subscriber> Subscribe() = 0;

  // Closed connections in the window, oldest first, as stored (what was
  // aggregated is flushed first). `fn` returns false to stop.
  virtual Status ScanRecords(const TimeWindow& window, const RecordFilter& filter,
                             const std::function<bool(const ConnRecord&)>& fn) = 0;
  virtual std::vector<EndpointView> GetEndpoints() = 0;
  virtual Result<LookResult> RunLook(const LookQuery& query) = 0;
  // The mesh's members and every endpoint it knows; empty when the mesh is off.
  virtual std::vector<PeerView> GetPeers() { return {}; }
  virtual std::vector<EndpointView> GetMeshEndpoints() { return {}; }
  virtual bool MeshEnabled() { return false; }
  // Applies a key operation on every live member (this node last); `key` is
  // base64, or for use/remove a fingerprint prefix of a key this node has.
  virtual Result<std::vector<NodeKeys>> RunKeyOp(KeyOp op, const std::string& key) {
    return Unavailable("this meshd is not in a mesh");
  }
};

}  // namespace flowmesh
