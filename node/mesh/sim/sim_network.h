// An in-process network on a virtual clock: one event queue for the whole
// simulated world, a Runtime and a Transport per host, with packet loss,
// delay, partitions, killed and stalled hosts, byte counters, and a hook to
// capture, drop or replay packets. Deterministic for a given seed, so
// thousands of mesh nodes run reproducibly in one test process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "node/mesh/transport.h"

namespace flowmesh::mesh {

class SimNetwork {
 public:
  struct Counters {
    uint64_t packets_out = 0;
    uint64_t packets_in = 0;
    uint64_t bytes_out = 0;  // packets and exchanges
    uint64_t bytes_in = 0;
    uint64_t packets_lost = 0;  // sent by this host and never delivered
    uint64_t exchanges_out = 0;
    uint64_t exchanges_failed = 0;
  };
  // Sees every packet as it is sent; returning false drops it.
  using PacketHook =
      std::function<bool(const Address& from, const Address& to, const Bytes& packet)>;

  explicit SimNetwork(uint64_t seed);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  // A host reachable at `address`; its runtime and transport live as long as
  // the network.
  void AddHost(const Address& address);
  Runtime& runtime(const Address& address);
  Transport& transport(const Address& address);

  // The virtual clock.
  int64_t NowNs() const { return now_ns_; }
  // Runs every event due up to now + duration, then sets the clock there.
  void RunFor(int64_t duration_ns);
  void RunUntil(int64_t time_ns);
  // Runs until pred() holds (checked every check_ns) or the deadline passes.
  bool RunUntil(const std::function<bool()>& pred, int64_t deadline_ns, int64_t check_ns);
  uint64_t events_run() const { return events_run_; }

  // Faults. Delay is uniform in [min, max] per packet and per exchange leg.
  void SetLoss(double probability) { loss_ = probability; }
  void SetDelay(int64_t min_ns, int64_t max_ns);
  // Hosts in different groups cannot reach each other; hosts not listed form
  // one more group together.
  void Partition(const std::vector<std::vector<Address>>& groups);
  void Heal();
  // The host's process dies: its timers never fire again, its handlers are
  // dropped, its traffic is lost and exchanges to it are refused.
  void Kill(const Address& address);
  // The host is back without a process: start a new node on its runtime and
  // transport.
  void Revive(const Address& address);
  // A slow host: what is delivered to it is handled delivery_lag late, and
  // its timers fire timer_lag late (a starved or paused process).
  void Stall(const Address& address, int64_t delivery_lag_ns, int64_t timer_lag_ns);

  const Counters& counters(const Address& address) const;
  Counters Total() const;
  void ResetCounters();

  void SetPacketHook(PacketHook hook) { hook_ = std::move(hook); }
  // Delivers `packet` to `to` as if `from` sent it now (delayed, never lost).
  void Inject(const Address& from, const Address& to, Bytes packet);

 private:
  class Host;
  class HostRuntime;
  class HostTransport;
  struct Event {
    int64_t at;
    uint64_t seq;
    std::function<void()> fn;
  };
  struct ExchangeState;

  Host& Get(const Address& address) const;
  Host* Lookup(const Address& address) const;
  uint64_t Schedule(int64_t at_ns, std::function<void()> fn);
  uint64_t AddTimer(Host& host, int64_t delay_ns, std::function<void()> fn);
  void CancelTimer(uint64_t id) { pending_timers_.erase(id); }
  bool Reachable(const Host& a, const Host& b) const;
  int64_t Delay();
  double Uniform();
  void SendPacket(Host& from, const Address& to, Bytes packet, bool may_lose);
  void StartExchange(Host& from, const Address& to, Bytes request, int64_t timeout_ns,
                     Transport::ExchangeDone done);

  std::vector<Event> heap_;  // min-heap on (at, seq)
  std::unordered_set<uint64_t> pending_timers_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::unordered_map<Address, Host*> by_address_;
  int64_t now_ns_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t events_run_ = 0;
  uint64_t rng_;
  uint64_t seed_;
  double loss_ = 0;
  int64_t delay_min_ns_ = 1000000;
  int64_t delay_max_ns_ = 5000000;
  PacketHook hook_;
};

}  // namespace flowmesh::mesh
