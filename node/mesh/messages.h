// The mesh messages as plain C++ values: what wire.cc encodes to and decodes
// from schema/mesh.capnp, so no Cap'n Proto reader outlives the decoder.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "node/common/net.h"
#include "node/mesh/keyring.h"
#include "node/proc/workload.h"

namespace flowmesh::mesh {

enum class MemberState : uint8_t { kAlive, kSuspect, kDead, kLeft };
const char* MemberStateName(MemberState state);

struct PingMsg {
  uint32_t seq = 0;
  std::string target;
};
struct AckMsg {
  uint32_t seq = 0;
};
struct NackMsg {
  uint32_t seq = 0;
};
struct PingReqMsg {
  uint32_t seq = 0;
  std::string target;
  std::string target_addr;
  bool want_nack = false;
};

struct AliveMsg {
  std::string name;
  std::string addr;
  std::string node_id;
  uint64_t generation = 0;
  uint32_t incarnation = 0;
};
struct SuspectMsg {
  std::string name;
  uint64_t generation = 0;
  uint32_t incarnation = 0;
  std::string from;
};
// from == name: the member left.
struct DeadMsg {
  std::string name;
  uint64_t generation = 0;
  uint32_t incarnation = 0;
  std::string from;
};

struct TableEntryMsg {
  uint64_t version = 0;
  bool deleted = false;
  bool is_address = false;
  bool is_alias = false;  // addr:port is a NAT front, `target` what it reaches
  IpAddr addr;
  uint16_t port = 0;
  Endpoint target;
  bool balancer = false;
  uint32_t pid = 0;
  uint32_t pgid = 0;
  std::string comm;
  std::string exe;
  Workload workload;  // an endpoint's owner's; none for addresses and aliases
};
struct TableDigestMsg {
  std::string owner;
  uint64_t generation = 0;
  uint64_t version = 0;
};
struct TableDeltaMsg {
  std::string owner;
  uint64_t generation = 0;
  uint64_t from_version = 0;
  uint64_t to_version = 0;
  bool reset = false;
  std::vector<TableEntryMsg> entries;
};
struct TableRequestMsg {
  std::vector<TableDigestMsg> digests;
};
struct TableReplyMsg {
  std::vector<TableDeltaMsg> deltas;
};

using GossipMsg = std::variant<AliveMsg, SuspectMsg, DeadMsg, TableDeltaMsg>;
using PrimaryMsg = std::variant<std::monostate, PingMsg, AckMsg, NackMsg, PingReqMsg,
                                TableRequestMsg, TableReplyMsg>;

struct PacketMsg {
  PrimaryMsg primary;
  std::vector<GossipMsg> gossip;
};

struct MemberEntryMsg {
  std::string name;
  std::string addr;
  std::string node_id;
  uint64_t generation = 0;
  uint32_t incarnation = 0;
  MemberState state = MemberState::kAlive;
  uint64_t table_generation = 0;
  uint64_t table_version = 0;
};
struct PushPullMsg {
  bool join = false;
  std::vector<MemberEntryMsg> members;
  std::vector<TableDeltaMsg> tables;
};
struct TablePushMsg {
  std::vector<TableDeltaMsg> deltas;
};
struct DoneMsg {};
// A query (or its answer) of the layer above the mesh (look), carried opaque.
struct QueryMsg {
  std::vector<uint8_t> payload;
};

// meshctl keys: one operation on one member's keyring (key_rotation.h).
enum class KeyOp : uint8_t { kList, kInstall, kUse, kRemove };
struct KeyRequestMsg {
  KeyOp op = KeyOp::kList;
  Key key{};  // unused for list
  // The member (node name) it is addressed to; a member refuses a request
  // addressed to another (a cross-node replay), and one addressed to nobody.
  std::string recipient;
};
// A member's keyring after the operation (the primary first), or why it failed.
struct KeyResponseMsg {
  std::string error;  // "" = done
  std::vector<std::string> fingerprints;
};

using ExchangeRequestMsg =
    std::variant<PushPullMsg, PingMsg, TablePushMsg, QueryMsg, KeyRequestMsg>;
using ExchangeResponseMsg = std::variant<PushPullMsg, AckMsg, DoneMsg, QueryMsg, KeyResponseMsg>;

}  // namespace flowmesh::mesh
