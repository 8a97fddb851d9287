// MergeMap: the members' parts of the map into one graph, edges resolved to
// their owners as the mesh-wide look resolves them (remote_directory.cc).
#include "node/look/map_merge.h"

#include <algorithm>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "node/look/map_claims.h"
#include "node/proc/workload.h"

namespace flowmesh {
namespace {

using EdgeKey = std::tuple<std::string, std::string, Endpoint>;  // from, to, endpoint

class Merger {
 public:
  Merger(const std::vector<LookMember>& members, GroupBy group_by)
      : members_(members), group_by_(group_by) {
    // An address a live member has now is its, whatever a gone one had.
    // Several members share addresses (docker0's 172.17.0.1, a first
    // container's 172.17.0.2, virbr0, VIPs): ties among them break by name,
    // not by the membership list, which differs per host, so every asker
    // draws the same graph.
    for (const LookMember& m : members_) order_.push_back(&m);
    SortOrder();
    for (const LookMember* m : order_) {
      by_name_.emplace(m->name, m);
      if (m->live && !m->synced) unsynced_.push_back(m->name);
    }
    claims_.AddMembers(order_);
  }

  void Add(const MemberAnswer& a) {
    if (!by_name_.count(a.member)) {
      // Asked although the mesh no longer lists it (or no mesh: this node).
      extra_.push_back(LookMember{.name = a.member});
      by_name_[a.member] = &extra_.back();
      order_.push_back(&extra_.back());
    }
    if (!answers_.emplace(a.member, &a).second) return;  // a repeat: read once
  }

  MapGraph Run(TimeWindow window) {
    SortOrder();  // members only answers named join in the answers' order
    for (const LookMember* m : order_) {
      auto it = answers_.find(m->name);
      if (it != answers_.end() && it->second->map.ok())
        AddAnswered(*m, *it->second->map);
      else
        AddUnanswered(*m, Why(*m));
    }
    for (const LookMember* m : order_)
      if (const MemberMap* map = Answered(m->name)) AddDependencies(*m, *map);
    for (const LookMember* m : order_)
      if (const MemberMap* map = Answered(m->name)) AddClients(*m, *map);

    // A member's meshd is drawn only when something called it (its page).
    std::set<std::string> called;
    for (const auto& [key, e] : edges_) called.insert(e.to);
    MapGraph g;
    g.window = window;
    for (auto& [id, n] : nodes_)
      if (!agents_.contains(id) || called.contains(id)) g.nodes.push_back(std::move(n));
    for (auto& [key, e] : edges_) g.edges.push_back(std::move(e));
    for (const LookMember* m : order_) g.members.push_back(Member(*m));
    std::sort(g.members.begin(), g.members.end(),
              [](const MapMember& a, const MapMember& b) { return a.name < b.name; });
    return g;
  }

 private:
  void SortOrder() {
    std::stable_sort(order_.begin(), order_.end(), [](const LookMember* a, const LookMember* b) {
      return std::make_pair(!a->live, a->name) < std::make_pair(!b->live, b->name);
    });
  }

  const MemberMap* Answered(const std::string& name) const {
    auto it = answers_.find(name);
    return it != answers_.end() && it->second->map.ok() ? &*it->second->map : nullptr;
  }

  std::string Why(const LookMember& m) const {
    auto it = answers_.find(m.name);
    if (it == answers_.end()) return m.state.empty() ? "not asked" : m.state + ": not asked";
    return it->second->map.status().message();
  }

  MapMember Member(const LookMember& m) const {
    MapMember out;
    out.name = m.name;
    out.address = m.address;
    out.state = m.state;
    auto it = answers_.find(m.name);
    if (it == answers_.end()) {
      out.error = Why(m);
      return out;
    }
    const MemberAnswer& a = *it->second;
    out.answered = a.map.ok();
    if (!a.map.ok()) out.error = a.map.status().message();
    out.answer_bytes = a.bytes;
    out.latency_ns = a.latency_ns;
    out.truncated = a.map.ok() && a.map->truncated;
    if (!a.unread.empty()) out.error = a.unread;
    return out;
  }

