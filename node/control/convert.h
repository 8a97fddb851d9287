// meshd's C++ structs <-> the control schema, both ways, and the request and
// response messages of the control socket. The client side gets plain structs
// back (ConnEvent, OpenConnection, NodeStatus), so meshctl never sees capnp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/control/control_types.h"
#include "node/control/frame.h"
#include "node/flow/flow.h"
#include "node/flow/open_connection.h"
#include "node/look/look_types.h"
#include "node/look/map_types.h"
#include "node/probe/event.h"
#include "node/store/store_types.h"
#include "schema/control.capnp.h"

namespace flowmesh {

// Which connections a watcher or `connections` request wants. Zero and empty
// select everything; a listener has no remote port, so it never matches rports.
struct WatchFilter {
  uint32_t pid = 0;
  uint16_t family = 0;  // AF_INET, AF_INET6, 0 = both
  std::vector<uint16_t> lports;
  std::vector<uint16_t> rports;
  // The process's workload: its systemd unit ("nginx.service"), and a
  // container by name (a pod's container by its name) or id prefix.
  std::string unit;
  std::string container;

  bool Matches(const ConnKey& key, uint32_t pid) const;
  // Whether `w` is the unit and the container asked for (none asked: any).
  bool MatchesWorkload(const Workload& w) const;
  bool ByWorkload() const { return !unit.empty() || !container.empty(); }
  bool Matches(const ConnEvent& e) const { return Matches(e.key, e.proc.pid); }
  bool Matches(const OpenConnection& c) const { return Matches(c.key, c.proc.pid); }
  bool operator==(const WatchFilter&) const = default;
};

enum class RequestKind {
  kStatus,
  kConnections,
  kWatch,
  kFlows,
  kEndpoints,
  kLook,
  kPeers,
  kMeshEndpoints,
  kKeys,
  kMap
};

struct ControlRequest {
  RequestKind kind = RequestKind::kStatus;
  WatchFilter filter;  // connections, watch and flows
  TimeWindow window;   // flows
  uint64_t limit = 0;  // flows: at most this many records; 0 = all
  LookQuery look;
  KeyOp key_op = KeyOp::kList;  // keys
  std::string key;
  MapQuery map;
};

struct ControlResponse {
  enum class Kind {
    kError,
    kStatus,
    kConnections,
    kEvent,
    kWatchDropped,
    kRecords,
    kEndpoints,
    kLook,
    kPeers,
    kKeys,
    kMap
  };
  Kind kind = Kind::kError;
  std::string error;
  NodeStatus status;
  std::vector<OpenConnection> connections;
  ConnEvent event;
  uint64_t dropped = 0;             // total for this watcher so far
  std::vector<ConnRecord> records;  // one batch of a flows stream
  bool done = false;                // ... the last one
  bool truncated = false;           // ... and the limit cut the scan short
  std::vector<EndpointView> endpoints;
  LookNode look;
  std::vector<PeerView> peers;
  std::vector<NodeKeys> keys;
  MapResult map;
  // The workload of connections[i], of records[i], or of the event ([0]),
  // as meshd resolved it; empty when meshd sent none (a meshd of before).
  std::vector<Workload> workloads;
};

// --unit and --container values, checked before they are sent: a unit
// name ("nginx" means "nginx.service", as systemctl reads it), a container
// name or id prefix. The error names the option, the value and why.
Result<std::string> ParseUnitFilter(std::string_view text);
Result<std::string> ParseContainerFilter(std::string_view text);

// Struct <-> schema. The From* functions validate what a peer could get
// wrong (enum values from a newer meshd, address lengths) and say what.
void ToCapnp(const ConnEvent& e, schema::Event::Builder b);
Result<ConnEvent> FromCapnp(schema::Event::Reader r);
void ToCapnp(const OpenConnection& c, schema::Connection::Builder b);
Result<OpenConnection> FromCapnp(schema::Connection::Reader r);
void ToCapnp(const NodeStatus& s, schema::StatusInfo::Builder b);
Result<NodeStatus> FromCapnp(schema::StatusInfo::Reader r);
void ToCapnp(const WatchFilter& f, schema::Filter::Builder b);
Result<WatchFilter> FromCapnp(schema::Filter::Reader r);

void ToCapnp(const ConnRecord& r, schema::Record::Builder b);
Result<ConnRecord> FromCapnp(schema::Record::Reader r);
void ToCapnp(const EndpointView& e, schema::EndpointInfo::Builder b);
Result<EndpointView> FromCapnp(schema::EndpointInfo::Reader r);
void ToCapnp(const LookQuery& q, schema::LookQuery::Builder b);
Result<LookQuery> FromCapnp(schema::LookQuery::Reader r);
void ToCapnp(const LookNode& n, schema::LookNode::Builder b);
Result<LookNode> FromCapnp(schema::LookNode::Reader r);

// The map (convert_map.cc). Its query as meshd accepts it, and its answer
// as meshctl accepts it: every text and list within these, else an error
// naming what is over. A node id is "<host>/<group key>", a group key holds
// a workload's names (256 bytes each, wire.h); a detail is a sentence.
void ToCapnp(const MapQuery& q, schema::MapQuery::Builder b);
Result<MapQuery> FromCapnp(schema::MapQuery::Reader r);
void ToCapnp(const MapResult& m, schema::MapResult::Builder b);
Result<MapResult> FromCapnp(schema::MapResult::Reader r);
constexpr size_t kMaxMapTextBytes = 2048;       // ids, labels, hosts, member names
constexpr size_t kMaxMapDetailBytes = 4096;     // a status detail, a member's error
constexpr size_t kMaxMapNodes = 1u << 18;
constexpr size_t kMaxControlMapEdges = 1u << 20;
constexpr size_t kMaxMapMembers = 1u << 16;
constexpr size_t kMaxMapChanges = 1u << 21;  // appeared + disappeared: both windows' edges
constexpr size_t kMaxMapNodeEndpoints = 4096;
constexpr int kMaxMapDepth = 64;  // as ParseMapQueryText's --depth
constexpr int kMaxMapConcurrency = 4096;

// The deepest `look` a request may ask for: deeper trees are not useful to
// read and would strain the message nesting limits.
constexpr int kMaxLookDepth = 16;
// Records per frame of a flows stream.
constexpr size_t kRecordsPerFrame = 2048;

// Whole messages as frames (header included), ready to write.
Result<std::vector<uint8_t>> EncodeRequest(const ControlRequest& request);
Result<std::vector<uint8_t>> EncodeErrorResponse(std::string_view message);
Result<std::vector<uint8_t>> EncodeStatusResponse(const NodeStatus& status);
// `workloads` (empty = none known) is parallel to the connections or
// records; each distinct one travels once.
Result<std::vector<uint8_t>> EncodeConnectionsResponse(const std::vector<OpenConnection>& conns,
                                                       const std::vector<Workload>& workloads = {});
Result<std::vector<uint8_t>> EncodeEventResponse(const ConnEvent& event,
                                                 const Workload& workload = {});
Result<std::vector<uint8_t>> EncodeDroppedResponse(uint64_t total_dropped);
Result<std::vector<uint8_t>> EncodeRecordsResponse(const std::vector<ConnRecord>& records,
                                                   bool done, bool truncated,
                                                   const std::vector<Workload>& workloads = {});
Result<std::vector<uint8_t>> EncodeEndpointsResponse(const std::vector<EndpointView>& endpoints);
Result<std::vector<uint8_t>> EncodeLookResponse(const LookNode& root);
Result<std::vector<uint8_t>> EncodePeersResponse(const std::vector<PeerView>& peers);
Result<std::vector<uint8_t>> EncodeKeysResponse(const std::vector<NodeKeys>& nodes);
Result<std::vector<uint8_t>> EncodeMapResponse(const MapResult& map);

// Decoding never throws: a message that does not fit the schema is an error.
Result<ControlRequest> DecodeRequest(Frame& frame);
Result<ControlResponse> DecodeResponse(Frame& frame);

}  // namespace flowmesh
