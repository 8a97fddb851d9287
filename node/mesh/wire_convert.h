// Between the C++ mesh messages (messages.h) and their Cap'n Proto builders
// and readers (schema/mesh.capnp). Internal to wire.cc; readers validate
// lengths and sizes and say what was wrong.
#pragma once

#include "node/common/status.h"
#include "node/mesh/messages.h"
#include "schema/mesh.capnp.h"

namespace flowmesh::mesh::wire {

namespace s = ::flowmesh::schema::mesh;

void Set(s::Gossip::Builder b, const GossipMsg& m);
void Set(s::TableDelta::Builder b, const TableDeltaMsg& m);
void Set(s::TableDigest::Builder b, const TableDigestMsg& m);
void Set(s::PushPull::Builder b, const PushPullMsg& m);
void Set(s::Ping::Builder b, const PingMsg& m);
void Set(s::PingReq::Builder b, const PingReqMsg& m);
void Set(s::KeyRequest::Builder b, const KeyRequestMsg& m);
void Set(s::KeyResponse::Builder b, const KeyResponseMsg& m);

Status Read(s::Gossip::Reader r, GossipMsg* m);
Status Read(s::TableDelta::Reader r, TableDeltaMsg* m);
Status Read(s::TableDigest::Reader r, TableDigestMsg* m);
Status Read(s::PushPull::Reader r, PushPullMsg* m);
Status Read(s::Ping::Reader r, PingMsg* m);
Status Read(s::PingReq::Reader r, PingReqMsg* m);
Status Read(s::KeyRequest::Reader r, KeyRequestMsg* m);
Status Read(s::KeyResponse::Reader r, KeyResponseMsg* m);

}  // namespace flowmesh::mesh::wire
