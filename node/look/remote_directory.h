// The mesh-wide `look` (DESIGN.md "look"): the look engine run over the
// members' gossiped tables. RemoteDirectory says which member owns an address
// or endpoint (this node answers from its own store and live listeners) and
// asks every member of one level of the walk at once, all of a member's
// questions in one query, each with the per-hop timeout and all within the
// overall deadline. A member that does not answer in time becomes an
// `unreachable` leaf; the rest of the tree still comes back.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "node/look/local_directory.h"
#include "node/look/look.h"

namespace flowmesh {

// A front a member's NAT translates (its gossiped alias): a published port
// to its own listener, or a balancer's front to one backend.
struct MemberAlias {
  Endpoint front;
  Endpoint target;
  bool balancer = false;
};

// A member of the mesh as look needs it: who it is, whether it can be asked,
// and what it has (meshd fills these in from the mesh's gossiped tables).
struct LookMember {
  std::string name;
  std::string address;  // where its queries go ("ip:port")
  bool live = true;     // alive or suspect; a gone member is not asked
  std::string state;    // "alive", "dead", ...: why a gone member was not asked
  // Its endpoint table has arrived. Until then only the address its queries
  // go to is known to be its; any other address may be its too (`unsynced`).
  bool synced = true;
  std::vector<IpAddr> addresses;
  std::vector<Endpoint> endpoints;  // where it listens
  // The owner of endpoints[i] as its table announced it (no start time);
  // may be shorter (nothing announced).
  std::vector<ProcessDetails> owners;
  std::vector<MemberAlias> aliases;
};

// One look query (look_wire.h bytes) for the member at `address`.
struct MemberQuery {
  std::string address;
  std::vector<uint8_t> bytes;
};
// One reply per query, in order; nullopt = none came, not even an error.
using QueryReplies = std::vector<std::optional<Result<std::vector<uint8_t>>>>;
// How many queries may be out at once (0 = all) and how long the whole
// scatter may take (0 = `timeout_ns`); a query not sent by then is answered
// with the "deadline has passed" error (mesh::ScatterLimits).
struct QueryLimits {
  size_t max_in_flight = 0;
  int64_t total_timeout_ns = 0;
  std::vector<int64_t>* latency_ns = nullptr;  // set: each query's send-to-reply time
};
// Sends the queries (all at once, or as `limits` say), runs `meanwhile`
// while they are out, and waits for the replies, each query timed out after
// `timeout_ns` (meshd: the mesh's scatter-gather over sealed exchanges).
using QueryScatter =
    std::function<QueryReplies(std::vector<MemberQuery> queries, int64_t timeout_ns,
                               const std::function<void()>& meanwhile, QueryLimits limits)>;

// Why a member's questions came back without answers (each such node is an
// `unreachable` leaf, the reason in its status_detail): stable metric labels.
enum class Unanswered : uint8_t {
  kTimeout,     // no answer within the per-hop timeout
  kRefused,     // the member refused: too many look queries in flight there
  kFailed,      // connection refused or reset, malformed answer, its store failed
  kMemberGone,  // dead or left: not asked
  kDeadline,    // the whole look's deadline had passed: not asked
};
constexpr size_t kUnansweredReasons = 5;
std::string_view UnansweredName(Unanswered reason);  // "timeout", "refused", ...
Unanswered UnansweredOf(const Status& why);

struct RemoteLookStats {
  uint64_t round_trips = 0;  // queries sent (one per member per level)
  uint64_t questions = 0;    // questions they carried
  uint64_t failed = 0;       // member queries without (every) answer: the sum of `unanswered`
  std::array<uint64_t, kUnansweredReasons> unanswered{};  // by Unanswered
};

class RemoteDirectory final : public Directory {
 public:
  // `local` answers for this node (LocalDirectory semantics: live listeners,
  // loopback); `members` are the others (this node's entry is skipped).
  // Each member has `hop_timeout_ns` to answer, and nothing is sent after
  // `deadline_ns` (MonotonicNs).
  RemoteDirectory(LocalDirectory& local, std::vector<LookMember> members, QueryScatter scatter,
                  int64_t hop_timeout_ns, int64_t deadline_ns);

  // A listener first (this node's, then an exact one, then a wildcard one);
  // else the member whose NAT translates `endpoint` (its alias).
  std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& endpoint) override;
  std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) override;
  // Local questions here, remote ones in one query per member, all members
  // at once.
  std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& questions,
                              const TimeWindow& w) override;
  std::string Unsynced() const override;
  std::vector<Endpoint> FrontsOf(const Endpoint& target) override;
  std::optional<ProcessDetails> TableOwner(const Endpoint& endpoint) override;
  const RemoteLookStats& stats() const { return stats_; }

 private:
  NodeRef Ref(const LookMember& m) const { return NodeRef{m.name, nullptr}; }
  // The member a question is for; null when this node answers it.
  const LookMember* RemoteOf(const LookQuestion& q) const;
  const LookMember* AliasOwner(const Endpoint& front) const;
  // The member whose table has a listener on `endpoint` (an exact one over a
  // wildcard on a member with the address) and its index there.
  std::optional<std::pair<const LookMember*, size_t>> Listener(const Endpoint& endpoint) const;

  LocalDirectory& local_;
  std::vector<LookMember> members_;  // live first
  std::map<std::string, const LookMember*> by_name_;
  QueryScatter scatter_;
  int64_t hop_timeout_ns_;
  int64_t deadline_ns_;
  RemoteLookStats stats_;
};

}  // namespace flowmesh
