#include <gtest/gtest.h>

#include <random>
#include <set>
#include <unordered_map>

#include "node/flow/flat_map.h"
#include "node/probe/event.h"

namespace flowmesh {
namespace {

struct IdentityHash {
  size_t operator()(uint64_t v) const noexcept { return v; }
};
// Every key in one of 4 homes: long probe runs that wrap, and every erase
// shifts entries back.
struct CollidingHash {
  size_t operator()(uint64_t v) const noexcept { return v % 4; }
};

template <typename Hash>
void CheckAgainstUnorderedMap(uint64_t seed, int ops, uint64_t key_space) {
  FlatMap<uint64_t, uint64_t, Hash> flat;
  std::unordered_map<uint64_t, uint64_t> ref;
  std::mt19937_64 rng(seed);
  for (int op = 0; op < ops; ++op) {
    const uint64_t key = rng() % key_space;
    switch (rng() % 4) {
      case 0:
      case 1: {
        auto [it, inserted] = flat.try_emplace(key);
        EXPECT_EQ(inserted, !ref.count(key)) << "op " << op;
        it->second = op;
        ref[key] = op;
        break;
      }
      case 2: ASSERT_EQ(flat.erase(key), ref.erase(key)) << "op " << op; break;
      case 3: {
        auto it = flat.find(key);
        auto r = ref.find(key);
        ASSERT_EQ(it == flat.end(), r == ref.end()) << "op " << op;
        if (r != ref.end()) {
          EXPECT_EQ(it->first, key);
          EXPECT_EQ(it->second, r->second);
        }
        break;
      }
    }
    ASSERT_EQ(flat.size(), ref.size());
  }
  // Every entry once, each findable.
  std::set<uint64_t> seen;
  for (const auto& [k, v] : flat) {
    EXPECT_TRUE(seen.insert(k).second);
    EXPECT_EQ(ref.at(k), v);
    EXPECT_EQ(flat.find(k)->second, v);
  }
  EXPECT_EQ(seen.size(), ref.size());
}

TEST(FlatMap, AgreesWithUnorderedMapUnderRandomInsertsAndErases) {
  CheckAgainstUnorderedMap<IdentityHash>(1, 200'000, 5'000);
  CheckAgainstUnorderedMap<IdentityHash>(2, 200'000, 100'000);
}

TEST(FlatMap, AgreesWhenEveryKeyCollides) {
  CheckAgainstUnorderedMap<CollidingHash>(3, 20'000, 300);
}

TEST(FlatMap, EraseInAForwardLoopVisitsEveryEntryOnce) {
  FlatMap<uint64_t, int, IdentityHash> m;
  for (uint64_t k = 0; k < 1000; ++k) m[k] = static_cast<int>(k);
  std::multiset<uint64_t> visited;
  for (auto it = m.begin(); it != m.end();) {
    visited.insert(it->first);
    if (it->first % 3 == 0)
      it = m.erase(it);
    else
      ++it;
  }
  EXPECT_EQ(visited.size(), 1000u);
  for (uint64_t k = 0; k < 1000; ++k) {
    EXPECT_EQ(visited.count(k), 1u) << k;
    EXPECT_EQ(m.count(k), k % 3 == 0 ? 0u : 1u) << k;
  }
  EXPECT_EQ(m.size(), 1000u - 334u);
}

TEST(FlatMap, GivesBackMemoryWhenEmptied) {
  FlatMap<uint64_t, uint64_t, IdentityHash> m;
  const size_t empty = m.memory_bytes();
  for (uint64_t k = 0; k < 100'000; ++k) m[k] = k;
  const size_t full = m.memory_bytes();
  // 16-byte entries grown by a quarter, and an 8-byte slot per entry at
  // most 3/4 full (a power of two: here 262,144 slots).
  EXPECT_LE(full, 100'000 * 16 * 5 / 4 + 262'144 * 8);
  for (uint64_t k = 0; k < 99'990; ++k) ASSERT_EQ(m.erase(k), 1u);
  EXPECT_LT(m.memory_bytes(), full / 100);
  for (uint64_t k = 99'990; k < 100'000; ++k) EXPECT_EQ(m.find(k)->second, k);
  m.clear();
  EXPECT_EQ(m.memory_bytes(), empty);
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(m.find(99'995), m.end());
}

TEST(FlatMap, ReservedRoomTakesThatManyWithoutMovingAnEntry) {
  FlatMap<uint64_t, uint64_t, IdentityHash> m;
  m[7] = 7;
  m.reserve(100'001);
  const auto* first = &*m.begin();
  const size_t memory = m.memory_bytes();
  for (uint64_t k = 100; k < 100'100; ++k) m[k] = k;
  EXPECT_EQ(&*m.begin(), first);  // never moved: no growth
  EXPECT_EQ(m.memory_bytes(), memory);
  EXPECT_EQ(m.find(7)->second, 7u);
  for (uint64_t k = 100; k < 100'100; ++k) ASSERT_EQ(m.find(k)->second, k);
  // Less than is held: nothing changes.
  m.reserve(10);
  EXPECT_EQ(m.memory_bytes(), memory);
  // A prefetch reads nothing a lookup would not (and changes nothing).
  m.prefetch(12345);
  EXPECT_EQ(m.size(), 100'001u);
}

TEST(FlatMap, HoldsConnectionKeys) {
  // As the connection table uses it: ConnKeyHash, keys that differ only in a
  // port or the namespace.
  FlatMap<ConnKey, int, ConnKeyHash> m;
  auto key = [](uint32_t netns, uint16_t lport, uint16_t rport) {
    ConnKey k;
    k.netns = netns;
    k.laddr = *IpAddr::Parse("127.0.0.1");
    k.raddr = *IpAddr::Parse("127.0.0.2");
    k.lport = lport;
    k.rport = rport;
    return k;
  };
  int n = 0;
  for (uint32_t ns : {1u, 2u})
    for (uint16_t p = 32768; p < 42768; ++p) {
      m[key(ns, p, 6379)] = n++;
      m[key(ns, 6379, p)] = n++;
    }
  EXPECT_EQ(m.size(), 40'000u);
  EXPECT_EQ(m.find(key(2, 6379, 40000))->second, 10'000 * 2 + (40000 - 32768) * 2 + 1);
  EXPECT_EQ(m.find(key(3, 6379, 40000)), m.end());
}

}  // namespace
}  // namespace flowmesh
