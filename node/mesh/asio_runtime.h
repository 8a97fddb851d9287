// The mesh Runtime in meshd: real monotonic time and timers on the mesh's one
// asio::io_context, so every protocol callback runs on that context's thread.
#pragma once

#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>

#include "node/mesh/transport.h"

namespace flowmesh::mesh {

class AsioRuntime : public Runtime {
 public:
  explicit AsioRuntime(asio::io_context& io);
  // Cancels every pending timer; none of their functions runs afterwards.
  ~AsioRuntime() override;
  AsioRuntime(const AsioRuntime&) = delete;
  AsioRuntime& operator=(const AsioRuntime&) = delete;

  int64_t NowNs() const override;
  TimerId After(int64_t delay_ns, std::function<void()> fn) override;
  void Cancel(TimerId id) override;
  uint64_t Random() override;

  size_t pending_timers() const;

  struct State;

 private:
  asio::io_context& io_;
  std::shared_ptr<State> state_;
  std::mt19937_64 rng_;
};

}  // namespace flowmesh::mesh
