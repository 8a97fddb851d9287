// Field-level conversions between meshd's structs and the control schema,
// shared by convert.cc (live data) and convert_history.cc (store and look).
// Internal to node/control, and used by node/daemon/query_wire.cc for the
// same structs inside look queries between nodes.
#pragma once

#include "node/control/backend.h"
#include "schema/control.capnp.h"

namespace flowmesh::wire {

schema::EventKind KindToWire(EventKind k);
Result<EventKind> KindFromWire(schema::EventKind k);
schema::Direction DirectionToWire(Direction d);
Result<Direction> DirectionFromWire(schema::Direction d);
schema::Source SourceToWire(EventSource src);
Result<EventSource> SourceFromWire(schema::Source src);
kj::ArrayPtr<const kj::byte> AddrBytes(const IpAddr& a);
// By length: 4, 16, or 0 for "none".
Result<IpAddr> AddrFromWire(capnp::Data::Reader d, const char* what);
void KeyToWire(const ConnKey& k, schema::SocketKey::Builder b);
Result<ConnKey> KeyFromWire(schema::SocketKey::Reader r);
void ProcessToWire(const ProcessRef& p, schema::Process::Builder b);
ProcessRef ProcessFromWire(schema::Process::Reader r);
void CountersToWire(const TcpCounters& c, schema::Counters::Builder b);
TcpCounters CountersFromWire(schema::Counters::Reader r);

void StoreToWire(const StoreStatus& st, schema::StoreInfo::Builder b);
StoreStatus StoreFromWire(schema::StoreInfo::Reader r);
void DetailsToWire(const ProcessDetails& p, schema::ProcessDetails::Builder b);
ProcessDetails DetailsFromWire(schema::ProcessDetails::Reader r);
void FlowStatsToWire(const FlowStats& f, schema::FlowStats::Builder b);
FlowStats FlowStatsFromWire(schema::FlowStats::Reader r);

}  // namespace flowmesh::wire
