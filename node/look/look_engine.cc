// The look walk: level by level from the root, clients upward and
// dependencies downward, one batch of questions per level, with a visited set.
#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <utility>

#include "node/look/look.h"

namespace flowmesh {
namespace {

// One client address still to be asked about: who there connected to
// which of our endpoints.
struct UpEdge {
  IpAddr ip;
  FlowStats stats;
  std::vector<Endpoint> targets;
};

// The tree is built in an arena (children by index) so growing one level
// never invalidates what the next level points at.
struct Vertex {
  LookNode node;  // children left empty; see Materialize
  int parent = -1;
  std::string group;  // GroupKey of its process; "" = none
  std::vector<int> clients, dependencies;
  NodeRef where;                     // the node that answers for it
  std::vector<UpEdge> up;            // what to ask next, upward
  std::vector<DependencyEdge> down;  // ... and downward
};

// A child as an answer made it, before it is placed and checked.
struct Candidate {
  LookNode node;
  NodeRef where;
  std::vector<UpEdge> up;
  std::vector<DependencyEdge> down;
};

// One tree node per group of a host's processes, as the nodes group them.
std::string GroupKey(const std::string& host, const ProcessDetails& p, GroupBy g) {
  return host + "|" + ProcessGroupKey(p, g);
}

std::string QuestionKey(const LookQuestion& q) {
  const char* kind = q.kind == LookQuestion::Kind::kDescribe  ? "D|"
                     : q.kind == LookQuestion::Kind::kClients ? "C|"
                                                              : "A|";
  return kind + q.node.name + "|" + q.endpoint.ToString() + "|" + q.from.ToString();
}

bool ByWeightThenAddress(const Candidate& a, const Candidate& b) {
  uint64_t ca = a.node.stats ? a.node.stats->active() : 0;
  uint64_t cb = b.node.stats ? b.node.stats->active() : 0;
  if (ca != cb) return ca > cb;
  uint32_t pa = a.node.process ? a.node.process->pid : 0;
  uint32_t pb = b.node.process ? b.node.process->pid : 0;
  return std::tie(a.node.addr, a.node.port, a.node.host, pa) <
         std::tie(b.node.addr, b.node.port, b.node.host, pb);
}

// An address no node claims: no agent's, unless a live member's table is
// still on its way (then it may well be that member's).
void Unowned(const Directory& dir, LookNode& n) {
  std::string pending = dir.Unsynced();
  if (pending.empty()) {
    n.status = LookStatus::kNoAgent;
    return;
  }
  n.status = LookStatus::kUnsynced;
  n.status_detail = "no endpoint table yet from " + pending + ", which may own it";
}

std::optional<ProcessDetails> Known(const ProcessDetails& p) {
  if (p.pid == 0) return std::nullopt;  // the "unknown process" of unattributed flows
  return p;
}

// A node that did not answer; an endpoint of it shows the owner its
// gossiped table announced (the unit or container named even so).
void Unreachable(const LookAnswer& a, LookNode& n, Directory* dir = nullptr) {
  n.status = LookStatus::kUnreachable;
  n.status_detail = a.status.message().empty() ? "no answer" : a.status.message();
  if (dir == nullptr || n.port == 0 || n.process) return;
  if (std::optional<ProcessDetails> p = dir->TableOwner({n.addr, n.port})) n.process = Known(*p);
}

std::string TargetsText(const std::vector<Endpoint>& targets) {
  std::string out;
  for (const Endpoint& t : targets) out += (out.empty() ? "" : ", ") + t.ToString();
  return out;
}

// The next upward questions of a client process: each client address of its
// endpoints. A wildcard endpoint is reached at the address the process itself
// was seen with (`self`), an address of the same node.
std::vector<UpEdge> UpEdgesOf(const std::vector<ClientEdge>& clients,
                              const std::vector<Endpoint>& endpoints, const IpAddr& self) {
  auto concrete = [&](Endpoint e) {
    if (e.addr.is_unspecified()) e.addr = self;
    return e;
  };
  std::map<IpAddr, UpEdge> by_ip;
  for (const ClientEdge& c : clients) {
    UpEdge& u = by_ip[c.addr];
    u.ip = c.addr;
    u.stats.Merge(c.stats);
    std::vector<Endpoint> targets;
    if (c.endpoint.port != 0) {
      targets.push_back(concrete(c.endpoint));
    } else {
      for (const Endpoint& e : endpoints) targets.push_back(concrete(e));
    }
    for (const Endpoint& t : targets)
      if (std::find(u.targets.begin(), u.targets.end(), t) == u.targets.end())
        u.targets.push_back(t);
  }
  std::vector<UpEdge> out;
  for (auto& [ip, u] : by_ip) out.push_back(std::move(u));
  return out;
}

class Walker {
 public:
  Walker(const LookQuery& query, Directory& directory) : query_(query), dir_(directory) {}