  MapNode& Node(const std::string& id, MapNodeKind kind, const std::string& host) {
    auto [it, added] = nodes_.try_emplace(id);
    if (added) {
      it->second.id = id;
      it->second.kind = kind;
      it->second.host = host;
    }
    return it->second;
  }

  static void AddEndpoint(MapNode& n, const Endpoint& e) {
    auto at = std::lower_bound(n.endpoints.begin(), n.endpoints.end(), e);
    if (at == n.endpoints.end() || *at != e) n.endpoints.insert(at, e);
  }

  std::string WorkloadId(const LookMember& m, const ProcessDetails& p) const {
    return m.name + "/" + ProcessGroupKey(p, group_by_);
  }
  static std::string BalancerId(const LookMember& m, const Endpoint& front) {
    return m.name + "/lb:" + front.ToString();
  }

  void AddAnswered(const LookMember& m, const MemberMap& map) {
    for (const MapEntry& e : map.entries) {
      if (e.balancer) {
        for (const Endpoint& front : e.endpoints) {
          MapNode& n = Node(BalancerId(m, front), MapNodeKind::kBalancer, m.name);
          n.label = "balancer " + front.ToString();
          AddEndpoint(n, front);
          claims_.AddFront(m, front, n.id);
          for (const DependencyEdge& d : e.dependencies) fronts_of_backend_[d.remote].insert(front);
          for (const ClientEdge& c : e.clients) balanced_clients_.emplace(n.id, c.addr);
        }
        continue;
      }
      MapNode& n = Node(WorkloadId(m, e.process), MapNodeKind::kWorkload, m.name);
      if (!n.process) {
        n.process = e.process;
        n.label = MapLabel(e.process, group_by_);
      }
      if (e.agent) agents_.insert(n.id);
      for (const Endpoint& at : e.endpoints) {
        AddEndpoint(n, at);
        claims_.AddListener(m, at, n.id);
      }
    }
    // Published ports reach a listener of this member; balancer fronts
    // without an entry (no traffic and no live alias at answer time) stay
    // the gossiped table's.
    AddAliases(m, LookStatus::kOk, "");
  }

  void AddUnanswered(const LookMember& m, const std::string& why) {
    const std::string detail = "no answer from " + m.name + ": " + why;
    for (size_t i = 0; i < m.endpoints.size(); i++) {
      const bool owned =
          i < m.owners.size() && (m.owners[i].pid != 0 || !m.owners[i].workload.empty());
      MapNode& n = owned ? Node(WorkloadId(m, m.owners[i]), MapNodeKind::kWorkload, m.name)
                         : UnreachableNode(m, why);
      if (owned && !n.process) {
        n.process = m.owners[i];
        n.label = MapLabel(m.owners[i], group_by_);
      }
      n.status = LookStatus::kUnreachable;
      n.status_detail = detail;
      AddEndpoint(n, m.endpoints[i]);
      claims_.AddListener(m, m.endpoints[i], n.id);
    }
    AddAliases(m, LookStatus::kUnreachable, detail);
  }

  void AddAliases(const LookMember& m, LookStatus status, const std::string& detail) {
    for (const MemberAlias& a : m.aliases) {
      if (!a.balancer) {
        claims_.AddPublished(m, a.front, a.target);
        continue;
      }
      fronts_of_backend_[a.target].insert(a.front);
      if (status == LookStatus::kOk) continue;  // an answered balancer's entries say
      MapNode& n = Node(BalancerId(m, a.front), MapNodeKind::kBalancer, m.name);
      n.label = "balancer " + a.front.ToString();
      n.status = status;
      n.status_detail = detail;
      AddEndpoint(n, a.front);
      claims_.AddFront(m, a.front, n.id);
    }
  }

  MapNode& UnreachableNode(const LookMember& m, const std::string& why) {
    MapNode& n = Node(m.name + "/unreachable", MapNodeKind::kWorkload, m.name);
    n.label = m.name + " (unreachable)";
    n.status = LookStatus::kUnreachable;
    n.status_detail = "no answer from " + m.name + ": " + why;
    return n;
  }

  // The node a dependency's endpoint belongs to (MapClaims::Claimed), else
  // an external node.
  std::string Owner(const LookMember& reporter, const Endpoint& e) {
    if (std::optional<std::string> id = claims_.Claimed(reporter, e)) return *id;
    return External("ext:" + e.ToString(), e);
  }

