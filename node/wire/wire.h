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
// The bounds a workload's texts keep on the wire: a name, id or unit within
// kMaxWorkloadTextBytes (a runtime's names are 253 at most), the cgroup path
// within the kernel's PATH_MAX, and no NUL anywhere. A workload past them is
// sent and read as none: the process, row or answer around it still counts.
inline constexpr size_t kMaxWorkloadTextBytes = 256;
inline constexpr size_t kMaxWorkloadCgroupBytes = 4096;
bool WorkloadFitsWire(const Workload& w, size_t max_text = kMaxWorkloadTextBytes);

void WorkloadToWire(const Workload& w, schema::Workload::Builder b);
// None when any text is past the bounds above, or the kind is unknown.
Workload WorkloadFromWire(schema::Workload::Reader r);
void FlowStatsToWire(const FlowStats& f, schema::FlowStats::Builder b);
FlowStats FlowStatsFromWire(schema::FlowStats::Reader r);

}  // namespace flowmesh::wire