  LookResult Run();

 private:
  // A pending child of `parent`: the questions whose answers make it.
  struct Slot {
    int parent = 0;
    bool client = false;
    NodeRef owner;
    UpEdge up;            // client slots
    DependencyEdge down;  // dependency slots
    std::vector<size_t> questions;
    // Client slots: what each question asked about (the parent's endpoint,
    // or a front a NAT translated to it), and the parent's endpoint.
    std::vector<Endpoint> asked;
    Endpoint parent_endpoint;
  };

  std::optional<NodeRef> Owner(const IpAddr& addr, const Endpoint* endpoint, const NodeRef& here);
  // The targets and the balancer fronts that reach them: a client whose
  // connection a balancer translated without masquerade dialled the front.
  std::vector<Endpoint> WithFronts(const std::vector<Endpoint>& targets);
  size_t Enqueue(LookQuestion q);
  void AskPending();
  void Describe(Vertex& root);
  // `look <ip>`: the root is the host, its children the processes there
  // that connected anywhere; returns them as the first frontier.
  std::vector<int> DescribeHost();
  std::vector<Candidate> ChildrenOf(const Slot& s);
  // Places one level's children and returns the next frontier.
  std::vector<int> Place(std::vector<std::vector<Candidate>>& clients,
                         std::vector<std::vector<Candidate>>& deps,
                         const std::vector<int>& frontier, int level);
  LookNode Materialize(int index);

