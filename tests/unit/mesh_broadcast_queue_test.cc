// The transmit-limited gossip queue: order, limits, replacement, budget.
#include <gtest/gtest.h>

#include "node/mesh/broadcast_queue.h"

namespace flowmesh::mesh {
namespace {

using Topic = BroadcastQueue::Topic;

EncodedGossip Alive(const std::string& name, uint32_t incarnation) {
  return EncodeGossip(AliveMsg{name, "10.0.0.1:7946", "id", 1, incarnation});
}

// The names carried by what Take returned, in order.
std::vector<std::string> Names(
    const std::vector<std::shared_ptr<const BroadcastQueue::Item>>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::vector<const EncodedGossip*> one{&item->gossip};
    Result<Bytes> bytes = EncodePacket(std::monostate{}, one);
    EXPECT_TRUE(bytes.ok());
    Result<PacketMsg> p = DecodePacket(*bytes);
    EXPECT_TRUE(p.ok());
    out.push_back(std::get<AliveMsg>(p->gossip.at(0)).name);
  }
  return out;
}

TEST(MeshBroadcastQueue, NewestAndLeastSentFirst) {
  BroadcastQueue q;
  q.Queue(1, Topic::kMember, Alive("a", 1));
  q.Queue(2, Topic::kMember, Alive("b", 1));
  q.Queue(3, Topic::kMember, Alive("c", 1));
  // Room for two: the two newest.
  size_t two = Alive("a", 1).packed_bytes * 2 + 1;
  EXPECT_EQ(Names(q.Take(two, 10)), (std::vector<std::string>{"c", "b"}));
  // "a" has been sent least now.
  EXPECT_EQ(Names(q.Take(two, 10)), (std::vector<std::string>{"a", "c"}));
  // A newcomer goes before everything sent already.
  q.Queue(4, Topic::kMember, Alive("d", 1));
  EXPECT_EQ(Names(q.Take(two, 10))[0], "d");
}

TEST(MeshBroadcastQueue, LeavesAfterTheRetransmitLimit) {
  BroadcastQueue q;
  int done = 0;
  q.Queue(1, Topic::kMember, Alive("a", 1), [&] { done++; });
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(q.Take(1350, 3).size(), 1u);
    EXPECT_EQ(done, i == 2 ? 1 : 0);
  }
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.Take(1350, 3).empty());
}

TEST(MeshBroadcastQueue, NewsReplacesOlderNewsOnTheSameSubjectAndTopic) {
  BroadcastQueue q;
  int replaced = 0;
  q.Queue(1, Topic::kMember, Alive("a", 1), [&] { replaced++; });
  q.Queue(1, Topic::kTable, Alive("a-table", 1));
  q.Queue(1, Topic::kMember, Alive("a", 2));
  EXPECT_EQ(replaced, 1);
  EXPECT_EQ(q.size(), 2u);
  auto names = Names(q.Take(1350, 10));
  EXPECT_EQ(names.size(), 2u);
  q.Invalidate(1, Topic::kTable);
  EXPECT_EQ(q.size(), 1u);
}

TEST(MeshBroadcastQueue, RespectsTheByteBudget) {
  BroadcastQueue q;
  for (uint32_t i = 0; i < 100; i++) q.Queue(i, Topic::kMember, Alive("n" + std::to_string(i), 1));
  auto taken = q.Take(kPacketBudgetBytes - 64, 10);
  size_t sum = 0;
  std::vector<const EncodedGossip*> all;
  for (const auto& item : taken) {
    sum += item->gossip.packed_bytes;
    all.push_back(&item->gossip);
  }
  EXPECT_LE(sum, kPacketBudgetBytes - 64);
  EXPECT_GT(taken.size(), 10u);
  EXPECT_LT(taken.size(), 100u);
  // And the estimates hold: the packet encodes within the budget.
  EXPECT_TRUE(EncodePacket(PingMsg{1, "x"}, all).ok());
  EXPECT_TRUE(q.Take(10, 10).empty()) << "nothing fits in 10 bytes";
}

TEST(MeshBroadcastQueue, DropsTheMostRepeatedBeyondItsCapacity) {
  BroadcastQueue q(3);
  q.Queue(1, Topic::kMember, Alive("a", 1));
  q.Take(1350, 10);  // "a" sent once
  q.Queue(2, Topic::kMember, Alive("b", 1));
  q.Queue(3, Topic::kMember, Alive("c", 1));
  q.Queue(4, Topic::kMember, Alive("d", 1));
  EXPECT_EQ(q.size(), 3u);
  auto names = Names(q.Take(1350, 10));
  EXPECT_EQ(std::count(names.begin(), names.end(), "a"), 0);
}

}  // namespace
}  // namespace flowmesh::mesh
