// What the control server asks of the daemon. The daemon implements it; the
// server (control_server.h) never reaches into the data path otherwise.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "node/control/control_types.h"
#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"
#include "node/flow/flow.h"
#include "node/look/look.h"
#include "node/look/map_types.h"
#include "node/store/store.h"

namespace flowmesh {

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
  // The unit or container of the process an event, connection or record
  // names (they carry only its ProcessRef); none when not known. Called
  // from the control threads, once per process per request (WorkloadMemo).
  virtual Workload WorkloadOf(const ProcessRef& /*process*/) { return {}; }
  virtual Result<LookResult> RunLook(const LookQuery& query) = 0;
  // `meshctl map`: every live member's part of the map, merged (and the
  // baseline window's, compared, when the query has one).
  virtual Result<MapResult> RunMap(const MapQuery& /*query*/) {
    return Unavailable("this meshd cannot draw a map");
  }
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
