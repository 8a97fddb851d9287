// meshd's structs <-> schema/common.capnp: addresses, endpoints, flow stats
// and process details, the pieces that both the control socket and queries
// between nodes carry. The one place they are converted, below look and
// control.
#pragma once

#include <capnp/common.h>
#include <kj/common.h>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/flow/flow.h"
#include "schema/common.capnp.h"

namespace flowmesh::wire {

// An address as bytes: 4, 16, or none for "unset".
kj::ArrayPtr<const kj::byte> AddrBytes(const IpAddr& a);
// By length: 4, 16, or 0 for "none"; `what` names the field in the error.
Result<IpAddr> AddrFromWire(capnp::Data::Reader d, const char* what);
void AddrToWire(const IpAddr& a, schema::Addr::Builder b);
Result<IpAddr> AddrFromWire(schema::Addr::Reader r, const char* what);
void EndpointToWire(const Endpoint& e, schema::Endpoint::Builder b);
Result<Endpoint> EndpointFromWire(schema::Endpoint::Reader r);

void DetailsToWire(const ProcessDetails& p, schema::ProcessDetails::Builder b);
ProcessDetails DetailsFromWire(schema::ProcessDetails::Reader r);
void WorkloadToWire(const Workload& w, schema::Workload::Builder b);
Workload WorkloadFromWire(schema::Workload::Reader r);
void FlowStatsToWire(const FlowStats& f, schema::FlowStats::Builder b);
FlowStats FlowStatsFromWire(schema::FlowStats::Reader r);

}  // namespace flowmesh::wire
