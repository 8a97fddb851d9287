// Timers as one asio::steady_timer each, found by id so Cancel is exact.
#include "node/mesh/asio_runtime.h"

#include <algorithm>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <unordered_map>

namespace flowmesh::mesh {

struct AsioRuntime::State {
  struct Timer {
    asio::steady_timer timer;
    std::function<void()> fn;
  };
  TimerId next_id = 1;
  std::unordered_map<TimerId, std::unique_ptr<Timer>> timers;
};

AsioRuntime::AsioRuntime(asio::io_context& io) : io_(io), state_(std::make_shared<State>()) {
  // Not a secret: protocol randomness (peer choice, jitter) only needs to
  // differ between nodes and runs. Cryptographic randomness comes from OpenSSL.
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  rng_.seed(seq);
}

AsioRuntime::~AsioRuntime() {
  // Handlers hold a weak_ptr to the state, so those already queued find it
  // gone; destroying the timers cancels the rest.
  state_->timers.clear();
}

int64_t AsioRuntime::NowNs() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Runtime::TimerId AsioRuntime::After(int64_t delay_ns, std::function<void()> fn) {
  TimerId id = state_->next_id++;
  auto timer = std::make_unique<State::Timer>(State::Timer{asio::steady_timer(io_), std::move(fn)});
  // Clamped so now + delay cannot overflow the clock's representation.
  constexpr int64_t kMaxDelayNs = int64_t{365} * 24 * 3600 * 1'000'000'000;
  timer->timer.expires_after(
      std::chrono::nanoseconds(std::clamp<int64_t>(delay_ns, 0, kMaxDelayNs)));
  std::weak_ptr<State> weak = state_;
  // async_wait never completes inline, even for a zero delay.
  timer->timer.async_wait([weak, id](const asio::error_code&) {
    // Not the error code: a timer cancelled after it expired still completes
    // with success, so the map decides whether it is live.
    auto state = weak.lock();
    if (!state) return;
    auto it = state->timers.find(id);
    if (it == state->timers.end()) return;
    std::function<void()> fn = std::move(it->second->fn);
    state->timers.erase(it);
    fn();
  });
  state_->timers.emplace(id, std::move(timer));
  return id;
}

void AsioRuntime::Cancel(TimerId id) { state_->timers.erase(id); }

uint64_t AsioRuntime::Random() { return rng_(); }

size_t AsioRuntime::pending_timers() const { return state_->timers.size(); }

}  // namespace flowmesh::mesh
