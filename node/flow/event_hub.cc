// Watcher queues and their fan-out.
#include "node/flow/event_hub.h"

#include <algorithm>

namespace flowmesh {

bool Subscriber::Push(const ConnEvent& event) {
  std::function<void()> notify;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_.push_back(event);
    if (queue_.size() == 1) notify = notify_;
  }
  if (notify) notify();
  return true;
}

size_t Subscriber::Drain(std::vector<ConnEvent>* out, size_t max) {
  std::lock_guard lock(mu_);
  size_t n = std::min(max, queue_.size());
  out->insert(out->end(), queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
  return n;
}

void Subscriber::SetNotify(std::function<void()> fn) {
  std::function<void()> now;
  {
    std::lock_guard lock(mu_);
    notify_ = std::move(fn);
    if (!queue_.empty()) now = notify_;
  }
  if (now) now();
}

std::shared_ptr<Subscriber> EventHub::Subscribe(size_t capacity) {
  auto sub = std::make_shared<Subscriber>(capacity);
  std::lock_guard lock(mu_);
  subs_.push_back(sub);
  count_.store(subs_.size(), std::memory_order_relaxed);
  return sub;
}

size_t EventHub::subscriber_count() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(subs_.begin(), subs_.end(),
                                           [](const auto& s) { return !s->closed(); }));
}

void EventHub::Publish(const ConnEvent& event) {
  if (count_.load(std::memory_order_relaxed) == 0) return;
  std::lock_guard lock(mu_);
  auto closed = std::remove_if(subs_.begin(), subs_.end(),
                               [](const std::shared_ptr<Subscriber>& s) { return s->closed(); });
  subs_.erase(closed, subs_.end());
  count_.store(subs_.size(), std::memory_order_relaxed);
  for (auto& s : subs_) s->Push(event);
}

}  // namespace flowmesh
