// SWIM membership with the Lifeguard refinements, as memberlist implements
// them: round-robin probes with indirect probes through k peers and nacks,
// a reliable-exchange fallback ping, suspicion with confirmations, local
// health (awareness) scaling probe timing, incarnation refutation, and the
// alive/suspect/dead/left messages that ride on every packet. A member's
// version is (generation, incarnation): a restarted node beats its past.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/mesh/awareness.h"
#include "node/mesh/config.h"
#include "node/mesh/flapping.h"
#include "node/mesh/interner.h"
#include "node/mesh/lifetime.h"
#include "node/mesh/member_list.h"
#include "node/mesh/messages.h"
#include "node/mesh/suspicion.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

// What membership needs from the node that carries it.
class MembershipIo {
 public:
  virtual ~MembershipIo() = default;
  // Sends a packet; the node piggybacks queued gossip (and `extra` first).
  virtual void Send(const Address& to, PrimaryMsg primary,
                    std::optional<GossipMsg> extra = std::nullopt) = 0;
  // The reliable fallback ping; done(true) if the target acked in time.
  virtual void FallbackPing(const Address& to, PingMsg ping, int64_t timeout_ns,
                            std::function<void(bool)> done) = 0;
  // Queues gossip about a member; on_done runs once it has been sent enough.
  virtual void Broadcast(uint32_t subject, GossipMsg gossip,
                         std::function<void()> on_done = nullptr) = 0;
  // A member appeared, changed generation or was reaped (generation 0).
  virtual void MemberGeneration(uint32_t name, uint64_t generation) = 0;
  // A member is new or changed state.
  virtual void StateChanged(uint32_t name, MemberState state) = 0;
};

struct MembershipStats {
  uint64_t probes = 0;
  uint64_t probe_failures = 0;  // ended in a suspicion
  uint64_t indirect_probes = 0;
  uint64_t fallback_rescues = 0;  // only the reliable ping got through
  uint64_t nacks = 0;
  uint64_t suspicions = 0;  // members this node marked suspect
  uint64_t deaths = 0;      // members this node declared dead
  uint64_t refutations = 0;
  uint64_t conflicts = 0;
  FlapStats flaps;
};

class Membership {
 public:
  Membership(Runtime& runtime, Interner& interner, const MeshConfig& config, MembershipIo& io);
  ~Membership();
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Adds this node (alive, incarnation 1), announces it and starts probing.
  void Start(const std::string& address);
  // Adds members as alive without gossiping about them (StartConverged).
  void Preload(const std::vector<AliveMsg>& members);
  // Stops probing and ignores further input.
  void Stop();
  // Announces a graceful leave; done once the news went out (or timed out).
  void Leave(std::function<void()> done);
  bool leaving() const { return leaving_; }

  // Packets.
  void HandlePing(const Address& from, const PingMsg& ping);
  void HandlePingReq(const Address& from, const PingReqMsg& req);
  void HandleAck(const AckMsg& ack);
  void HandleNack(const NackMsg& nack);
  // The reliable fallback ping: true if it is for us.
  bool HandleFallbackPing(const PingMsg& ping) const;

  // Gossip and full-state merge.
  void HandleAlive(const AliveMsg& alive);
  void HandleSuspect(const SuspectMsg& suspect);
  void HandleDead(const DeadMsg& dead);
  void Merge(const std::vector<MemberEntryMsg>& remote);
  // Everything we know, for push-pull (table fields left zero).
  std::vector<MemberEntryMsg> Snapshot() const;

  // Members to gossip to: live ones, and the recently dead (so that they
  // hear of their death and refute if they are in fact alive).
  std::vector<const Member*> GossipTargets(size_t k);
  const Member* RandomLiveMember();

  const MemberList& members() const { return members_; }
  uint32_t self() const { return self_; }
  size_t NumLive() const { return std::max<size_t>(1, members_.live()); }
  int awareness() const { return awareness_.Score(); }
  MembershipStats stats() const {
    MembershipStats s = stats_;
    s.flaps = flaps_.stats();
    return s;
  }
  // Members that flapped (or came back from a false death), most first.
  std::vector<MemberFlaps> Flapping(size_t limit) const { return flaps_.Members(limit); }
  AliveMsg SelfAlive() const;

 private:
  // One probe in flight (the probe loop runs one at a time).
  struct Probe {
    uint32_t seq = 0;
    uint32_t target = 0;
    int64_t start_ns = 0;
    int expected_nacks = 0;
    int nacks = 0;
    bool fallback_ok = false;
    Runtime::TimerId timeout_timer = 0;
    Runtime::TimerId deadline_timer = 0;
  };
  // A ping we forward for someone else's indirect probe.
  struct Relay {
    Address requester;
    uint32_t requester_seq = 0;
    bool want_nack = false;
    Runtime::TimerId timer = 0;
  };

  void ScheduleProbe(int64_t delay_ns);
  void RunProbe();
  void ProbeTimeout(uint32_t seq);
  void ProbeDeadline(uint32_t seq);
  void FinishProbe(bool success);
  void RelayTimeout(uint32_t seq);

  // Counts an alive message ignored as a conflict; true if it may be logged.
  bool Conflict(uint64_t* held);
  // HandleSuspect, telling whether this node's own probe raised it.
  void Suspect(const SuspectMsg& suspect, bool raised_here);
  void StartSuspicion(Member* m, uint32_t from);
  void SuspicionExpired(uint32_t name, int64_t change_ns);
  void Transition(Member* m, MemberState state);
  // Raises this node's incarnation over `accused_incarnation` and says so;
  // `accused`: it answers a suspicion or death notice (not a stale alive).
  void Refute(Member* self, uint32_t accused_incarnation, bool accused);
  void ReapOld();
  GossipMsg SuspectOf(const Member& m, uint32_t from) const;
  const std::string& S(uint32_t id) const { return interner_.Get(id); }
  uint64_t Rand() { return runtime_.Random(); }

  Runtime& runtime_;
  Interner& interner_;
  const MeshConfig& config_;
  MembershipIo& io_;
  Lifetime life_;

  uint32_t self_ = 0;
  MemberList members_;
  Awareness awareness_;
  std::unordered_map<uint32_t, std::unique_ptr<Suspicion>> suspicions_;
  std::optional<Probe> probe_;
  std::unordered_map<uint32_t, Relay> relays_;
  uint32_t next_seq_ = 0;
  Runtime::TimerId probe_timer_ = 0;
  int64_t last_reap_ns_ = 0;
  bool running_ = false;
  bool leaving_ = false;
  MembershipStats stats_;
  FlapTracker flaps_;
  log::RateLimit conflict_log_{10 * kSecond};
};

}  // namespace flowmesh::mesh