  std::string External(const std::string& id, const Endpoint& e) {
    MapNode& n = Node(id, MapNodeKind::kExternal, "");
    n.label = e.port == 0 ? e.addr.ToString() : e.ToString();
    AddEndpoint(n, e);
    if (const LookMember* owner = claims_.AnyMemberOf(e.addr)) {
      // The host is in the mesh; what is missing is a listener.
      n.status = LookStatus::kNoAgent;
      n.status_detail = "member " + owner->name + " has this address but nothing there " +
                        "listened on port " + std::to_string(e.port) + " in the window";
    } else if (unsynced_.empty()) {
      n.status = LookStatus::kNoAgent;
      n.status_detail = "no member has this address";
    } else {
      n.status = LookStatus::kUnsynced;
      n.status_detail =
          "no table claims it yet; not in: member " + unsynced_.front() +
          (unsynced_.size() > 1 ? " and " + std::to_string(unsynced_.size() - 1) + " more" : "");
    }
    return id;
  }

  MapEdge& Edge(const std::string& from, const std::string& to, const Endpoint& at) {
    auto [it, added] = edges_.try_emplace(EdgeKey{from, to, at});
    if (added) {
      it->second.from = from;
      it->second.to = to;
      it->second.endpoint = at;
    }
    return it->second;
  }

  std::string EntryNode(const LookMember& m, const MapEntry& e) const {
    return e.balancer ? (e.endpoints.empty() ? "" : BalancerId(m, e.endpoints.front()))
                      : WorkloadId(m, e.process);
  }

  void AddDependencies(const LookMember& m, const MemberMap& map) {
    for (const MapEntry& e : map.entries) {
      const std::string from = EntryNode(m, e);
      if (from.empty()) continue;
      for (const DependencyEdge& d : e.dependencies) {
        const std::string to = Owner(m, d.remote);
        // The same report twice (an entry repeated) is read once; the same
        // edge dialled two ways (direct and through a VIP) adds up.
        if (!client_reports_.emplace(from, to, d.remote, d.via).second) continue;
        MapEdge& edge = Edge(from, to, d.remote);
        auto& mine = deps_[m.name];
        mine[d.remote].push_back(EdgeKey{from, to, d.remote});
        if (d.via.port != 0) mine[d.via].push_back(EdgeKey{from, to, d.remote});
        edge.stats.Merge(d.stats);
        if (edge.via.port == 0) edge.via = d.via;
        edge.client_seen = true;
      }
    }
  }

  // Marks the client side's edges that match the server's report (they
  // went to `at`, dialled it through a NAT, or dialled a balancer's front
  // whose backends include it); false when none does.
  bool Confirm(const LookMember& client, const std::string& server, const Endpoint& at) {
    auto mine = deps_.find(client.name);
    if (mine == deps_.end()) return false;
    std::vector<Endpoint> dialled{at};
    if (auto f = fronts_of_backend_.find(at); f != fronts_of_backend_.end())
      dialled.insert(dialled.end(), f->second.begin(), f->second.end());
    bool matched = false;
    for (const Endpoint& d : dialled) {
      auto keys = mine->second.find(d);
      if (keys == mine->second.end()) continue;
      for (const EdgeKey& key : keys->second) {
        matched = true;
        edges_.at(key).server_seen = true;
        // Through a balancer: its edge to this server is the one both saw.
        const std::string& to = std::get<1>(key);
        if (to == server) continue;
        auto via_lb = edges_.find(EdgeKey{to, server, at});
        if (via_lb != edges_.end() && nodes_.at(to).kind == MapNodeKind::kBalancer)
          via_lb->second.server_seen = true;
      }
    }
    return matched;
  }

