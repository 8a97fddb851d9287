// RemoteDirectory: owners from the members' tables, and the batched asker of
// the mesh-wide look.
#include "node/look/remote_directory.h"

#include <algorithm>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/look_wire.h"

namespace flowmesh {
namespace {

// A wildcard listener (0.0.0.0 or ::) takes connections to any address of
// its host of a family it serves.
bool ServesAddress(const IpAddr& listener, const IpAddr& addr) {
  if (listener == addr) return true;
  return listener.is_unspecified() && (listener.family == addr.family || !listener.is_v4());
}

}  // namespace

std::string_view UnansweredName(Unanswered reason) {
  switch (reason) {
    case Unanswered::kTimeout: return "timeout";
    case Unanswered::kRefused: return "refused";
    case Unanswered::kFailed: return "failed";
    case Unanswered::kMemberGone: return "member_gone";
    case Unanswered::kDeadline: return "deadline";
  }
  return "failed";
}

Unanswered UnansweredOf(const Status& why) {
  // The transports say these in their messages, not their codes (a timeout
  // and a reset are both kUnavailable); the phrases are theirs and this file's.
  const std::string& m = why.message();
  if (m.find("timed out") != std::string::npos || m.find("in time") != std::string::npos)
    return Unanswered::kTimeout;
  if (m.rfind("refused: ", 0) == 0 || m.find("the peer refused the request") != std::string::npos ||
      m.find("exchanges already in flight") != std::string::npos)
    return Unanswered::kRefused;
  if (m.find("deadline has passed") != std::string::npos) return Unanswered::kDeadline;
  return Unanswered::kFailed;
}

RemoteDirectory::RemoteDirectory(LocalDirectory& local, std::vector<LookMember> members,
                                 QueryScatter scatter, int64_t hop_timeout_ns,
                                 int64_t deadline_ns)
    : local_(local),
      scatter_(std::move(scatter)),
      hop_timeout_ns_(hop_timeout_ns),
      deadline_ns_(deadline_ns) {
  for (LookMember& m : members) {
    if (m.name == local_.name()) continue;  // this node answers from its own store
    // Before its table arrives, the address the mesh reaches it at is the
    // one address known to be its: a live member's own address is never
    // `no-agent`, even right after it joined.
    Result<Endpoint> reached = Endpoint::Parse(m.address);
    if (!m.synced && reached.ok() &&
        std::find(m.addresses.begin(), m.addresses.end(), reached->addr) == m.addresses.end())
      m.addresses.push_back(reached->addr);
    members_.push_back(std::move(m));
  }
  // An address a live member has now is its, whatever a dead one had.
  std::stable_partition(members_.begin(), members_.end(),
                        [](const LookMember& m) { return m.live; });
  for (const LookMember& m : members_) by_name_[m.name] = &m;
}

const LookMember* RemoteDirectory::RemoteOf(const LookQuestion& q) const {
  if (q.node.querier != nullptr) return nullptr;
  auto it = by_name_.find(q.node.name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::optional<NodeRef> RemoteDirectory::OwnerOfEndpoint(const Endpoint& endpoint) {
  if (auto mine = local_.OwnerOfEndpoint(endpoint)) return mine;
  if (endpoint.addr.is_loopback()) return std::nullopt;  // the engine keeps it on the asking node
  if (auto l = Listener(endpoint)) return Ref(*l->first);
  if (const LookMember* m = AliasOwner(endpoint)) return Ref(*m);
  return std::nullopt;
}

std::optional<std::pair<const LookMember*, size_t>> RemoteDirectory::Listener(
    const Endpoint& endpoint) const {
  // An exact listener beats a wildcard one on the member that has the address.
  std::optional<std::pair<const LookMember*, size_t>> wildcard;
  for (const LookMember& m : members_) {
    bool has_addr =
        std::find(m.addresses.begin(), m.addresses.end(), endpoint.addr) != m.addresses.end();
    for (size_t i = 0; i < m.endpoints.size(); i++) {
      const Endpoint& e = m.endpoints[i];
      if (e.port != endpoint.port) continue;
      if (e.addr == endpoint.addr) return std::make_pair(&m, i);
      if (has_addr && ServesAddress(e.addr, endpoint.addr)) wildcard = std::make_pair(&m, i);
    }
  }
  return wildcard;
}

std::optional<ProcessDetails> RemoteDirectory::TableOwner(const Endpoint& endpoint) {
  if (endpoint.addr.is_loopback()) return std::nullopt;
  auto l = Listener(endpoint);
  if (!l || l->second >= l->first->owners.size()) return std::nullopt;
  return l->first->owners[l->second];
}

const LookMember* RemoteDirectory::AliasOwner(const Endpoint& front) const {
  // Several members may claim one front: kube-proxy puts a Service's VIP on
  // every node. Any of them translates it the same way, so the pick only has
  // to be stable from one look to the next: a live member first (members_
  // is in that order), one that has the front's address on an interface (the
  // balancer that owns the VIP, a published port's host), then the smallest
  // name.
  const LookMember* best = nullptr;
  bool best_has_addr = false;
  for (const LookMember& m : members_) {
    bool claims = std::any_of(m.aliases.begin(), m.aliases.end(),
                              [&](const MemberAlias& a) { return a.front == front; });
    if (!claims) continue;
    bool has_addr =
        std::find(m.addresses.begin(), m.addresses.end(), front.addr) != m.addresses.end();
    if (best == nullptr) {
      best = &m, best_has_addr = has_addr;
      continue;
    }
    if (best->live && !m.live) continue;
    bool better = has_addr != best_has_addr ? has_addr : m.name < best->name;
    if (better) best = &m, best_has_addr = has_addr;
  }
  return best;
}

std::vector<Endpoint> RemoteDirectory::FrontsOf(const Endpoint& target) {
  std::vector<Endpoint> out = local_.FrontsOf(target);
  for (const LookMember& m : members_)
    for (const MemberAlias& a : m.aliases)
      if (a.balancer && a.target == target) out.push_back(a.front);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<NodeRef> RemoteDirectory::OwnerOfAddress(const IpAddr& addr) {
  if (auto mine = local_.OwnerOfAddress(addr)) return mine;
  for (const LookMember& m : members_) {
    if (std::find(m.addresses.begin(), m.addresses.end(), addr) != m.addresses.end())
      return Ref(m);
  }
  return std::nullopt;
}

std::string RemoteDirectory::Unsynced() const {
  std::string names;
  int n = 0;
  for (const LookMember& m : members_) {
    if (!m.live || m.synced) continue;
    if (n++ < 3) names += (names.empty() ? "member " : ", ") + m.name;
  }
  if (n > 3) names += " and " + std::to_string(n - 3) + " more";
  return names;
}

std::vector<LookAnswer> RemoteDirectory::Ask(const std::vector<LookQuestion>& questions,
                                             const TimeWindow& w) {
  std::vector<LookAnswer> out(questions.size());
  // Each remote member's questions, in order, and where their answers go.
  std::map<std::string, std::vector<size_t>> by_member;
  for (size_t i = 0; i < questions.size(); i++)
    if (const LookMember* m = RemoteOf(questions[i])) by_member[m->name].push_back(i);

  std::map<std::string, Result<std::vector<LookAnswer>>> answers;
  std::map<std::string, QueryBatch> batches;
  std::vector<std::string> sent;  // the members of `queries`, in order
  std::vector<MemberQuery> queries;
  int64_t timeout = std::min(hop_timeout_ns_, deadline_ns_ - MonotonicNs());
  for (auto& [name, indices] : by_member) {
    QueryBatch& b = batches[name];
    b.window = w;
    for (size_t i : indices) b.questions.push_back(questions[i]);
    const LookMember& member = *by_name_[name];
    if (!member.live) {
      answers.emplace(name, Unavailable("member " + name + " is " + member.state));
      continue;
    }
    Result<std::vector<uint8_t>> bytes = EncodeQuery(b);
    if (!bytes.ok() || timeout <= 0) {
      answers.emplace(name, !bytes.ok() ? bytes.status()
                                        : Unavailable("the look's deadline has passed"));
      continue;
    }
    stats_.round_trips++;
    stats_.questions += indices.size();
    sent.push_back(name);
    queries.push_back({member.address, std::move(*bytes)});
  }

  QueryReplies replies;
  // This node's own questions while the others are on the wire.
  auto here = [&] {
    for (size_t i = 0; i < questions.size(); i++)
      if (RemoteOf(questions[i]) == nullptr) out[i] = AskBefore(questions[i], w, deadline_ns_);
  };
  if (queries.empty()) {
    here();
  } else {
    replies = scatter_(std::move(queries), timeout, here, QueryLimits{});
  }
  for (size_t k = 0; k < sent.size(); k++) {
    const std::string& name = sent[k];
    const auto& r = k < replies.size() ? replies[k] : std::nullopt;
    answers.emplace(name, !r.has_value() ? Result<std::vector<LookAnswer>>(
                                               Unavailable("no answer from " + name + " in time"))
                          : !r->ok()     ? Result<std::vector<LookAnswer>>(r->status())
                                         : DecodeAnswers(**r, batches[name].questions));
  }

  for (auto& [name, indices] : by_member) {
    Result<std::vector<LookAnswer>>& got = answers.at(name);
    // A member that answered may still have refused or failed questions (the
    // answers carry why): counted once per member query, as no answer is.
    Status why = got.status();
    if (got.ok())
      for (const LookAnswer& a : *got)
        if (!a.status.ok()) why = a.status;
    if (!why.ok()) {
      Unanswered reason = !by_name_[name]->live ? Unanswered::kMemberGone : UnansweredOf(why);
      stats_.failed++;
      stats_.unanswered[static_cast<size_t>(reason)]++;
      FM_LOG(Info, "look") << "member " << name << " did not answer (" << UnansweredName(reason)
                           << "): " << why.message();
    }
    for (size_t k = 0; k < indices.size(); k++) {
      if (got.ok()) {
        out[indices[k]] = std::move((*got)[k]);
      } else {
        out[indices[k]].status = got.status();
      }
    }
  }
  return out;
}

}  // namespace flowmesh
