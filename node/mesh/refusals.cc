// The mesh's drop and refusal counters as one list by reason.
#include "node/mesh/refusals.h"

#include <algorithm>

namespace flowmesh::mesh {

std::vector<Refusal> Refusals(const AsioTransportStats& t, const SealStats& s) {
  return {
      {"udp_oversized", t.packets_oversized,
       "datagrams over the packet size limit (1400 bytes), received or about to be sent"},
      {"udp_empty", t.packets_malformed, "empty datagrams received"},
      {"udp_error", t.packet_errors,
       "datagrams not sent or received: unparseable address or a socket error"},
      {"tcp_frame_oversized", t.frames_oversized,
       "exchange frames whose length exceeds the frame cap, either way; connection closed"},
      {"tcp_connections_over_limit", t.connections_rejected,
       "inbound connections refused because the inbound connection limit was reached"},
      {"tcp_inbound_timeout", t.inbound_timeouts,
       "inbound connections cut off: the request did not arrive, or the answer was not read, "
       "in time"},
      {"tcp_inbound_error", t.inbound_errors,
       "inbound connections closed early: reset by the peer, or the request was refused"},
      {"tcp_exchange_timeout", t.exchange_timeouts, "exchanges this node asked that timed out"},
      {"tcp_exchange_failed", t.exchange_errors - std::min(t.exchange_errors, t.exchange_timeouts),
       "exchanges this node asked that failed otherwise: refused, reset or a bad frame"},
      {"seal_open_failed", s.open_failed,
       "messages no key opens: another key or cluster label, tampered with, or not meshd's"},
      {"seal_malformed", s.malformed, "messages that opened but whose sealed header is wrong"},
      {"seal_replayed", s.replayed,
       "messages already received (replays), or answers to another request"},
      {"seal_too_old", s.too_old,
       "messages whose sender's clock is behind this node's by more than the replay window; "
       "run NTP"},
      {"seal_too_new", s.too_new,
       "messages whose sender's clock is ahead of this node's by more than the replay window; "
       "run NTP"},
      {"seal_failed", s.seal_failed,
       "messages this node could not seal (empty keyring, OpenSSL failure), not sent"},
  };
}

std::vector<Refusal> Refusals(const MeshStats& node) {
  auto count = [&](WireCheck c) { return node.malformed_by_check[static_cast<size_t>(c)]; };
  return {
      {"decode_empty", count(WireCheck::kEmpty), "mesh messages that opened but were empty"},
      {"decode_oversized", count(WireCheck::kOversized),
       "mesh messages that opened but exceed the decoder's size cap"},
      {"decode_structure", count(WireCheck::kStructure),
       "mesh messages that opened but are not a message of meshd's schema (another version?)"},
      {"decode_field_too_long", count(WireCheck::kFieldTooLong),
       "mesh messages with a name, address or process field over its limit (a node name "
       "over 128 bytes)"},
      {"decode_field_empty", count(WireCheck::kFieldEmpty),
       "mesh messages with a name or address that must be set left empty"},
      {"decode_bad_value", count(WireCheck::kBadValue),
       "mesh messages with an unknown kind or state, or versions out of order"},
      {"decode_unexpected_kind", count(WireCheck::kUnexpectedKind),
       "answers that decoded but were not the kind of answer asked for"},
      {"member_conflict", node.membership.conflicts,
       "alive messages ignored: another node claims this node's name, or a member's name or "
       "address at the same generation (two meshd under one --node-name?)"},
  };
}

}  // namespace flowmesh::mesh
