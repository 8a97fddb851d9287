// Ask several members at once and gather their answers: what key rotation
// (every live member) and look (every member of one level of the walk, through
// the sender meshd wires) both do.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "node/common/status.h"
#include "node/mesh/transport.h"

namespace flowmesh::mesh {

// Sends every request through `send`, runs `meanwhile` (work of the caller's
// own, while the requests are out), then waits for every answer or for
// `timeout_ns` plus a second. The sender times each request out itself; the
// extra second only guards against a callback that never comes, whose slot
// is then nullopt (the caller says what that means to its user). Answers come
// in the targets' order; `done` may run on any thread, or never.
//
// With ScatterLimits (map: a thousand members): at most `max_in_flight`
// requests out at once, the next sent when one completes, and nothing sent
// after `total_timeout_ns`: those targets get kDeadlineError, and every
// request's timeout is cut to what is left of it.
struct ScatterLimits {
  size_t max_in_flight = 0;      // 0 = all at once
  int64_t total_timeout_ns = 0;  // 0 = timeout_ns per wave of requests
  // Filled in, when set: each target's time from send to reply (0: none).
  std::vector<int64_t>* latency_ns = nullptr;
};
inline constexpr const char* kDeadlineError = "the deadline has passed before it was asked";

template <typename Request, typename Reply>
class ScatterGather {
 public:
  using Done = std::function<void(Result<Reply>)>;
  using Sender =
      std::function<void(const Address& to, Request request, int64_t timeout_ns, Done done)>;
  struct Target {
    Address to;
    Request request;
  };

  static std::vector<std::optional<Result<Reply>>> Run(
      std::vector<Target> targets, const Sender& send, int64_t timeout_ns,
      const std::function<void()>& meanwhile = nullptr, ScatterLimits limits = {}) {
    const size_t n = targets.size();
    const size_t window = limits.max_in_flight == 0 ? n : std::min(limits.max_in_flight, n);
    const int64_t waves = window == 0 ? 1 : static_cast<int64_t>((n + window - 1) / window);
    const int64_t total =
        limits.total_timeout_ns > 0 ? limits.total_timeout_ns : timeout_ns * waves;
    auto pending = std::make_shared<Pending>();
    pending->send = send;  // a copy: a late callback may still send while the caller returns
    pending->timeout_ns = timeout_ns;
    pending->cut = limits.total_timeout_ns > 0;
    pending->replies.resize(n);
    pending->waiting = n;
    pending->targets = std::move(targets);
    pending->room = window;
    pending->deadline = Clock::now() + std::chrono::nanoseconds(total);
    pending->sent_at.resize(n);
    pending->latency_ns.resize(n);
    {
      std::unique_lock lock(pending->mu);
      Pump(pending, lock);
    }
    if (meanwhile) meanwhile();
    std::unique_lock lock(pending->mu);
    // The extra second only guards against a callback that never comes.
    pending->cv.wait_until(lock, pending->deadline + std::chrono::seconds(1),
                           [&] { return pending->waiting == 0; });
    pending->closed = true;
    for (size_t i = pending->next; i < n; i++) Record(*pending, i, DeadlineError());
    if (limits.latency_ns != nullptr) *limits.latency_ns = pending->latency_ns;
    return pending->replies;
  }

 private:
  using Clock = std::chrono::steady_clock;
  // Shared with the callbacks: one that comes after the wait gave up writes
  // here, not into a returned vector, and sends nothing more.
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    Sender send;
    int64_t timeout_ns = 0;
    bool cut = false;  // requests' timeouts end with the whole scatter's
    size_t waiting = 0;
    size_t next = 0;       // the next target to send
    size_t room = 0;       // sends the limit allows now
    bool sending = false;  // a thread is in Pump's loop
    bool closed = false;   // the caller has its replies
    std::vector<std::optional<Result<Reply>>> replies;
    std::vector<Target> targets;
    std::vector<Clock::time_point> sent_at;
    std::vector<int64_t> latency_ns;
    Clock::time_point deadline;
  };

  static Result<Reply> DeadlineError() {
    return Result<Reply>(Status(Status::Code::kUnavailable, kDeadlineError));
  }

  static bool Record(Pending& p, size_t i, Result<Reply> reply) {
    if (p.replies[i].has_value()) return false;  // a sender that answers twice
    p.replies[i].emplace(std::move(reply));
    if (p.sent_at[i] != Clock::time_point{})
      p.latency_ns[i] =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - p.sent_at[i]).count();
    p.waiting--;
    p.cv.notify_all();
    return true;
  }

  // Sends while the limit has room; a thread that finds another one in this
  // loop leaves its room to it (the loop rereads `room` after each send), so
  // a completion on the mesh thread never waits and an inline one never
  // recurses. Entered and left with the lock held.
  static void Pump(const std::shared_ptr<Pending>& p, std::unique_lock<std::mutex>& lock) {
    if (p->sending) return;
    p->sending = true;
    while (p->room > 0 && p->next < p->targets.size() && !p->closed) {
      size_t i = p->next++;
      int64_t left =
          std::chrono::duration_cast<std::chrono::nanoseconds>(p->deadline - Clock::now()).count();
      if (left <= 0) {
        Record(*p, i, DeadlineError());
        continue;
      }
      p->room--;
      p->sent_at[i] = Clock::now();
      Target t = std::move(p->targets[i]);
      std::weak_ptr<Pending> weak = p;
      lock.unlock();
      p->send(t.to, std::move(t.request), p->cut ? std::min(p->timeout_ns, left) : p->timeout_ns,
              [weak, i](Result<Reply> reply) {
                std::shared_ptr<Pending> p = weak.lock();
                if (!p) return;
                std::unique_lock lock(p->mu);
                if (!Record(*p, i, std::move(reply))) return;
                p->room++;
                Pump(p, lock);
              });
      lock.lock();
    }
    p->sending = false;
  }
};

}  // namespace flowmesh::mesh
