// Field-level conversions between meshd's structs and the control schema,
// shared by convert.cc (live data) and convert_history.cc (store and look).
// Internal to node/control; what queries between nodes carry too (addresses,
// flow stats, process details) is in node/wire/wire.h.
#pragma once

#include "node/control/control_types.h"
#include "node/probe/event.h"
#include "node/wire/wire.h"
#include "schema/control.capnp.h"

namespace flowmesh::wire {

schema::EventKind KindToWire(EventKind k);
Result<EventKind> KindFromWire(schema::EventKind k);
schema::Direction DirectionToWire(Direction d);
Result<Direction> DirectionFromWire(schema::Direction d);
schema::Source SourceToWire(EventSource src);
Result<EventSource> SourceFromWire(schema::Source src);
void KeyToWire(const ConnKey& k, schema::SocketKey::Builder b);
Result<ConnKey> KeyFromWire(schema::SocketKey::Reader r);
void ProcessToWire(const ProcessRef& p, schema::Process::Builder b);
ProcessRef ProcessFromWire(schema::Process::Reader r);
void CountersToWire(const TcpCounters& c, schema::Counters::Builder b);
TcpCounters CountersFromWire(schema::Counters::Reader r);

void StoreToWire(const StoreStatus& st, schema::StoreInfo::Builder b);
StoreStatus StoreFromWire(schema::StoreInfo::Reader r);

}  // namespace flowmesh::wire
