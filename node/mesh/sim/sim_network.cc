// The simulated network: event loop, per-host runtime and transport, faults.
#include "node/mesh/sim/sim_network.h"

#include <algorithm>
#include <stdexcept>

namespace flowmesh::mesh {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

bool Later(const auto& a, const auto& b) { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }

}  // namespace

class SimNetwork::HostRuntime : public Runtime {
 public:
  HostRuntime(SimNetwork& net, Host& host) : net_(net), host_(host) {}
  int64_t NowNs() const override { return net_.now_ns_; }
  TimerId After(int64_t delay_ns, std::function<void()> fn) override {
    return net_.AddTimer(host_, delay_ns, std::move(fn));
  }
  void Cancel(TimerId id) override { net_.CancelTimer(id); }
  uint64_t Random() override;

 private:
  SimNetwork& net_;
  Host& host_;
};

class SimNetwork::HostTransport : public Transport {
 public:
  HostTransport(SimNetwork& net, Host& host) : net_(net), host_(host) {}
  const Address& LocalAddress() const override;
  void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) override;
  void SendPacket(const Address& to, Bytes packet) override {
    net_.SendPacket(host_, to, std::move(packet), true);
  }
  void Exchange(const Address& to, Bytes request, int64_t timeout_ns, ExchangeDone done) override {
    net_.StartExchange(host_, to, std::move(request), timeout_ns, std::move(done));
  }
  void SetAdmission(size_t head_bytes, Admission admit) override;

 private:
  SimNetwork& net_;
  Host& host_;
};

class SimNetwork::Host {
 public:
  Host(SimNetwork& net, Address address, uint64_t seed)
      : address_(std::move(address)), rng_(seed), runtime_(net, *this), transport_(net, *this) {}

  Address address_;
  uint64_t rng_;
  bool up_ = true;
  uint32_t epoch_ = 0;  // bumped by Kill: timers of a dead process never fire
  int group_ = 0;
  int64_t delivery_lag_ns_ = 0;
  int64_t timer_lag_ns_ = 0;
  Counters counters_;
  Transport::PacketHandler on_packet_;
  Transport::ExchangeHandler on_exchange_;
  size_t head_bytes_ = 0;
  Transport::Admission admit_;
  HostRuntime runtime_;
  HostTransport transport_;
};

uint64_t SimNetwork::HostRuntime::Random() { return SplitMix(host_.rng_); }
const Address& SimNetwork::HostTransport::LocalAddress() const { return host_.address_; }
void SimNetwork::HostTransport::SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) {
  host_.on_packet_ = std::move(on_packet);
  host_.on_exchange_ = std::move(on_exchange);
}

void SimNetwork::HostTransport::SetAdmission(size_t head_bytes, Admission admit) {
  host_.head_bytes_ = admit ? head_bytes : 0;
  host_.admit_ = std::move(admit);
}

// One exchange in flight: whichever of answer, error and timeout comes first
// completes it.
struct SimNetwork::ExchangeState {
  Transport::ExchangeDone done;
  Host* asker = nullptr;
  uint32_t epoch = 0;
  uint64_t timeout_timer = 0;
  bool finished = false;
};

SimNetwork::SimNetwork(uint64_t seed) : rng_(seed), seed_(seed) {}
SimNetwork::~SimNetwork() = default;

void SimNetwork::AddHost(const Address& address) {
  if (by_address_.count(address)) throw std::invalid_argument("duplicate sim host " + address);
  uint64_t host_seed = seed_ ^ (0x51ed27a3ULL * (hosts_.size() + 1));
  hosts_.push_back(std::make_unique<Host>(*this, address, host_seed));
  by_address_[address] = hosts_.back().get();
}

SimNetwork::Host* SimNetwork::Lookup(const Address& address) const {
  auto it = by_address_.find(address);
  return it == by_address_.end() ? nullptr : it->second;
}

SimNetwork::Host& SimNetwork::Get(const Address& address) const {
  Host* h = Lookup(address);
  if (h == nullptr) throw std::invalid_argument("no sim host " + address);
  return *h;
}

Runtime& SimNetwork::runtime(const Address& address) { return Get(address).runtime_; }
Transport& SimNetwork::transport(const Address& address) { return Get(address).transport_; }
bool SimNetwork::Reachable(const Host& a, const Host& b) const { return a.group_ == b.group_; }

