// memberlist's TransmitLimitedQueue: gossip waiting to be piggybacked. Each
// message goes out at most RetransmitLimit(N) times; the fewest-sent go
// first, newest first among equals, so fresh news spreads before old news is
// repeated; a new message about a subject replaces the queued one it
// supersedes. Kept as one list per transmit count, which makes a pick O(1)
// (a packet takes a dozen messages from queues of thousands during joins).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "node/mesh/wire.h"

namespace flowmesh::mesh {

// retransmit_mult * ceil(log10(n + 1)) (memberlist retransmitLimit).
int RetransmitLimit(int retransmit_mult, size_t n);

class BroadcastQueue {
 public:
  // What a message is about, so that news about a member replaces older news
  // about it, and a table notice replaces the older notice of that table.
  enum class Topic : uint8_t { kMember = 0, kTable = 1 };

  struct Item : std::enable_shared_from_this<Item> {
    EncodedGossip gossip;
    uint64_t key = 0;
    int transmits = 0;
    std::function<void()> on_done;  // when sent `limit` times or replaced
    Item* prev = nullptr;           // in the list of its transmit count
    Item* next = nullptr;
  };

  explicit BroadcastQueue(size_t max_items = 8192) : max_items_(max_items) {}
  ~BroadcastQueue();
  BroadcastQueue(const BroadcastQueue&) = delete;
  BroadcastQueue& operator=(const BroadcastQueue&) = delete;

  void Queue(uint32_t subject, Topic topic, EncodedGossip gossip,
             std::function<void()> on_done = nullptr);
  // Drops any queued message on (subject, topic), running its on_done.
  void Invalidate(uint32_t subject, Topic topic);

  // Picks messages whose estimated sizes fit in budget_bytes and counts one
  // transmit for each; those that reached `limit` leave the queue (the
  // returned pointers keep them alive for encoding).
  std::vector<std::shared_ptr<const Item>> Take(size_t budget_bytes, int limit);

  size_t size() const { return by_key_.size(); }
  bool empty() const { return by_key_.empty(); }

 private:
  // Messages enter at the tail when queued or moved up by a send, and a
  // send takes from the tail: among messages sent equally often the one
  // queued (or last sent) most recently goes first. memberlist orders
  // strictly by age there; keeping it exact costs a sorted insert per send,
  // which a join storm of thousands of queued messages cannot afford.
  struct List {
    Item* head = nullptr;
    Item* tail = nullptr;
  };
  static uint64_t Key(uint32_t subject, Topic topic) {
    return (uint64_t{subject} << 8) | static_cast<uint8_t>(topic);
  }
  void Link(Item* item);
  void Unlink(Item* item);
  void Remove(uint64_t key);

  size_t max_items_;
  std::unordered_map<uint64_t, std::shared_ptr<Item>> by_key_;
  std::vector<List> by_transmits_;
};

}  // namespace flowmesh::mesh
