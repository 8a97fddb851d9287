// The refusal lists and their rate-limited log.
#include "node/mesh/refusals.h"

#include "node/common/log.h"

namespace flowmesh::mesh {

std::vector<Refusal> Refusals(const AsioTransportStats& t, const SealStats& s) {
  return {
      {"packet_oversized", t.packets_oversized,
       "datagrams over the packet size limit, dropped (either way)"},
      {"packet_empty", t.packets_malformed, "empty datagrams, dropped"},
      {"packet_error", t.packet_errors,
       "datagrams not sent or received: bad address, socket error"},
      {"frame_oversized", t.frames_oversized,
       "stream frames announcing more than the frame limit, refused before any buffer"},
      {"budget_exhausted", t.budget_refused,
       "stream frames refused because all connections together already buffer the inbound budget"},
      {"inbound_full", t.connections_rejected,
       "connections refused because every inbound slot is taken"},
      {"preauth_per_source", t.preauth_per_source,
       "connections refused because their address already holds its share of unauthenticated "
       "slots"},
      {"preauth_full", t.preauth_full,
       "connections from non-members refused because every unauthenticated slot is taken"},
      {"preauth_evicted", t.preauth_evicted,
       "unauthenticated connections closed to make room for a known member"},
      {"preauth_timeout", t.preauth_timeouts,
       "connections closed for not sending a frame header and sealed head in time"},
      {"admission_failed", t.admission_failed,
       "requests whose sealed head did not open or check (key, label, clock, length), refused "
       "before their body was read"},
      {"request_timeout", t.inbound_timeouts,
       "admitted connections closed for not finishing their request or reading our answer in "
       "time"},
      {"inbound_error", t.inbound_errors,
       "inbound connections closed early: reset, or the request was not answered"},
      {"exchange_timeout", t.exchange_timeouts, "our exchanges that timed out"},
      {"exchange_failed", t.exchange_errors - t.exchange_timeouts,
       "our exchanges that failed otherwise: refused, reset, bad or oversized answer"},
      {"seal_open_failed", s.open_failed,
       "sealed messages no installed key opens: another key or label, tampered, garbage"},
      {"seal_malformed", s.malformed, "sealed messages that opened but whose header is wrong"},
      {"seal_replayed", s.replayed, "sealed messages already seen, or answers to another request"},
      {"seal_before_start", s.before_floor,
       "sealed messages replayed or sent before this node started (or already forgotten)"},
      {"seal_too_old", s.too_old,
       "sealed messages whose sender clock is behind ours by more than the window; check NTP"},
      {"seal_too_new", s.too_new,
       "sealed messages whose sender clock is ahead of ours by more than the window; check NTP"},
      {"seal_error", s.seal_failed, "messages this node could not seal (empty keyring, OpenSSL)"},
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

void RefusalLog::Note(const char* reason, int64_t now_ns, const std::string& what) {
  uint64_t held = 0;
  if (!reasons_.try_emplace(reason, interval_ns_).first->second.Allow(now_ns, &held)) return;
  FM_LOG(Warn, "mesh") << "refused (" << reason << ") " << what
                       << (held ? "; and " + std::to_string(held) +
                                      " more for this reason since the last report"
                                : std::string());
}

}  // namespace flowmesh::mesh