  // A balancer doing DNAT without masquerade passes its client's address
  // on: the backend reports the client, the balancer reported it too and
  // its edge to the backend carries these connections. True (that edge
  // marked seen by the server) when a balancer fronting `at` did.
  bool Balanced(const IpAddr& client, const std::string& server, const Endpoint& at) {
    auto fronts = fronts_of_backend_.find(at);
    if (fronts == fronts_of_backend_.end()) return false;
    for (const Endpoint& front : fronts->second) {
      for (const auto& [member, lb] : claims_.Fronts(front)) {
        if (!balanced_clients_.contains({lb, client})) continue;
        if (auto edge = edges_.find(EdgeKey{lb, server, at}); edge != edges_.end()) {
          edge->second.server_seen = true;
          return true;
        }
      }
    }
    return false;
  }

  void AddClients(const LookMember& m, const MemberMap& map) {
    for (const MapEntry& e : map.entries) {
      const std::string server = EntryNode(m, e);
      if (server.empty()) continue;
      for (const ClientEdge& c : e.clients) {
        Endpoint at = c.endpoint;
        if (at.port == 0 && !e.endpoints.empty()) at = e.endpoints.front();
        if (!server_reports_.emplace(server, c.addr, at).second) continue;
        const LookMember* client = claims_.MemberOf(c.addr, m);
        if ((client == nullptr || Answered(client->name) == nullptr) &&
            Balanced(c.addr, server, at))
          continue;
        std::string from;
        if (client == nullptr) {
          from = External("ext:" + c.addr.ToString(), Endpoint{c.addr, 0});
        } else if (Answered(client->name) != nullptr) {
          if (Confirm(*client, server, at)) continue;
          from = client->name + "/unconfirmed:" + c.addr.ToString();
          MapNode& n = Node(from, MapNodeKind::kWorkload, client->name);
          n.label = "unconfirmed " + c.addr.ToString();
          n.status = LookStatus::kUnconfirmed;
          n.status_detail = "no process on " + client->name + " has a flow to " + at.ToString();
          AddEndpoint(n, Endpoint{c.addr, 0});
        } else {
          from = UnreachableNode(*client, Why(*client)).id;
        }
        MapEdge& edge = Edge(from, server, at);
        edge.stats.Merge(c.stats);
        edge.server_seen = true;
      }
    }
  }

  const std::vector<LookMember>& members_;
  GroupBy group_by_;
  std::vector<const LookMember*> order_;  // live first, then by name
  std::map<std::string, const LookMember*> by_name_;
  std::deque<LookMember> extra_;
  std::vector<std::string> unsynced_;
  std::map<std::string, const MemberAnswer*> answers_;
  MapClaims claims_;
  std::map<Endpoint, std::set<Endpoint>> fronts_of_backend_;
  std::set<std::pair<std::string, IpAddr>> balanced_clients_;  // (balancer node, its client)
  // Each member's client-side edges by what they went to and what they dialled.
  std::map<std::string, std::map<Endpoint, std::vector<EdgeKey>>> deps_;
  std::map<std::string, MapNode> nodes_;
  std::set<std::string> agents_;  // node ids of members' own meshd
  std::map<EdgeKey, MapEdge> edges_;
  std::set<std::tuple<std::string, std::string, Endpoint, Endpoint>> client_reports_;
  std::set<std::tuple<std::string, IpAddr, Endpoint>> server_reports_;
};

}  // namespace

std::string MapLabel(const ProcessDetails& p, GroupBy group_by) {
  // By workload, a node is its unit or container only when that is what
  // grouped it: a login session's processes are grouped by pgid
  // (WorkloadGroupKey is empty), and "session-1.scope" would not say which.
  if (group_by == GroupBy::kWorkload && !WorkloadGroupKey(p.workload).empty()) {
    std::string w = WorkloadLabel(p.workload);
    if (!w.empty()) return w;
  }
  if (p.pid == 0 && p.comm.empty()) return "unknown process";
  const std::string comm = "'" + p.comm + "'";
  if (group_by != GroupBy::kPid && p.pgid != 0) return comm + " pgid " + std::to_string(p.pgid);
  return comm + " pid " + std::to_string(p.pid);
}

MapGraph MergeMap(const std::vector<LookMember>& members, const std::vector<MemberAnswer>& answers,
                  GroupBy group_by, TimeWindow window) {
  Merger merger(members, group_by);
  for (const MemberAnswer& a : answers) merger.Add(a);
  return merger.Run(window);
}

}  // namespace flowmesh
