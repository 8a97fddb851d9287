// Transmit-limited gossip queue.
#include "node/mesh/broadcast_queue.h"

#include <cmath>

namespace flowmesh::mesh {

int RetransmitLimit(int retransmit_mult, size_t n) {
  int scale = static_cast<int>(std::ceil(std::log10(static_cast<double>(n) + 1.0)));
  return retransmit_mult * scale;
}

BroadcastQueue::~BroadcastQueue() {
  // Callbacks may reach back into their owner, which is going away too.
  for (auto& [key, item] : by_key_) item->on_done = nullptr;
}

void BroadcastQueue::Link(Item* item) {
  if (by_transmits_.size() <= static_cast<size_t>(item->transmits))
    by_transmits_.resize(item->transmits + 1);
  List& l = by_transmits_[item->transmits];
  item->prev = l.tail;
  item->next = nullptr;
  (l.tail ? l.tail->next : l.head) = item;
  l.tail = item;
}

void BroadcastQueue::Unlink(Item* item) {
  List& l = by_transmits_[item->transmits];
  (item->prev ? item->prev->next : l.head) = item->next;
  (item->next ? item->next->prev : l.tail) = item->prev;
  item->prev = item->next = nullptr;
}

void BroadcastQueue::Remove(uint64_t key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return;
  std::shared_ptr<Item> item = std::move(it->second);
  by_key_.erase(it);
  Unlink(item.get());
  if (item->on_done) item->on_done();
}

void BroadcastQueue::Queue(uint32_t subject, Topic topic, EncodedGossip gossip,
                           std::function<void()> on_done) {
  uint64_t key = Key(subject, topic);
  Remove(key);
  auto item = std::make_shared<Item>();
  item->gossip = std::move(gossip);
  item->key = key;
  item->on_done = std::move(on_done);
  Link(item.get());
  by_key_.emplace(key, std::move(item));
  // Over the cap, the most repeated (then oldest) message goes: push-pull
  // repairs whatever it would have told.
  while (by_key_.size() > max_items_) {
    for (size_t t = by_transmits_.size(); t-- > 0;) {
      if (by_transmits_[t].head != nullptr) {
        Remove(by_transmits_[t].head->key);
        break;
      }
    }
  }
}

void BroadcastQueue::Invalidate(uint32_t subject, Topic topic) { Remove(Key(subject, topic)); }

std::vector<std::shared_ptr<const BroadcastQueue::Item>> BroadcastQueue::Take(size_t budget_bytes,
                                                                              int limit) {
  // The smallest message is ~25 bytes; looking further through a long queue
  // for ones that fit only burns time.
  constexpr size_t kMinUseful = 24;
  constexpr int kMaxSkips = 8;
  int skips = 0;
  std::vector<Item*> picked;
  for (size_t t = 0; t < by_transmits_.size(); t++) {
    for (Item* item = by_transmits_[t].tail; item != nullptr; item = item->prev) {
      if (budget_bytes < kMinUseful || skips > kMaxSkips) break;
      if (item->gossip.packed_bytes > budget_bytes) {
        skips++;
        continue;
      }
      budget_bytes -= item->gossip.packed_bytes;
      picked.push_back(item);
    }
  }
  std::vector<std::shared_ptr<const Item>> out;
  out.reserve(picked.size());
  for (Item* item : picked) out.push_back(item->shared_from_this());
  // Oldest first, so that those sent together keep their order in the next
  // list, newest at its tail.
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    Item* item = *it;
    if (item->transmits + 1 >= limit) {
      Remove(item->key);
      continue;
    }
    Unlink(item);
    item->transmits++;
    Link(item);
  }
  return out;
}

}  // namespace flowmesh::mesh
