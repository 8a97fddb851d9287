// Membership state: alive/suspect/dead/left transitions, refutation, merge
// of a peer's full state, leave. The probe loop is in membership_probe.cc.
#include "node/mesh/membership.h"

#include "node/common/log.h"

namespace flowmesh::mesh {

Membership::Membership(Runtime& runtime, Interner& interner, const MeshConfig& config,
                       MembershipIo& io)
    : runtime_(runtime),
      interner_(interner),
      config_(config),
      io_(io),
      awareness_(config.awareness_max_multiplier),
      flaps_(config.name, interner) {}

Membership::~Membership() {
  if (probe_timer_ != 0) runtime_.Cancel(probe_timer_);
  if (probe_) {
    runtime_.Cancel(probe_->timeout_timer);
    runtime_.Cancel(probe_->deadline_timer);
  }
  for (auto& [seq, relay] : relays_) runtime_.Cancel(relay.timer);
}

AliveMsg Membership::SelfAlive() const {
  const Member* me = members_.Find(self_);
  return AliveMsg{config_.name, S(me->addr), config_.node_id, config_.generation, me->incarnation};
}

void Membership::Start(const std::string& address) {
  self_ = interner_.Intern(config_.name);
  Member me;
  me.name = self_;
  me.addr = interner_.Intern(address);
  me.node_id = interner_.Intern(config_.node_id);
  me.generation = config_.generation;
  me.incarnation = 1;
  me.state = MemberState::kAlive;
  me.state_change_ns = runtime_.NowNs();
  members_.Add(me, Rand());
  io_.MemberGeneration(self_, config_.generation);
  io_.Broadcast(self_, SelfAlive());
  running_ = true;
  last_reap_ns_ = runtime_.NowNs();
  // A random phase, so that nodes started together do not probe in step.
  ScheduleProbe(static_cast<int64_t>(Rand() % static_cast<uint64_t>(config_.probe_interval_ns)));
}

void Membership::Preload(const std::vector<AliveMsg>& members) {
  for (const AliveMsg& a : members) {
    uint32_t name = interner_.Intern(a.name);
    if (members_.Find(name) != nullptr) continue;
    Member m;
    m.name = name;
    m.addr = interner_.Intern(a.addr);
    m.node_id = interner_.Intern(a.node_id);
    m.generation = a.generation;
    m.incarnation = a.incarnation;
    m.state = MemberState::kAlive;
    m.state_change_ns = runtime_.NowNs();
    members_.Add(m, Rand());
    io_.MemberGeneration(name, a.generation);
  }
}

void Membership::Stop() {
  running_ = false;
  if (probe_timer_ != 0) runtime_.Cancel(probe_timer_);
  probe_timer_ = 0;
  if (probe_) {
    runtime_.Cancel(probe_->timeout_timer);
    runtime_.Cancel(probe_->deadline_timer);
    probe_.reset();
  }
  suspicions_.clear();
}

void Membership::Leave(std::function<void()> done) {
  Member* me = members_.Find(self_);
  if (leaving_ || me == nullptr) {
    if (done) runtime_.After(0, std::move(done));
    return;
  }
  leaving_ = true;
  bool anyone = members_.live() > 1;
  auto shared = std::make_shared<std::function<void()>>(std::move(done));
  auto finish = [shared] {
    if (*shared) std::exchange(*shared, nullptr)();
  };
  DeadMsg d{config_.name, config_.generation, me->incarnation, config_.name};
  io_.Broadcast(self_, d, finish);
  Transition(me, MemberState::kLeft);
  FM_LOG(Info, "mesh") << config_.name << " leaving the mesh";
  // Nobody to tell: done now. Otherwise when the news went out, or at the
  // timeout if the queue never gets to send it.
  runtime_.After(anyone ? config_.leave_timeout_ns : 0, life_.Guard(finish));
}

namespace {

std::string Held(uint64_t held) {
  return held == 0 ? std::string()
                   : " (and " + std::to_string(held) + " more conflicts since the last such line)";
}

}  // namespace

bool Membership::Conflict(uint64_t* held) {
  stats_.conflicts++;
  // Every copy of the conflicting alive message arrives here, at gossip rate.
  return conflict_log_.Allow(runtime_.NowNs(), held);
}

void Membership::HandleAlive(const AliveMsg& a) {
  if (!running_) return;
  uint32_t name = interner_.Intern(a.name);
  if (name == self_) {
    if (leaving_) return;
    Member* me = members_.Find(self_);
    if (a.generation < me->generation) return;  // about our previous life
    if (a.generation > me->generation) {
      uint64_t held = 0;
      if (Conflict(&held))
        FM_LOG(Warn, "mesh") << "another node claims our name " << a.name << " with generation "
                             << a.generation << " (ours " << me->generation
                             << "); is a second meshd running under this name?" << Held(held);
      return;
    }
    if (a.incarnation < me->incarnation) return;
    if (a.incarnation == me->incarnation && a.addr == S(me->addr) && a.node_id == config_.node_id)
      return;
    Refute(me, a.incarnation, false);
    return;
  }
  Member* m = members_.Find(name);
  // Most alive messages repeat what we know: leave before interning more.
  if (m != nullptr && a.generation == m->generation && m->live() &&
      (a.incarnation < m->incarnation ||
       (a.incarnation == m->incarnation && a.addr == S(m->addr) && a.node_id == S(m->node_id))))
    return;
  uint32_t addr = interner_.Intern(a.addr);
  uint32_t node_id = interner_.Intern(a.node_id);
  int64_t now = runtime_.NowNs();
  if (m == nullptr) {
    Member fresh;
    fresh.name = name;
    fresh.addr = addr;
    fresh.node_id = node_id;
    fresh.generation = a.generation;
    fresh.incarnation = a.incarnation;
    fresh.state = MemberState::kAlive;
    fresh.state_change_ns = now;
    members_.Add(fresh, Rand());
    io_.StateChanged(name, MemberState::kAlive);
    io_.Broadcast(name, a);
    io_.MemberGeneration(name, a.generation);
    FM_LOG(Debug, "mesh") << config_.name << ": " << a.name << " joined at " << a.addr;
    return;
  }
  bool restarted = a.generation > m->generation;
  if (!restarted) {
    if (a.generation < m->generation) return;
    if (node_id != m->node_id) {
      uint64_t held = 0;
      if (Conflict(&held))
        FM_LOG(Warn, "mesh") << "name conflict: " << a.name << " is node " << S(m->node_id)
                             << " but " << a.addr << " claims it as node " << a.node_id
                             << " at the same generation " << a.generation << "; ignored"
                             << Held(held);
      return;
    }
    // Same generation at another address: only a member that is gone may move.
    bool moved = addr != m->addr;
    if (moved && m->live()) {
      uint64_t held = 0;
      if (Conflict(&held))
        FM_LOG(Warn, "mesh") << "address conflict for " << a.name << ": known at " << S(m->addr)
                             << ", claimed at " << a.addr << "; ignored" << Held(held);
      return;
    }
    if (a.incarnation <= m->incarnation && !moved) return;
  }
  suspicions_.erase(name);
  io_.Broadcast(name, a);
  // Same life, back from suspect or dead: the member had to refute. Made
  // visible, because SWIM itself hides it (see flapping.h).
  if (!restarted && m->state == MemberState::kSuspect) flaps_.Recovered(name, runtime_.NowNs());
  if (!restarted && m->state == MemberState::kDead) flaps_.FalseDeath(name, runtime_.NowNs());
  m->addr = addr;
  m->node_id = node_id;
  m->incarnation = a.incarnation;
  if (restarted) {
    m->generation = a.generation;
    io_.MemberGeneration(name, a.generation);
  }
  if (m->state != MemberState::kAlive) Transition(m, MemberState::kAlive);
}

GossipMsg Membership::SuspectOf(const Member& m, uint32_t from) const {
  return SuspectMsg{S(m.name), m.generation, m.incarnation, S(from)};
}

void Membership::HandleSuspect(const SuspectMsg& s) { Suspect(s, false); }

void Membership::Suspect(const SuspectMsg& s, bool raised_here) {
  if (!running_) return;
  std::optional<uint32_t> name = interner_.Find(s.name);
  Member* m = name ? members_.Find(*name) : nullptr;
  if (m == nullptr) return;                   // never heard of it
  if (s.generation != m->generation) return;  // about another life of it
  if (s.incarnation < m->incarnation) return;
  uint32_t from = interner_.Intern(s.from);
  if (auto it = suspicions_.find(*name); it != suspicions_.end()) {
    // Re-gossip only news, so independent confirmations spread without
    // echoing forever.
    if (it->second->Confirm(from)) io_.Broadcast(*name, s);
    return;
  }
  if (m->state != MemberState::kAlive) return;
  if (*name == self_) {
    if (!leaving_) Refute(m, s.incarnation, true);
    return;
  }
  io_.Broadcast(*name, s);
  m->incarnation = s.incarnation;
  if (raised_here)
    flaps_.SuspicionRaised();
  else
    flaps_.SuspicionReceived();
  Transition(m, MemberState::kSuspect);
  StartSuspicion(m, from);
}

void Membership::StartSuspicion(Member* m, uint32_t from) {
  // k confirmations make the nominal timeout two probe intervals short of
  // what the multiplier says, given no phase relation between peers; too
  // few members to confirm: expect none.
  size_t n = NumLive();
  int k = config_.suspicion_mult - 2;
  if (static_cast<int64_t>(n) - 2 < k) k = 0;
  int64_t min_ns = SuspicionMinTimeout(config_.suspicion_mult, n, config_.probe_interval_ns);
  int64_t max_ns = config_.suspicion_max_timeout_mult * min_ns;
  uint32_t name = m->name;
  int64_t change = m->state_change_ns;
  suspicions_[name] = std::make_unique<Suspicion>(
      runtime_, from, k, min_ns, max_ns, [this, name, change] { SuspicionExpired(name, change); });
}

void Membership::SuspicionExpired(uint32_t name, int64_t change_ns) {
  Member* m = members_.Find(name);
  if (m == nullptr || m->state != MemberState::kSuspect || m->state_change_ns != change_ns) {
    suspicions_.erase(name);
    return;
  }
  stats_.deaths++;
  FM_LOG(Debug, "mesh") << config_.name << ": suspicion of " << S(name) << " timed out";
  HandleDead(DeadMsg{S(name), m->generation, m->incarnation, config_.name});
}

void Membership::HandleDead(const DeadMsg& d) {
  if (!running_) return;
  std::optional<uint32_t> name = interner_.Find(d.name);
  Member* m = name ? members_.Find(*name) : nullptr;
  if (m == nullptr) return;
  if (d.generation != m->generation) return;
  if (d.incarnation < m->incarnation) return;
  suspicions_.erase(*name);
  if (!m->live()) return;
  if (*name == self_) {
    if (!leaving_) Refute(m, d.incarnation, true);
    return;
  }
  io_.Broadcast(*name, d);
  m->incarnation = d.incarnation;
  bool left = d.from == d.name;
  Transition(m, left ? MemberState::kLeft : MemberState::kDead);
  FM_LOG(Debug, "mesh") << config_.name << ": " << d.name << (left ? " left" : " is dead")
                        << " (from " << d.from << ")";
}

void Membership::Transition(Member* m, MemberState state) {
  members_.SetState(m, state, runtime_.NowNs());
  io_.StateChanged(m->name, state);
}

void Membership::Refute(Member* me, uint32_t accused_incarnation, bool accused) {
  uint32_t inc = me->incarnation + 1;
  if (accused_incarnation >= inc) inc = accused_incarnation + 1;
  me->incarnation = inc;
  // Having to refute is a sign that we may be the slow one.
  awareness_.ApplyDelta(1);
  stats_.refutations++;
  flaps_.IncarnationBumped();
  if (accused) flaps_.Refuted(runtime_.NowNs(), inc);
  io_.Broadcast(self_, SelfAlive());
}

void Membership::Merge(const std::vector<MemberEntryMsg>& remote) {
  for (const MemberEntryMsg& r : remote) {
    switch (r.state) {
      case MemberState::kAlive:
        HandleAlive(AliveMsg{r.name, r.addr, r.node_id, r.generation, r.incarnation});
        break;
      case MemberState::kLeft:
        HandleDead(DeadMsg{r.name, r.generation, r.incarnation, r.name});
        break;
      case MemberState::kDead:
      case MemberState::kSuspect:
        // A peer's verdict of death is only a suspicion here: we may know
        // better, and the member gets its chance to refute. Members we never
        // heard of stay unknown, as memberlist does.
        HandleSuspect(SuspectMsg{r.name, r.generation, r.incarnation, config_.name});
        break;
    }
  }
}

std::vector<MemberEntryMsg> Membership::Snapshot() const {
  std::vector<MemberEntryMsg> out;
  out.reserve(members_.size());
  for (const Member& m : members_.all()) {
    MemberEntryMsg e;
    e.name = S(m.name);
    e.addr = S(m.addr);
    e.node_id = S(m.node_id);
    e.generation = m.generation;
    e.incarnation = m.incarnation;
    e.state = m.state;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<const Member*> Membership::GossipTargets(size_t k) {
  int64_t now = runtime_.NowNs();
  auto picked = members_.RandomMembers(
      k, [this] { return Rand(); },
      [&](const Member& m) {
        if (m.name == self_) return false;
        if (m.live()) return true;
        return m.state == MemberState::kDead &&
               now - m.state_change_ns <= config_.gossip_to_the_dead_ns;
      });
  return {picked.begin(), picked.end()};
}

const Member* Membership::RandomLiveMember() {
  auto picked = members_.RandomMembers(
      1, [this] { return Rand(); },
      [&](const Member& m) { return m.name != self_ && m.state == MemberState::kAlive; });
  return picked.empty() ? nullptr : picked[0];
}

void Membership::ReapOld() {
  int64_t now = runtime_.NowNs();
  last_reap_ns_ = now;
  auto gone = members_.Reap([&](const Member& m) {
    return m.name != self_ && now - m.state_change_ns > config_.dead_reap_ns;
  });
  for (uint32_t name : gone) {
    flaps_.Forget(name);
    io_.MemberGeneration(name, 0);
  }
}

}  // namespace flowmesh::mesh
