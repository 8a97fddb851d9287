// The SWIM probe loop with Lifeguard's refinements (memberlist probeNode):
// direct ping, then indirect pings through k peers that nack when they get
// no answer either, plus a reliable fallback ping; the outcome moves local
// health, which scales the next probe's timing.
#include "node/common/log.h"
#include "node/mesh/membership.h"

namespace flowmesh::mesh {

void Membership::ScheduleProbe(int64_t delay_ns) {
  if (!running_) return;
  if (probe_timer_ != 0) runtime_.Cancel(probe_timer_);
  probe_timer_ = runtime_.After(delay_ns, life_.Guard([this] {
    probe_timer_ = 0;
    RunProbe();
  }));
}

void Membership::RunProbe() {
  if (!running_ || probe_) return;
  if (runtime_.NowNs() - last_reap_ns_ > 10 * kSecond) ReapOld();
  Member* target = members_.NextProbeTarget(self_, [this] { return Rand(); });
  if (target == nullptr) {
    ScheduleProbe(config_.probe_interval_ns);
    return;
  }
  stats_.probes++;
  Probe p;
  p.seq = ++next_seq_;
  p.target = target->name;
  p.start_ns = runtime_.NowNs();
  // A suspect gets the accusation along with the ping (the "buddy system"),
  // so it can refute at once instead of waiting for the gossip to reach it.
  std::optional<GossipMsg> extra;
  if (target->state == MemberState::kSuspect) extra = SuspectOf(*target, self_);
  io_.Send(S(target->addr), PingMsg{p.seq, S(target->name)}, std::move(extra));
  uint32_t seq = p.seq;
  // Lifeguard scales both with local health: a node that is itself slow
  // gives answers more time before blaming the target.
  p.timeout_timer = runtime_.After(awareness_.ScaleTimeout(config_.probe_timeout_ns),
                                   life_.Guard([this, seq] { ProbeTimeout(seq); }));
  p.deadline_timer = runtime_.After(awareness_.ScaleTimeout(config_.probe_interval_ns),
                                    life_.Guard([this, seq] { ProbeDeadline(seq); }));
  probe_ = p;
}

void Membership::ProbeTimeout(uint32_t seq) {
  if (!probe_ || probe_->seq != seq) return;
  probe_->timeout_timer = 0;
  const Member* target = members_.Find(probe_->target);
  if (target == nullptr) return;
  uint32_t target_name = target->name;
  Address target_addr = S(target->addr);
  auto helpers = members_.RandomMembers(
      config_.indirect_checks, [this] { return Rand(); },
      [&](const Member& m) {
        return m.name != self_ && m.name != target_name && m.state == MemberState::kAlive;
      });
  for (Member* helper : helpers) {
    stats_.indirect_probes++;
    probe_->expected_nacks++;
    io_.Send(S(helper->addr), PingReqMsg{seq, S(target_name), target_addr, true});
  }
  if (config_.tcp_fallback_ping) {
    // Finishes just before the probe's deadline so the verdict can use it.
    int64_t left = probe_->start_ns + awareness_.ScaleTimeout(config_.probe_interval_ns) -
                   runtime_.NowNs() - kMs;
    if (left > 0) {
      io_.FallbackPing(target_addr, PingMsg{seq, S(target_name)}, left,
                       life_.Guard([this, seq](bool acked) {
                         if (acked && probe_ && probe_->seq == seq) probe_->fallback_ok = true;
                       }));
    }
  }
}

void Membership::HandleAck(const AckMsg& ack) {
  if (!running_) return;
  if (probe_ && probe_->seq == ack.seq) {
    FinishProbe(true);
    return;
  }
  auto it = relays_.find(ack.seq);
  if (it == relays_.end()) return;
  io_.Send(it->second.requester, AckMsg{it->second.requester_seq});
  runtime_.Cancel(it->second.timer);
  relays_.erase(it);
}

void Membership::HandleNack(const NackMsg& nack) {
  if (!running_ || !probe_ || probe_->seq != nack.seq) return;
  stats_.nacks++;
  probe_->nacks++;
}

void Membership::ProbeDeadline(uint32_t seq) {
  if (!probe_ || probe_->seq != seq) return;
  probe_->deadline_timer = 0;
  if (probe_->fallback_ok) {
    stats_.fallback_rescues++;
    FM_LOG(Debug, "mesh") << config_.name << ": reached " << S(probe_->target)
                          << " only over the reliable exchange; UDP may be filtered";
    FinishProbe(true);
    return;
  }
  FinishProbe(false);
}

void Membership::FinishProbe(bool success) {
  Probe p = *probe_;
  probe_.reset();
  if (p.timeout_timer != 0) runtime_.Cancel(p.timeout_timer);
  if (p.deadline_timer != 0) runtime_.Cancel(p.deadline_timer);
  int64_t next = std::max<int64_t>(0, p.start_ns + config_.probe_interval_ns - runtime_.NowNs());
  if (success) {
    awareness_.ApplyDelta(-1);
    ScheduleProbe(next);
    return;
  }
  // Helpers that did not even nack were unreachable from here: that points
  // at our own health rather than the target's. Without helpers, any failed
  // probe counts against us.
  int delta = p.expected_nacks > 0 ? std::max(0, p.expected_nacks - p.nacks) : 1;
  awareness_.ApplyDelta(delta);
  stats_.probe_failures++;
  Member* target = members_.Find(p.target);
  if (target != nullptr && target->live()) {
    FM_LOG(Debug, "mesh") << config_.name << ": suspect " << S(p.target) << ", no ack";
    if (target->state == MemberState::kAlive) stats_.suspicions++;
    Suspect(SuspectMsg{S(target->name), target->generation, target->incarnation, config_.name},
            true);
  }
  ScheduleProbe(next);
}

void Membership::HandlePing(const Address& from, const PingMsg& ping) {
  if (!running_ || leaving_) return;
  // A ping meant for another name (our address was someone else's before):
  // an ack would vouch for a node that is not here.
  if (!ping.target.empty() && ping.target != config_.name) return;
  io_.Send(from, AckMsg{ping.seq});
}

bool Membership::HandleFallbackPing(const PingMsg& ping) const {
  return running_ && !leaving_ && (ping.target.empty() || ping.target == config_.name);
}

void Membership::HandlePingReq(const Address& from, const PingReqMsg& req) {
  if (!running_ || leaving_) return;
  uint32_t seq = ++next_seq_;
  Relay relay;
  relay.requester = from;
  relay.requester_seq = req.seq;
  relay.want_nack = req.want_nack;
  relay.timer =
      runtime_.After(config_.probe_timeout_ns, life_.Guard([this, seq] { RelayTimeout(seq); }));
  relays_.emplace(seq, std::move(relay));
  io_.Send(req.target_addr, PingMsg{seq, req.target});
}

void Membership::RelayTimeout(uint32_t seq) {
  auto it = relays_.find(seq);
  if (it == relays_.end()) return;
  if (it->second.want_nack) io_.Send(it->second.requester, NackMsg{it->second.requester_seq});
  relays_.erase(it);
}

}  // namespace flowmesh::mesh
