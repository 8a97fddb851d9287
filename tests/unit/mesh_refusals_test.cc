// The list behind `meshctl status`'s refused lines and flowmesh_mesh_refusals_total: every
// transport, seal and decode counter under its own stable reason.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "node/mesh/refusals.h"

namespace flowmesh::mesh {
namespace {

std::map<std::string, uint64_t> ByReason(const std::vector<Refusal>& list) {
  std::map<std::string, uint64_t> out;
  for (const Refusal& r : list) out[r.reason] = r.count;
  return out;
}

TEST(MeshRefusals, EachCounterHasItsReason) {
  AsioTransportStats t;
  t.packets_oversized = 1;
  t.packets_malformed = 2;
  t.packet_errors = 3;
  t.frames_oversized = 4;
  t.connections_rejected = 5;
  t.inbound_timeouts = 6;
  t.inbound_errors = 7;
  t.exchange_timeouts = 8;
  t.exchange_errors = 8 + 9;  // timeouts are among the errors
  t.budget_refused = 40;
  t.preauth_per_source = 41;
  t.preauth_full = 42;
  t.preauth_evicted = 43;
  t.preauth_timeouts = 44;
  t.admission_failed = 45;
  SealStats s;
  s.before_floor = 46;
  s.open_failed = 10;
  s.malformed = 11;
  s.replayed = 12;
  s.too_old = 13;
  s.too_new = 14;
  s.seal_failed = 15;
  MeshStats n;
  for (size_t i = 0; i < kWireChecks; i++) n.malformed_by_check[i] = 20 + i;
  n.membership.conflicts = 30;
  std::vector<Refusal> list = Refusals(t, s);
  for (Refusal& r : Refusals(n)) list.push_back(r);
  std::map<std::string, uint64_t> want = {
      {"packet_oversized", 1},
      {"packet_empty", 2},
      {"packet_error", 3},
      {"frame_oversized", 4},
      {"budget_exhausted", 40},
      {"inbound_full", 5},
      {"preauth_per_source", 41},
      {"preauth_full", 42},
      {"preauth_evicted", 43},
      {"preauth_timeout", 44},
      {"admission_failed", 45},
      {"request_timeout", 6},
      {"inbound_error", 7},
      {"exchange_timeout", 8},
      {"exchange_failed", 9},
      {"seal_open_failed", 10},
      {"seal_malformed", 11},
      {"seal_replayed", 12},
      {"seal_too_old", 13},
      {"seal_before_start", 46},
      {"seal_too_new", 14},
      {"seal_error", 15},
      {"decode_empty", 20},
      {"decode_oversized", 21},
      {"decode_structure", 22},
      {"decode_field_too_long", 23},
      {"decode_field_empty", 24},
      {"decode_bad_value", 25},
      {"decode_unexpected_kind", 26},
      {"member_conflict", 30},
  };
  EXPECT_EQ(ByReason(list), want);
  EXPECT_EQ(list.size(), want.size()) << "a reason is listed twice";
  // Reasons are Prometheus label values and JSON keys: stable lower_snake_case, with help.
  for (const Refusal& r : list) {
    EXPECT_TRUE(std::regex_match(r.reason, std::regex("[a-z][a-z0-9_]*"))) << r.reason;
    EXPECT_FALSE(r.help.empty()) << r.reason;
    EXPECT_EQ(r.help.find('\n'), std::string::npos) << r.reason;
  }
}

TEST(MeshRefusals, ZerosAreListedTooWithTheDecoders) {
  std::vector<Refusal> list = Refusals(AsioTransportStats{}, SealStats{});
  const size_t transport_and_seal = list.size();
  for (Refusal& r : Refusals(MeshStats{})) list.push_back(std::move(r));
  ASSERT_GT(transport_and_seal, 0u);
  ASSERT_GT(list.size(), transport_and_seal) << "the decoders' reasons are missing";
  for (const Refusal& r : list) EXPECT_EQ(r.count, 0u) << r.reason;
}

}  // namespace
}  // namespace flowmesh::mesh
