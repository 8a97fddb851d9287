// `look`: the dependency tree around one endpoint. The engine walks it by
// asking the node that owns each address two questions (Describe, Clients);
// Directory says which node owns what and asks each level's questions.
// LocalDirectory answers from this node's store; RemoteDirectory
// (remote_directory.h) asks the mesh's members too, with the same engine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/flow/flow.h"
#include "node/look/look_types.h"
#include "node/store/store.h"

namespace flowmesh {

// ---- What one node answers (look_wire.h carries them between nodes) ----

// A client address that connected to an endpoint, summed over its connections.
struct ClientEdge {
  IpAddr addr;
  FlowStats stats;
  // What the client dialled: one of the process's endpoints (the concrete
  // address, also behind a wildcard listener), or the front a NAT
  // translated to it (a published port, a balancer's VIP), so the client's
  // own flow matches. Port 0 = not said, and the walk then asks about each
  // of ClientProcess.endpoints.
  Endpoint endpoint;
};

// An endpoint this process (group) connected to.
struct DependencyEdge {
  Endpoint remote;  // where the connections really went
  FlowStats stats;
  // What the process dialled when a NAT on its own node translated it to
  // `remote` (a kube-proxy Service VIP); port 0 = not translated.
  Endpoint via;
};

// "Describe your endpoint ip:port": the process listening there (a wildcard
// listener matches), who connected to it (by client address) and what that
// server node (its pgid group) connected to, in the window.
//
// A front this node's NAT translates resolves to what is behind it:
// - a published port (docker -p): the listener it reaches is described,
//   `listener` says which, and `aliases` lists the fronts;
// - a balancer's front (VIP:port): `balancer`, no process, `dependencies`
//   are the backends and `clients` the real clients (what they dialled).
struct EndpointDescription {
  bool found = false;  // false: nothing listens there (any more)
  Endpoint endpoint;   // as asked
  Endpoint listener;   // the listener a published port reached; port 0 = `endpoint` itself
  bool balancer = false;
  std::vector<Endpoint> aliases;  // published ports that reach this listener
  ProcessDetails process;
  std::vector<ClientEdge> clients;
  std::vector<DependencyEdge> dependencies;
};

// "Which of your processes connected to ip:port (from address `from`)":
// each such process (group) with its flow to the target, and that process's
// own clients and listening endpoints, so the upward walk continues without a
// second round trip to the same node.
//
// On a balancer, the connections it forwarded to the target (a backend)
// from `from` (its own, masqueraded, address) come back as one
// `balancer` entry: no process, `endpoints` its front, `clients` the real
// clients, so the walk goes on to them.
struct ClientProcess {
  ProcessDetails process;
  bool balancer = false;
  Endpoint via;                     // the process dialled this and its node's NAT sent it to the target
  FlowStats stats;                  // its connections to the target
  std::vector<Endpoint> endpoints;  // where it listens
  std::vector<ClientEdge> clients;  // who connected to those endpoints
};

// "Which of your processes, seen at address `host`, connected anywhere":
// Shawk's active-side query, the start of `look <ip>` (no port). Each process
// (group) with the endpoints it connected to.
struct ActiveProcess {
  ProcessDetails process;
  FlowStats stats;  // all its connections in the window
  std::vector<DependencyEdge> dependencies;
};

// "Your part of the map" (LocalQuerier::Map, map_local.cc): each process
// group (by the map's grouping) with where it listened, who connected to it
// and where it connected, and each balancer front this node forwarded, with
// its clients and backends. The asking node merges every member's into one
// graph (map_merge.h).
struct MapEntry {
  ProcessDetails process;  // a balancer: none
  bool balancer = false;
  // The answering meshd itself (its mesh port, its page): the map draws it
  // only when something called it, not as a workload on every host.
  bool agent = false;
  FlowStats stats;                  // all its connections in the window, in and out
  std::vector<Endpoint> endpoints;  // where it listened in the window; a balancer: its front
  std::vector<ClientEdge> clients;  // who connected to those endpoints
  std::vector<DependencyEdge> dependencies;  // where it connected; a balancer: its backends
};
struct MemberMap {
  std::vector<MapEntry> entries;
  bool truncated = false;  // more than an answer may carry (kMaxMapEntries, kMaxMemberMapEdges)
};

class NodeQuerier {
 public:
  virtual ~NodeQuerier() = default;
  // `group_by` says which processes are one (a ClientProcess, an
  // ActiveProcess, the group whose dependencies a description lists).
  virtual Result<EndpointDescription> Describe(const Endpoint& endpoint, const TimeWindow& w,
                                               GroupBy group_by) = 0;
  virtual Result<std::vector<ClientProcess>> Clients(const Endpoint& target, const IpAddr& from,
                                                     const TimeWindow& w, GroupBy group_by) = 0;
  virtual Result<std::vector<ActiveProcess>> Active(const IpAddr& host, const TimeWindow& w,
                                                    GroupBy group_by) = 0;
};

struct NodeRef {
  std::string name;  // "" = no node
  // Answers this node's questions here; null for a node asked over the
  // network (its Directory knows it by name).
  NodeQuerier* querier = nullptr;  // owned by the Directory
};

// One question of a level of the walk, and its answer.
struct LookQuestion {
  enum class Kind : uint8_t { kDescribe, kClients, kActive };
  Kind kind = Kind::kDescribe;
  NodeRef node;
  Endpoint endpoint;  // Describe: the endpoint; Clients: the target
  IpAddr from;        // Clients: the client address; Active: the host's address
  GroupBy group_by = GroupBy::kWorkload;  // the walk's (LookQuery::group_by)
};
struct LookAnswer {
  Status status;                       // not ok: the node did not answer (an `unreachable` leaf)
  EndpointDescription description;     // kDescribe
  std::vector<ClientProcess> clients;  // kClients
  std::vector<ActiveProcess> active;   // kActive
};

class Directory {
 public:
  virtual ~Directory() = default;
  // The node listening on this endpoint (a wildcard listener matches any of
  // its owner's addresses); nullopt = no agent knows it.
  virtual std::optional<NodeRef> OwnerOfEndpoint(const Endpoint& endpoint) = 0;
  // The node that has this address; nullopt = no agent.
  virtual std::optional<NodeRef> OwnerOfAddress(const IpAddr& addr) = 0;
  // Asks one level's questions (their nodes are this directory's NodeRefs);
  // returns one answer per question, in order.
  virtual std::vector<LookAnswer> Ask(const std::vector<LookQuestion>& questions,
                                      const TimeWindow& w) = 0;
  // Why an address no node claims may still be a member's: the live members
  // whose tables have not arrived yet ("" = every table is in, so it is no
  // agent's). Such an address is `unsynced`, never `no-agent`.
  virtual std::string Unsynced() const { return ""; }
  // The balancer fronts whose backends include `target` (from the gossiped
  // aliases): a client whose connection a balancer translated without
  // masquerade dialled one of these, not the target.
  virtual std::vector<Endpoint> FrontsOf(const Endpoint& /*target*/) { return {}; }
  // Who listens on `endpoint` as the owner's gossiped table says (pid, pgid,
  // comm, exe, workload): what an `unreachable` leaf shows, since the node
  // itself did not answer. nullopt = no table says.
  virtual std::optional<ProcessDetails> TableOwner(const Endpoint& /*endpoint*/) {
    return std::nullopt;
  }
};

// One question answered by the querier it names: how a node answers the
// questions asked of it.
LookAnswer AskOne(const LookQuestion& q, const TimeWindow& w);
// AskOne, unless the deadline (MonotonicNs; 0 = none) has passed.
LookAnswer AskBefore(const LookQuestion& q, const TimeWindow& w, int64_t deadline_ns);

// Walks the tree: clients upward, dependencies downward, to query.depth, with
// a visited set (cycle leaves), asking the directory one batch of questions
// per level. A node's error makes an `unreachable` leaf; the rest of the tree
// still comes back.
LookResult Look(const LookQuery& query, Directory& directory);

}  // namespace flowmesh