  const LookQuery& query_;
  Directory& dir_;
  std::vector<Vertex> arena_;
  // A process already on the path from the root: the walk went round.
  bool OnPath(int parent, const std::string& group) const;
  // Every answer of the walk, so a question is asked at most once.
  std::map<std::string, LookAnswer> answers_;
  std::vector<LookQuestion> pending_;
  std::vector<std::string> pending_keys_;
  std::vector<std::string> slot_keys_;  // question index -> key
};

std::optional<NodeRef> Walker::Owner(const IpAddr& addr, const Endpoint* endpoint,
                                     const NodeRef& here) {
  // Loopback never leaves the host: the node asking is the node that owns it.
  if (addr.is_loopback() && !here.name.empty()) return here;
  if (endpoint != nullptr) {
    if (auto n = dir_.OwnerOfEndpoint(*endpoint)) return n;
  }
  // An agent that has the address but no listener known in its table can
  // still say what it knows (historical flows), which beats `no-agent`.
  return dir_.OwnerOfAddress(addr);
}

std::vector<Endpoint> Walker::WithFronts(const std::vector<Endpoint>& targets) {
  std::vector<Endpoint> out = targets;
  for (const Endpoint& t : targets)
    for (const Endpoint& f : dir_.FrontsOf(t))
      if (std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  return out;
}

size_t Walker::Enqueue(LookQuestion q) {
  q.group_by = query_.group_by;
  std::string key = QuestionKey(q);
  if (!answers_.count(key) &&
      std::find(pending_keys_.begin(), pending_keys_.end(), key) == pending_keys_.end()) {
    pending_.push_back(std::move(q));
    pending_keys_.push_back(key);
  }
  slot_keys_.push_back(std::move(key));
  return slot_keys_.size() - 1;
}

void Walker::AskPending() {
  if (pending_.empty()) return;
  std::vector<LookAnswer> got = dir_.Ask(pending_, query_.window);
  for (size_t i = 0; i < pending_.size(); i++) {
    LookAnswer& a = answers_[pending_keys_[i]];
    if (i < got.size()) {
      a = std::move(got[i]);
    } else {
      a = LookAnswer();
      a.status = Internal("no answer");
    }
  }
  pending_.clear();
  pending_keys_.clear();
}

void Walker::Describe(Vertex& root) {
  const Endpoint& target = query_.target;
  std::optional<NodeRef> owner = Owner(target.addr, &target, NodeRef{});
  if (!owner) {
    Unowned(dir_, root.node);
    return;
  }
  root.node.host = owner->name;
  root.where = *owner;
  size_t qi = Enqueue({LookQuestion::Kind::kDescribe, *owner, target, {}});
  AskPending();
  const LookAnswer& a = answers_[slot_keys_[qi]];
  if (!a.status.ok()) {
    Unreachable(a, root.node, &dir_);
    return;
  }
  const EndpointDescription& d = a.description;
  if (!d.found) return;
  Endpoint served = target;
  if (d.listener.port != 0) {
    // A published port: the root is the listener it reaches, dialled as asked.
    served = d.listener;
    root.node.addr = served.addr;
    root.node.port = served.port;
    root.node.via = target;
  }
  root.node.process = Known(d.process);
  root.node.balancer = d.balancer;
  root.node.aliases = d.aliases;
  if (root.node.process)
    root.group = GroupKey(root.where.name, *root.node.process, query_.group_by);
  if (query_.direction != LookDirection::kOut)
    root.up = UpEdgesOf(d.clients, {served}, served.addr);
  if (query_.direction != LookDirection::kIn) root.down = d.dependencies;
}

std::vector<int> Walker::DescribeHost() {
  const IpAddr& host = query_.target.addr;
  std::optional<NodeRef> owner = Owner(host, nullptr, NodeRef{});
  if (!owner) {
    Unowned(dir_, arena_[0].node);
    return {};
  }
  arena_[0].node.host = owner->name;
  arena_[0].where = *owner;
  size_t qi = Enqueue({LookQuestion::Kind::kActive, *owner, {}, host});
  AskPending();
  const LookAnswer& a = answers_[slot_keys_[qi]];
  if (!a.status.ok()) {
    Unreachable(a, arena_[0].node);
    return {};
  }
  std::vector<Candidate> procs;
  for (const ActiveProcess& p : a.active) {
    Candidate c;
    c.node.host = owner->name;
    c.node.addr = host;
    c.node.process = Known(p.process);
    c.node.stats = p.stats;
    c.where = *owner;
    if (query_.direction != LookDirection::kIn) c.down = p.dependencies;
    procs.push_back(std::move(c));
  }
  // The processes are not a hop: they are placed at level 0, so --depth
  // counts the hops from them as it does from an endpoint's process.
  std::vector<std::vector<Candidate>> none(1), deps(1);
  deps[0] = std::move(procs);
  return Place(none, deps, {0}, 0);
}

std::vector<Candidate> Walker::ChildrenOf(const Slot& s) {
  std::vector<Candidate> out;
  if (s.client) {
    // One child per client process (group); answers for several targets merge.
    std::map<std::string, Candidate> by_group;
    std::vector<std::string> order;
    const LookAnswer* failed = nullptr;
    for (size_t i = 0; i < s.questions.size(); i++) {
      const LookAnswer& a = answers_[slot_keys_[s.questions[i]]];
      if (!a.status.ok()) {
        failed = &a;
        continue;
      }
      // The client dialled a front that a NAT (the server's, a balancer's)
      // sent to the parent: the edge is via that front.
      const Endpoint dialled = s.asked[i];
      const bool through_front = s.parent_endpoint.port != 0 && dialled != s.parent_endpoint;
      for (const ClientProcess& cp : a.clients) {
        const Endpoint via = cp.via.port != 0 ? cp.via : through_front ? dialled : Endpoint{};
        // A balancer's forwarded connections are one node per front: they
        // came from the balancer's address, dialled as its front.
        const Endpoint front = cp.endpoints.empty() ? Endpoint{s.up.ip, 0} : cp.endpoints[0];
        // Connections that went through a VIP are apart from direct ones.
        std::string key = cp.balancer ? s.owner.name + "|b" + front.ToString()
                                      : GroupKey(s.owner.name, cp.process, query_.group_by) + "|v" +
                                            (via.port ? via.ToString() : "");
        auto [it, inserted] = by_group.try_emplace(key);
        Candidate& c = it->second;
        if (inserted) {
          order.push_back(key);
          c.node.host = s.owner.name;
          c.node.addr = s.up.ip;
          if (cp.balancer) {
            c.node.addr = front.addr;
            c.node.port = front.port;
            c.node.balancer = true;
          } else {
            c.node.process = Known(cp.process);
          }
          if (!cp.balancer) c.node.via = via;
          c.node.stats = FlowStats{};
          c.where = s.owner;
        }
        c.node.stats->Merge(cp.stats);
        std::vector<UpEdge> more = UpEdgesOf(cp.clients, cp.endpoints, s.up.ip);
        c.up.insert(c.up.end(), more.begin(), more.end());
      }
    }
    for (const std::string& k : order) out.push_back(std::move(by_group[k]));
    // A client is never dropped: a host that did not answer for some target
    // (unreachable), or answered but has no process with a matching flow
    // (unconfirmed), stays as a host leaf with the server side's counts.
    if (out.empty() || failed != nullptr) {
      Candidate leaf;
      leaf.node.host = s.owner.name;
      leaf.node.addr = s.up.ip;
      leaf.node.stats = s.up.stats;
      if (failed != nullptr) {
        Unreachable(*failed, leaf.node);
      } else {
        leaf.node.status = LookStatus::kUnconfirmed;
        leaf.node.status_detail = "meshd on " + s.owner.name + " has no process with a flow to " +
                                  TargetsText(s.up.targets) + " in the window";
      }
      out.push_back(std::move(leaf));
    }
    return out;
  }
  Candidate c;
  c.node.host = s.owner.name;
  c.node.addr = s.down.remote.addr;
  c.node.port = s.down.remote.port;
  c.node.via = s.down.via;
  c.node.stats = s.down.stats;
  c.where = s.owner;
  const LookAnswer& a = answers_[slot_keys_[s.questions.at(0)]];
  if (!a.status.ok()) {
    Unreachable(a, c.node, &dir_);
  } else if (a.description.found) {
    const EndpointDescription& d = a.description;
    if (d.listener.port != 0) {
      // Dialled a published port: the node is the listener behind it.
      if (c.node.via.port == 0) c.node.via = s.down.remote;
      c.node.addr = d.listener.addr;
      c.node.port = d.listener.port;
    }
    c.node.process = Known(d.process);
    c.node.balancer = d.balancer;
    c.node.aliases = d.aliases;
    c.down = d.dependencies;
  } else {
    // The parent's flows say it was called; the owner has neither a listener
    // nor a flow there (yet: a loaded meshd reads its events late). Marked,
    // so a missing subtree is never mistaken for a leaf.
    c.node.status = LookStatus::kUnconfirmed;
    c.node.status_detail = "meshd on " + s.owner.name + " has no listener or flow at " +
                           s.down.remote.ToString() + " in the window";
  }
  out.push_back(std::move(c));
  return out;
}

std::vector<int> Walker::Place(std::vector<std::vector<Candidate>>& clients,
                               std::vector<std::vector<Candidate>>& deps,
                               const std::vector<int>& frontier, int level) {
  std::vector<int> next;
  for (size_t f = 0; f < frontier.size(); f++) {
    for (bool client : {true, false}) {
      std::vector<Candidate>& kids = client ? clients[f] : deps[f];
      std::stable_sort(kids.begin(), kids.end(), ByWeightThenAddress);
      for (Candidate& c : kids) {
        Vertex v;
        v.node = std::move(c.node);
        v.where = c.where;
        bool more = client ? !c.up.empty() : !c.down.empty();
        v.parent = frontier[f];
        if (v.node.process) v.group = GroupKey(v.where.name, *v.node.process, query_.group_by);
        // Only a repeat on its own path is a cycle: a process that two
        // branches share (both apps use one redis) shows under each; its
        // questions were asked once and their answers are reused.
        if (!v.group.empty() && OnPath(v.parent, v.group)) {
          v.node.status = LookStatus::kCycle;
        } else if (more && level >= query_.depth) {
          v.node.status = LookStatus::kDepthLimit;
        } else if (more) {
          v.up = std::move(c.up);
          v.down = std::move(c.down);
          next.push_back(static_cast<int>(arena_.size()));
        }
        int index = static_cast<int>(arena_.size());
        arena_.push_back(std::move(v));
        Vertex& parent = arena_[frontier[f]];
        (client ? parent.clients : parent.dependencies).push_back(index);
      }
    }
  }
  return next;
}

LookResult Walker::Run() {
  LookResult result;
  result.query = query_;
  arena_.emplace_back();
  arena_[0].node.addr = query_.target.addr;
  arena_[0].node.port = query_.target.port;
  std::vector<int> frontier;
  if (query_.target.port == 0) {
    frontier = DescribeHost();
  } else {
    Describe(arena_[0]);
  }
  if (query_.target.port != 0 && (!arena_[0].up.empty() || !arena_[0].down.empty())) {
    if (query_.depth <= 0) {
      arena_[0].node.status = LookStatus::kDepthLimit;
    } else {
      frontier.push_back(0);
    }
  }
  for (int level = 1; !frontier.empty(); level++) {
    // Every question of the level first, then one batch of asking.
    std::vector<Slot> slots;
    std::vector<std::vector<Candidate>> clients(frontier.size()), deps(frontier.size());
    for (size_t f = 0; f < frontier.size(); f++) {
      const Vertex& p = arena_[frontier[f]];
      for (const UpEdge& u : p.up) {
        std::optional<NodeRef> owner = Owner(u.ip, nullptr, p.where);
        if (!owner) {
          Candidate leaf;
          leaf.node.addr = u.ip;
          Unowned(dir_, leaf.node);
          leaf.node.stats = u.stats;
          clients[f].push_back(std::move(leaf));
          continue;
        }
        Slot s{static_cast<int>(f), true, *owner, u, {}, {}, {}, {p.node.addr, p.node.port}};
        for (const Endpoint& t : WithFronts(u.targets)) {
          s.questions.push_back(Enqueue({LookQuestion::Kind::kClients, *owner, t, u.ip}));
          s.asked.push_back(t);
        }
        slots.push_back(std::move(s));
      }
      for (const DependencyEdge& d : p.down) {
        std::optional<NodeRef> owner = Owner(d.remote.addr, &d.remote, p.where);
        if (!owner) {
          Candidate leaf;
          leaf.node.addr = d.remote.addr;
          leaf.node.port = d.remote.port;
          Unowned(dir_, leaf.node);
          leaf.node.stats = d.stats;
          deps[f].push_back(std::move(leaf));
          continue;
        }
        Slot s{static_cast<int>(f), false, *owner, {}, d, {}};
        s.questions.push_back(Enqueue({LookQuestion::Kind::kDescribe, *owner, d.remote, {}}));
        slots.push_back(std::move(s));
      }
    }
    AskPending();
    for (const Slot& s : slots) {
      std::vector<Candidate> made = ChildrenOf(s);
      auto& into = s.client ? clients[s.parent] : deps[s.parent];
      for (Candidate& c : made) into.push_back(std::move(c));
    }
    frontier = Place(clients, deps, frontier, level);
  }
  result.root = Materialize(0);
  return result;
}

bool Walker::OnPath(int parent, const std::string& group) const {
  for (int i = parent; i >= 0; i = arena_[i].parent)
    if (arena_[i].group == group) return true;
  return false;
}

LookNode Walker::Materialize(int index) {
  LookNode n = std::move(arena_[index].node);
  for (int c : arena_[index].clients) n.clients.push_back(Materialize(c));
  for (int d : arena_[index].dependencies) n.dependencies.push_back(Materialize(d));
  return n;
}

}  // namespace

LookResult Look(const LookQuery& query, Directory& directory) {
  return Walker(query, directory).Run();
}

}  // namespace flowmesh
