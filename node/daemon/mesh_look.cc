// MeshDirectory and the parallel asker of the mesh-wide look.
#include "node/daemon/mesh_look.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/daemon/query_wire.h"

namespace flowmesh {
namespace {

// A wildcard listener (0.0.0.0 or ::) takes connections to any address of
// its host of a family it serves.
bool ServesAddress(const IpAddr& listener, const IpAddr& addr) {
  if (listener == addr) return true;
  return listener.is_unspecified() && (listener.family == addr.family || !listener.is_v4());
}

}  // namespace

// A remote member and the querier the engine sees for it. Asked alone (one
// question, one round trip) it is what AskInTurn would use; the walk itself
// goes through MeshDirectory::Ask, which batches.
struct MeshDirectory::Member final : NodeQuerier {
  MeshDirectory* dir = nullptr;
  mesh::NodeTable table;

  LookAnswer One(LookQuestion q, const TimeWindow& w) {
    q.node = dir->Ref(*this);
    int64_t timeout = 2'000'000'000;
    return std::move(dir->Ask({q}, w, timeout, MonotonicNs() + timeout).at(0));
  }
  Result<EndpointDescription> Describe(const Endpoint& e, const TimeWindow& w) override {
    LookAnswer a = One({LookQuestion::Kind::kDescribe, {}, e, {}}, w);
    if (!a.status.ok()) return a.status;
    return std::move(a.description);
  }
  Result<std::vector<ClientProcess>> Clients(const Endpoint& t, const IpAddr& from,
                                             const TimeWindow& w) override {
    LookAnswer a = One({LookQuestion::Kind::kClients, {}, t, from}, w);
    if (!a.status.ok()) return a.status;
    return std::move(a.clients);
  }
  Result<std::vector<ActiveProcess>> Active(const IpAddr& host, const TimeWindow& w) override {
    LookAnswer a = One({LookQuestion::Kind::kActive, {}, {}, host}, w);
    if (!a.status.ok()) return a.status;
    return std::move(a.active);
  }
};

MeshDirectory::MeshDirectory(LocalDirectory& local, std::vector<mesh::NodeTable> tables,
                             QuerySender send)
    : local_(local), send_(std::move(send)) {
  for (mesh::NodeTable& t : tables) {
    if (t.name == local_.name()) continue;  // this node answers from its own store
    auto m = std::make_unique<Member>();
    m->dir = this;
    m->table = std::move(t);
    by_name_[m->table.name] = m.get();
    members_.push_back(std::move(m));
  }
  // An address a live member has now is its, whatever a dead one had.
  std::stable_partition(members_.begin(), members_.end(), [](const auto& m) {
    return m->table.state == mesh::MemberState::kAlive ||
           m->table.state == mesh::MemberState::kSuspect;
  });
}

MeshDirectory::~MeshDirectory() = default;

NodeRef MeshDirectory::Ref(Member& m) { return NodeRef{m.table.name, &m}; }

std::optional<NodeRef> MeshDirectory::OwnerOfEndpoint(const Endpoint& endpoint) {
  if (auto mine = local_.OwnerOfEndpoint(endpoint)) return mine;
  if (endpoint.addr.is_loopback()) return std::nullopt;  // the engine keeps it on the asking node
  // An exact listener beats a wildcard one on the member that has the address.
  Member* wildcard = nullptr;
  for (auto& m : members_) {
    const mesh::NodeTable& t = m->table;
    bool has_addr =
        std::find(t.addresses.begin(), t.addresses.end(), endpoint.addr) != t.addresses.end();
    for (const mesh::EndpointSummary& e : t.endpoints) {
      if (e.port != endpoint.port) continue;
      if (e.addr == endpoint.addr) return Ref(*m);
      if (has_addr && ServesAddress(e.addr, endpoint.addr)) wildcard = m.get();
    }
  }
  if (wildcard != nullptr) return Ref(*wildcard);
  return std::nullopt;
}

std::optional<NodeRef> MeshDirectory::OwnerOfAddress(const IpAddr& addr) {
  if (auto mine = local_.OwnerOfAddress(addr)) return mine;
  for (auto& m : members_) {
    const std::vector<IpAddr>& a = m->table.addresses;
    if (std::find(a.begin(), a.end(), addr) != a.end()) return Ref(*m);
  }
  return std::nullopt;
}

std::vector<LookAnswer> MeshDirectory::Ask(const std::vector<LookQuestion>& questions,
                                           const TimeWindow& w, int64_t hop_timeout_ns,
                                           int64_t deadline_ns) {
  std::vector<LookAnswer> out(questions.size());
  // Each remote member's questions, in order, and where their answers go.
  std::map<std::string, std::vector<size_t>> by_member;
  for (size_t i = 0; i < questions.size(); i++) {
    auto it = by_name_.find(questions[i].node.name);
    if (it != by_name_.end() && questions[i].node.querier == it->second)
      by_member[it->first].push_back(i);
  }

  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    size_t waiting = 0;
    std::map<std::string, Result<std::vector<uint8_t>>> replies;
  };
  auto pending = std::make_shared<Pending>();
  std::map<std::string, QueryBatch> batches;
  int64_t timeout = std::min(hop_timeout_ns, deadline_ns - MonotonicNs());
  for (auto& [name, indices] : by_member) {
    QueryBatch& b = batches[name];
    b.window = w;
    for (size_t i : indices) b.questions.push_back(questions[i]);
    const mesh::NodeTable& table = by_name_[name]->table;
    if (table.state == mesh::MemberState::kDead || table.state == mesh::MemberState::kLeft) {
      std::lock_guard lock(pending->mu);
      pending->replies.emplace(name, Unavailable("member " + name + " is " +
                                                 std::string(mesh::MemberStateName(table.state))));
      continue;
    }
    Result<std::vector<uint8_t>> bytes = EncodeQuery(b);
    if (!bytes.ok() || timeout <= 0) {
      Status why = !bytes.ok() ? bytes.status() : Unavailable("the look's deadline has passed");
      std::lock_guard lock(pending->mu);
      pending->replies.emplace(name, why);
      continue;
    }
    {
      std::lock_guard lock(pending->mu);
      pending->waiting++;
    }
    stats_.round_trips++;
    stats_.questions += indices.size();
    send_(by_name_[name]->table.address, std::move(*bytes), timeout,
          [pending, name = name](Result<std::vector<uint8_t>> reply) {
            std::lock_guard lock(pending->mu);
            pending->replies.emplace(name, std::move(reply));
            pending->waiting--;
            pending->cv.notify_all();
          });
  }