uint64_t SimNetwork::Schedule(int64_t at_ns, std::function<void()> fn) {
  uint64_t seq = next_seq_++;
  heap_.push_back(Event{std::max(at_ns, now_ns_), seq, std::move(fn)});
  std::push_heap(heap_.begin(), heap_.end(),
                 [](const Event& a, const Event& b) { return Later(a, b); });
  return seq;
}

uint64_t SimNetwork::AddTimer(Host& host, int64_t delay_ns, std::function<void()> fn) {
  uint32_t epoch = host.epoch_;
  uint64_t id = next_seq_;
  pending_timers_.insert(id);
  Schedule(now_ns_ + std::max<int64_t>(delay_ns, 0) + host.timer_lag_ns_,
           [this, id, &host, epoch, fn = std::move(fn)] {
             if (pending_timers_.erase(id) == 0) return;  // cancelled
             if (host.up_ && host.epoch_ == epoch) fn();
           });
  return id;
}

void SimNetwork::RunUntil(int64_t time_ns) {
  auto later = [](const Event& a, const Event& b) { return Later(a, b); };
  while (!heap_.empty() && heap_.front().at <= time_ns) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    Event ev = std::move(heap_.back());
    heap_.pop_back();
    now_ns_ = ev.at;
    events_run_++;
    ev.fn();
  }
  now_ns_ = std::max(now_ns_, time_ns);
}

void SimNetwork::RunFor(int64_t duration_ns) { RunUntil(now_ns_ + duration_ns); }

bool SimNetwork::RunUntil(const std::function<bool()>& pred, int64_t deadline_ns,
                          int64_t check_ns) {
  while (true) {
    if (pred()) return true;
    if (now_ns_ >= deadline_ns) return false;
    RunUntil(std::min(deadline_ns, now_ns_ + check_ns));
  }
}

double SimNetwork::Uniform() { return static_cast<double>(SplitMix(rng_) >> 11) * 0x1.0p-53; }

int64_t SimNetwork::Delay() {
  if (delay_max_ns_ <= delay_min_ns_) return delay_min_ns_;
  return delay_min_ns_ +
         static_cast<int64_t>(SplitMix(rng_) %
                              static_cast<uint64_t>(delay_max_ns_ - delay_min_ns_ + 1));
}

void SimNetwork::SetDelay(int64_t min_ns, int64_t max_ns) {
  delay_min_ns_ = min_ns;
  delay_max_ns_ = std::max(min_ns, max_ns);
}

void SimNetwork::Partition(const std::vector<std::vector<Address>>& groups) {
  for (auto& h : hosts_) h->group_ = 0;
  for (size_t g = 0; g < groups.size(); g++)
    for (const Address& a : groups[g]) Get(a).group_ = static_cast<int>(g + 1);
}

void SimNetwork::Heal() {
  for (auto& h : hosts_) h->group_ = 0;
}

void SimNetwork::Kill(const Address& address) {
  Host& h = Get(address);
  h.up_ = false;
  h.epoch_++;
  h.on_packet_ = nullptr;
  h.on_exchange_ = nullptr;
  h.admit_ = nullptr;
}

void SimNetwork::Revive(const Address& address) { Get(address).up_ = true; }

void SimNetwork::Stall(const Address& address, int64_t delivery_lag_ns, int64_t timer_lag_ns) {
  Host& h = Get(address);
  h.delivery_lag_ns_ = delivery_lag_ns;
  h.timer_lag_ns_ = timer_lag_ns;
}

const SimNetwork::Counters& SimNetwork::counters(const Address& address) const {
  return Get(address).counters_;
}

SimNetwork::Counters SimNetwork::Total() const {
  Counters t;
  for (const auto& h : hosts_) {
    const Counters& c = h->counters_;
    t.packets_out += c.packets_out;
    t.packets_in += c.packets_in;
    t.bytes_out += c.bytes_out;
    t.bytes_in += c.bytes_in;
    t.packets_lost += c.packets_lost;
    t.exchanges_out += c.exchanges_out;
    t.exchanges_failed += c.exchanges_failed;
  }
  return t;
}

void SimNetwork::ResetCounters() {
  for (auto& h : hosts_) h->counters_ = Counters{};
}

