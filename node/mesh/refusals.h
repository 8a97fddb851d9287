// Every drop and refusal of the mesh's transports and decoders as one list by
// reason, zeros included, in a fixed order: what `meshctl status` and
// /metrics (flowmesh_mesh_refusals_total{reason}) show.
#pragma once

#include <vector>

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

}  // namespace flowmesh::mesh
