// CompareMaps: edges that appeared, disappeared, or changed by more than the
// factor either way, by connections, else by bytes.
#include "node/look/map_compare.h"

#include <gtest/gtest.h>

namespace flowmesh {
namespace {

MapEdge Edge(const char* from, const char* to, uint64_t connections, uint64_t bytes = 0) {
  MapEdge e;
  e.from = from;
  e.to = to;
  e.endpoint = *Endpoint::Parse("10.0.0.2:80");
  e.stats.connections = connections;
  e.stats.bytes_tx = bytes;
  return e;
}

MapGraph Graph(std::vector<MapEdge> edges) {
  MapGraph g;
  g.edges = std::move(edges);
  return g;
}

TEST(MapCompare, AppearedDisappearedAndChangedInThatOrder) {
  MapGraph before = Graph({Edge("a", "b", 10), Edge("a", "c", 10), Edge("gone", "b", 4)});
  MapGraph now = Graph({Edge("a", "b", 31), Edge("a", "c", 12), Edge("new", "b", 1)});
  std::vector<MapEdgeChange> c = CompareMaps(before, now, 2.0);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].kind, MapChangeKind::kAppeared);
  EXPECT_EQ(c[0].edge.from, "new");
  EXPECT_FALSE(c[0].before.has_value());
  EXPECT_EQ(c[1].kind, MapChangeKind::kDisappeared);
  EXPECT_EQ(c[1].edge.from, "gone");
  ASSERT_TRUE(c[1].before.has_value());
  EXPECT_EQ(c[1].before->connections, 4u);
  EXPECT_EQ(c[2].kind, MapChangeKind::kChanged);
  EXPECT_EQ(c[2].edge.to, "b");
  EXPECT_DOUBLE_EQ(c[2].factor, 3.1);
  EXPECT_EQ(c[2].before->connections, 10u);
  EXPECT_EQ(c[2].edge.stats.connections, 31u) << "this window's edge";
}

TEST(MapCompare, ShrinkingCountsToo) {
  std::vector<MapEdgeChange> c =
      CompareMaps(Graph({Edge("a", "b", 100)}), Graph({Edge("a", "b", 20)}), 2.0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].factor, 0.2);
  // Down to no connection at all (the edge remains: it moved bytes).
  c = CompareMaps(Graph({Edge("a", "b", 5, 10)}), Graph({Edge("a", "b", 0, 10)}), 2.0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].factor, 0.0);
}

TEST(MapCompare, WithinTheFactorIsNoChange) {
  EXPECT_TRUE(CompareMaps(Graph({Edge("a", "b", 10)}), Graph({Edge("a", "b", 20)}), 2.0).empty());
  EXPECT_TRUE(CompareMaps(Graph({Edge("a", "b", 10)}), Graph({Edge("a", "b", 5)}), 2.0).empty());
  EXPECT_EQ(CompareMaps(Graph({Edge("a", "b", 10)}), Graph({Edge("a", "b", 21)}), 2.0).size(), 1u);
  // A factor under 1 means the same as its inverse.
  EXPECT_EQ(CompareMaps(Graph({Edge("a", "b", 10)}), Graph({Edge("a", "b", 21)}), 0.5).size(), 1u);
}

TEST(MapCompare, EqualCountsCompareBytesButNotFromZeroBytes) {
  auto c = CompareMaps(Graph({Edge("a", "b", 3, 1000)}), Graph({Edge("a", "b", 3, 5000)}), 2.0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].factor, 5.0);
  EXPECT_TRUE(
      CompareMaps(Graph({Edge("a", "b", 3, 0)}), Graph({Edge("a", "b", 3, 5000)}), 2.0).empty());
  // From no connections to some: changed, with a finite factor (the count).
  c = CompareMaps(Graph({Edge("a", "b", 0, 10)}), Graph({Edge("a", "b", 7, 10)}), 2.0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].factor, 7.0);
}

TEST(MapCompare, TheEndpointIsPartOfTheKey) {
  MapEdge other = Edge("a", "b", 10);
  other.endpoint = *Endpoint::Parse("10.0.0.2:81");
  auto c = CompareMaps(Graph({Edge("a", "b", 10)}), Graph({other}), 2.0);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].kind, MapChangeKind::kAppeared);
  EXPECT_EQ(c[1].kind, MapChangeKind::kDisappeared);
}

TEST(MapCompare, IdenticalWindowsHaveNoChanges) {
  MapGraph g = Graph({Edge("a", "b", 10, 100), Edge("c", "b", 1)});
  EXPECT_TRUE(CompareMaps(g, g, 2.0).empty());
  EXPECT_TRUE(CompareMaps(MapGraph{}, MapGraph{}, 2.0).empty());
}

}  // namespace
}  // namespace flowmesh
