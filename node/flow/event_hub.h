// Fan-out of connection events to live watchers (meshctl watch). Each
// watcher has a bounded queue: a slow watcher loses its own events, counted
// and reported to it, and never slows the probe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "node/probe/event.h"

namespace flowmesh {

class Subscriber {
 public:
  explicit Subscriber(size_t capacity) : capacity_(capacity) {}

  // Called by the hub on the probe's thread. Returns false if the queue was
  // full and the event was dropped.
  bool Push(const ConnEvent& event);
  // Moves up to `max` queued events into `out`; returns how many.
  size_t Drain(std::vector<ConnEvent>* out, size_t max);
  // Events dropped because this watcher fell behind.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // `fn` runs on the probe's thread when the queue goes from empty to
  // non-empty; it must only hand off (e.g. asio::post), never block.
  void SetNotify(std::function<void()> fn);
  // After Close the hub forgets this subscriber.
  void Close() { closed_.store(true); }
  bool closed() const { return closed_.load(); }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::deque<ConnEvent> queue_;
  std::function<void()> notify_;
  std::atomic<uint64_t> dropped_{0};
  std::atomic<bool> closed_{false};
};

class EventHub {
 public:
  std::shared_ptr<Subscriber> Subscribe(size_t capacity = 65536);
  // Delivers to every open subscriber; costs one atomic load when none.
  void Publish(const ConnEvent& event);
  // Watchers still connected (a closed one is forgotten at the next Publish,
  // but not counted from the moment it closes).
  size_t subscriber_count() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Subscriber>> subs_;
  std::atomic<size_t> count_{0};
};

}  // namespace flowmesh
