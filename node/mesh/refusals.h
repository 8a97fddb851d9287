// Every drop and refusal of the mesh's transports and decoders as one list by
// reason, zeros included, in a fixed order: what `meshctl status` and
// /metrics (flowmesh_mesh_refusals_total{reason}) show; and the rate-limited
// log line each reason gets. The reasons are stable labels: dashboards and
// alerts key on them.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/common/log.h"
#include "node/common/refusal.h"
#include "node/mesh/asio_transport.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/sealed_transport.h"

namespace flowmesh::mesh {

// What the UDP/TCP transport and the sealing layer dropped or refused.
std::vector<Refusal> Refusals(const AsioTransportStats& transport, const SealStats& seal);
// What opened but failed a decoder check in the MeshNode, by WireCheck, and
// alive messages membership ignored as conflicts.
std::vector<Refusal> Refusals(const MeshStats& node);

// One log line per reason at most every `interval_ns`, carrying how many
// were refused since the previous line: a flood from one address must not
// flood the log, and must not go unseen either.
class RefusalLog {
 public:
  explicit RefusalLog(int64_t interval_ns = 10'000'000'000) : interval_ns_(interval_ns) {}
  // `what` says what was refused and why, e.g. "connection from 10.0.0.9:
  // 8 unauthenticated connections from this address (limit 8)".
  void Note(const char* reason, int64_t now_ns, const std::string& what);

 private:
  int64_t interval_ns_;
  std::unordered_map<std::string, log::RateLimit> reasons_;
};

}  // namespace flowmesh::mesh
