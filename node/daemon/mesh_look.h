// The mesh-wide `look` (DESIGN.md "look"): the look engine run over the
// gossiped endpoint tables. MeshDirectory says which member owns an address
// or endpoint (this node answers from its own store and live listeners);
// MeshAsker asks every member of one level of the walk at once, all of a
// member's questions in one sealed round trip, each with the per-hop timeout
// and all within the overall deadline. A member that does not answer in time
// becomes an `unreachable` leaf; the rest of the tree still comes back.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/look/local_directory.h"
#include "node/look/look.h"
#include "node/mesh/mesh_node.h"

namespace flowmesh {

// Sends one query to a member's mesh address; `done` runs once, on any
// thread, with the answer or an error.
using QuerySender =
    std::function<void(const std::string& address, std::vector<uint8_t> query, int64_t timeout_ns,
                       std::function<void(Result<std::vector<uint8_t>>)> done)>;

struct MeshLookStats {
  uint64_t round_trips = 0;  // queries sent (one per member per level)
  uint64_t questions = 0;    // questions they carried
  uint64_t failed = 0;       // queries without an answer (timeout, refused, malformed)
};

class MeshDirectory final : public Directory {
 public:
  // `local` answers for this node (LocalDirectory semantics: live listeners,
  // loopback); `tables` are the live members' tables (MeshNode::Tables).
  MeshDirectory(LocalDirectory& local, std::vector<mesh::NodeTable> tables, QuerySender send);
  ~MeshDirectory() override;

  std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& endpoint) override;
  std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) override;

  // Asks `questions` (their nodes are this directory's NodeRefs): local ones
  // here, remote ones in one query per member, all members at once.
  std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& questions, const TimeWindow& w,
                              int64_t hop_timeout_ns, int64_t deadline_ns);
  const MeshLookStats& stats() const { return stats_; }

 private:
  struct Member;
  NodeRef Ref(Member& m);

  LocalDirectory& local_;
  std::vector<std::unique_ptr<Member>> members_;
  std::map<std::string, Member*> by_name_;
  QuerySender send_;
  MeshLookStats stats_;
};

// Runs `query` over the mesh; the directory's asker replaces AskInTurn.
LookResult MeshLook(const LookQuery& query, MeshDirectory& directory);

}  // namespace flowmesh