void SimNetwork::SendPacket(Host& from, const Address& to, Bytes packet, bool may_lose) {
  from.counters_.packets_out++;
  from.counters_.bytes_out += packet.size();
  Host* dest = Lookup(to);
  bool lost = dest == nullptr || !Reachable(from, *dest) || (may_lose && Uniform() < loss_);
  if (!lost && hook_ && may_lose) lost = !hook_(from.address_, to, packet);
  if (lost) {
    from.counters_.packets_lost++;
    return;
  }
  Schedule(now_ns_ + Delay() + dest->delivery_lag_ns_,
           [dest, src = from.address_, packet = std::move(packet)] {
             if (!dest->up_ || !dest->on_packet_) return;
             dest->counters_.packets_in++;
             dest->counters_.bytes_in += packet.size();
             dest->on_packet_(src, packet);
           });
}

void SimNetwork::Inject(const Address& from, const Address& to, Bytes packet) {
  Host* dest = Lookup(to);
  if (dest == nullptr) return;
  Schedule(now_ns_ + Delay() + dest->delivery_lag_ns_, [dest, from, packet = std::move(packet)] {
    if (!dest->up_ || !dest->on_packet_) return;
    dest->counters_.packets_in++;
    dest->counters_.bytes_in += packet.size();
    dest->on_packet_(from, packet);
  });
}

void SimNetwork::StartExchange(Host& from, const Address& to, Bytes request, int64_t timeout_ns,
                               Transport::ExchangeDone done) {
  auto st = std::make_shared<ExchangeState>();
  st->done = std::move(done);
  st->asker = &from;
  st->epoch = from.epoch_;
  from.counters_.exchanges_out++;
  from.counters_.bytes_out += request.size();
  // Completion is delivered to the asker like a packet would be: late if it
  // is stalled, never if its process died meanwhile.
  auto finish = [this, st](Result<Bytes> result) {
    if (st->finished) return;
    st->finished = true;
    CancelTimer(st->timeout_timer);
    Host& a = *st->asker;
    if (!result.ok()) a.counters_.exchanges_failed++;
    if (a.up_ && a.epoch_ == st->epoch) std::exchange(st->done, nullptr)(std::move(result));
  };
  st->timeout_timer =
      AddTimer(from, timeout_ns, [finish] { finish(Unavailable("exchange timed out")); });
  Host* dest = Lookup(to);
  if (dest == nullptr || !Reachable(from, *dest)) return;  // nothing answers: timeout
  int64_t asker_lag = from.delivery_lag_ns_;
  Schedule(now_ns_ + Delay() + dest->delivery_lag_ns_, [this, st, dest, finish, asker_lag,
                                                        src = from.address_,
                                                        request = std::move(request)] {
    Host& asker = *st->asker;
    if (!Reachable(asker, *dest)) return;
    if (!dest->up_ || !dest->on_exchange_) {
      Schedule(now_ns_ + Delay() + asker_lag,
               [finish] { finish(Unavailable("exchange refused: nobody listening")); });
      return;
    }
    dest->counters_.bytes_in += request.size();
    // As the Asio transport does between the head and the body.
    if (dest->admit_) {
      Status admitted =
          request.size() < dest->head_bytes_
              ? InvalidArgument("request shorter than its head")
              : dest->admit_(src, std::span<const uint8_t>(request).first(dest->head_bytes_),
                             request.size());
      if (!admitted.ok()) {
        Schedule(now_ns_ + Delay() + asker_lag, [finish, admitted] {
          finish(Unavailable("exchange refused: " + admitted.message()));
        });
        return;
      }
    }
    uint32_t dest_epoch = dest->epoch_;
    dest->on_exchange_(src, request, [this, st, dest, dest_epoch, finish](Result<Bytes> response) {
      // An answer from a process that died meanwhile never leaves.
      if (!dest->up_ || dest->epoch_ != dest_epoch) return;
      if (response.ok()) dest->counters_.bytes_out += response->size();
      Schedule(now_ns_ + Delay() + st->asker->delivery_lag_ns_,
               [this, st, dest, finish, response = std::move(response)]() mutable {
                 Host& a = *st->asker;
                 if (!Reachable(a, *dest)) return;  // lost with the link: timeout
                 if (response.ok()) a.counters_.bytes_in += response->size();
                 if (!response.ok())
                   finish(Unavailable("exchange reset: " + response.status().message()));
                 else
                   finish(std::move(response));
               });
    });
  });
}

}  // namespace flowmesh::mesh
