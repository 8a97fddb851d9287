// meshd's C++ structs <-> the control schema, both ways, and the request and
// response messages of the control socket. The client side gets plain structs
// back (ConnEvent, OpenConnection, NodeStatus), so meshctl never sees capnp.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/control/backend.h"
#include "node/control/frame.h"
#include "schema/control.capnp.h"

namespace flowmesh {

// Which connections a watcher or `connections` request wants. Zero and empty
// select everything; a listener has no remote port, so it never matches rports.
struct WatchFilter {
  uint32_t pid = 0;
  uint16_t family = 0;  // AF_INET, AF_INET6, 0 = both
  std::vector<uint16_t> lports;
  std::vector<uint16_t> rports;

  bool Matches(const ConnKey& key, uint32_t pid) const;
  bool Matches(const ConnEvent& e) const { return Matches(e.key, e.proc.pid); }
  bool Matches(const OpenConnection& c) const { return Matches(c.key, c.proc.pid); }
  bool operator==(const WatchFilter&) const = default;
};

enum class RequestKind { kStatus, kConnections, kWatch };

struct ControlRequest {
  RequestKind kind = RequestKind::kStatus;
  WatchFilter filter;  // connections and watch
};

struct ControlResponse {
  enum class Kind { kError, kStatus, kConnections, kEvent, kWatchDropped };
  Kind kind = Kind::kError;
  std::string error;
  NodeStatus status;
  std::vector<OpenConnection> connections;
  ConnEvent event;
  uint64_t dropped = 0;  // total for this watcher so far
};

// Struct <-> schema. The From* functions validate what a peer could get
// wrong (enum values from a newer meshd, address lengths) and say what.
void ToCapnp(const ConnEvent& e, schema::Event::Builder b);
Result<ConnEvent> FromCapnp(schema::Event::Reader r);
void ToCapnp(const OpenConnection& c, schema::Connection::Builder b);
Result<OpenConnection> FromCapnp(schema::Connection::Reader r);
// StatusInfo has no fields for polls and the table's close_without_open /
// close_unattributed: they travel as named entries of `detail` and come back
// into their NodeStatus fields.
void ToCapnp(const NodeStatus& s, schema::StatusInfo::Builder b);
Result<NodeStatus> FromCapnp(schema::StatusInfo::Reader r);
void ToCapnp(const WatchFilter& f, schema::Filter::Builder b);
Result<WatchFilter> FromCapnp(schema::Filter::Reader r);

// Whole messages as frames (header included), ready to write.
Result<std::vector<uint8_t>> EncodeRequest(const ControlRequest& request);
Result<std::vector<uint8_t>> EncodeErrorResponse(std::string_view message);
Result<std::vector<uint8_t>> EncodeStatusResponse(const NodeStatus& status);
Result<std::vector<uint8_t>> EncodeConnectionsResponse(const std::vector<OpenConnection>& conns);
Result<std::vector<uint8_t>> EncodeEventResponse(const ConnEvent& event);
Result<std::vector<uint8_t>> EncodeDroppedResponse(uint64_t total_dropped);

// Decoding never throws: a message that does not fit the schema is an error.
Result<ControlRequest> DecodeRequest(Frame& frame);
Result<ControlResponse> DecodeResponse(Frame& frame);

}  // namespace flowmesh