  // This node's own questions while the others are on the wire.
  for (size_t i = 0; i < questions.size(); i++) {
    auto it = by_name_.find(questions[i].node.name);
    if (it == by_name_.end() || questions[i].node.querier != it->second)
      out[i] = AskOne(questions[i], w);
  }

  {
    std::unique_lock lock(pending->mu);
    // The transport times each query out; the extra second only guards
    // against a callback that never comes.
    auto limit = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout) +
                 std::chrono::seconds(1);
    pending->cv.wait_until(lock, limit, [&] { return pending->waiting == 0; });
    for (auto& [name, indices] : by_member) {
      auto r = pending->replies.find(name);
      Result<std::vector<LookAnswer>> answers =
          r == pending->replies.end()
              ? Result<std::vector<LookAnswer>>(Unavailable("no answer from " + name + " in time"))
          : !r->second.ok() ? Result<std::vector<LookAnswer>>(r->second.status())
                            : DecodeAnswers(*r->second, batches[name].questions);
      if (!answers.ok()) {
        stats_.failed++;
        FM_LOG(Info, "look") << "member " << name
                             << " did not answer: " << answers.status().message();
      }
      for (size_t k = 0; k < indices.size(); k++) {
        if (answers.ok()) {
          out[indices[k]] = std::move((*answers)[k]);
        } else {
          out[indices[k]].status = answers.status();
        }
      }
    }
  }
  return out;
}

LookResult MeshLook(const LookQuery& query, MeshDirectory& directory) {
  int64_t deadline = MonotonicNs() + query.timeout_ns;
  return Look(query, directory,
              [&](const std::vector<LookQuestion>& questions, const TimeWindow& w) {
                return directory.Ask(questions, w, query.hop_timeout_ns, deadline);
              });
}

}  // namespace flowmesh
