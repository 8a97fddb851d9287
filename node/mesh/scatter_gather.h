// Ask several members at once and gather their answers: what key rotation
// (every live member) and look (every member of one level of the walk, through
// the sender meshd wires) both do.
#pragma once

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
template <typename Request, typename Reply>
class ScatterGather {
 public:
  using Done = std::function<void(Result<Reply>)>;
  using Sender = std::function<void(const Address& to, Request request, int64_t timeout_ns,
                                    Done done)>;
  struct Target {
    Address to;
    Request request;
  };

  static std::vector<std::optional<Result<Reply>>> Run(
      std::vector<Target> targets, const Sender& send, int64_t timeout_ns,
      const std::function<void()>& meanwhile = nullptr) {
    // Shared with the callbacks: one that comes after the wait gave up writes
    // here, not into a returned vector.
    struct Pending {
      std::mutex mu;
      std::condition_variable cv;
      size_t waiting = 0;
      std::vector<std::optional<Result<Reply>>> replies;
    };
    auto pending = std::make_shared<Pending>();
    pending->replies.resize(targets.size());
    pending->waiting = targets.size();
    for (size_t i = 0; i < targets.size(); i++) {
      send(targets[i].to, std::move(targets[i].request), timeout_ns,
           [pending, i](Result<Reply> reply) {
             std::lock_guard lock(pending->mu);
             if (pending->replies[i].has_value()) return;  // a sender that answers twice
             pending->replies[i].emplace(std::move(reply));
             pending->waiting--;
             pending->cv.notify_all();
           });
    }
    if (meanwhile) meanwhile();
    std::unique_lock lock(pending->mu);
    auto limit = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns) +
                 std::chrono::seconds(1);
    pending->cv.wait_until(lock, limit, [&] { return pending->waiting == 0; });
    return pending->replies;
  }
};

}  // namespace flowmesh::mesh
