// CompareMaps: edges that appeared, disappeared, or changed by more than the
// factor either way, by connections or bytes per window length.
#include "node/look/map_compare.h"

#include <gtest/gtest.h>

#include "node/look/map_merge.h"

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

// The factor of the one change between two single-edge maps; -1: none.
double Factor(uint64_t connections_before, uint64_t bytes_before, uint64_t connections_after,
              uint64_t bytes_after) {
  std::vector<MapEdgeChange> c =
      CompareMaps(Graph({Edge("a", "b", connections_before, bytes_before)}),
                  Graph({Edge("a", "b", connections_after, bytes_after)}), 2.0);
  return c.empty() ? -1 : c.size() == 1 ? c[0].factor : -2;
}

TEST(MapCompare, EqualCountsCompareBytesAndAZeroBaselineCountsAsOne) {
  EXPECT_DOUBLE_EQ(Factor(3, 1000, 3, 5000), 5.0);
  EXPECT_DOUBLE_EQ(Factor(3, 0, 3, 5000), 5000.0) << "bytes from none are news";
  // From no connections to some: changed, with a finite factor (the count).
  EXPECT_DOUBLE_EQ(Factor(0, 10, 7, 10), 7.0);
  // ... held to the factor like any other: 0 -> 1 connection is not news.
  EXPECT_DOUBLE_EQ(Factor(0, 10, 1, 10), -1);
}

TEST(MapCompare, BytesCountWhenConnectionsDifferAndTheFurtherMeasureIsShown) {
  // 100 -> 101 connections, 1 MB -> 1 GB: changed, by the bytes.
  EXPECT_DOUBLE_EQ(Factor(100, 1'000'000, 101, 1'000'000'000), 1000.0);
  // Connections x10, bytes x3: the connections are shown.
  EXPECT_DOUBLE_EQ(Factor(10, 1000, 100, 3000), 10.0);
  // Connections x3, bytes /10: the bytes, shrinking.
  EXPECT_DOUBLE_EQ(Factor(10, 1000, 30, 100), 0.1);
}

TEST(MapCompare, CountsArePerWindowLength) {
  constexpr int64_t kMin = 60'000'000'000, kT = 1'000'000 * kMin;
  MapGraph hour = Graph({Edge("a", "b", 60, 6000)});
  hour.window = TimeWindow{kT - 60 * kMin, kT};
  MapGraph ten = Graph({Edge("a", "b", 10, 1000)});  // the same rate over 10 minutes
  ten.window = TimeWindow{kT + 50 * kMin, kT + 60 * kMin};
  EXPECT_TRUE(CompareMaps(hour, ten, 2.0).empty()) << "a sixth of the time, a sixth of the counts";
  ten.edges[0].stats.connections = 60;
  ten.edges[0].stats.bytes_tx = 6000;
  auto c = CompareMaps(hour, ten, 2.0);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_DOUBLE_EQ(c[0].factor, 6.0);
  // Open windows (since the start, until now) are not scaled.
  hour.window = TimeWindow{};
  EXPECT_TRUE(CompareMaps(hour, Graph({Edge("a", "b", 60, 6000)}), 2.0).empty());
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

// Depth 1 around "app": the baseline's cut reaches "cat" (app called it),
// this window's does not. bee -> cat goes on in both: not a change.
TEST(MapCompare, ChangesOfACutAreTheWholeMapsChangesWithinEitherCut) {
  auto graph = [](std::vector<MapEdge> edges) {
    MapGraph g = Graph(std::move(edges));
    for (const char* id : {"app", "bee", "cat"}) g.nodes.push_back(MapNode{.id = id});
    return g;
  };
  MapGraph before = graph({Edge("app", "bee", 5), Edge("app", "cat", 5), Edge("bee", "cat", 5)});
  MapGraph now = graph({Edge("app", "bee", 5), Edge("bee", "cat", 5)});
  std::vector<MapEdgeChange> c = ChangesWithin(
      CompareMaps(before, now, 2.0), CutMap(now, "", "app", 1), CutMap(before, "", "app", 1));
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].kind, MapChangeKind::kDisappeared);
  EXPECT_EQ(c[0].edge.to, "cat");
  EXPECT_EQ(c[0].edge.from, "app");
  // Edges beyond both cuts are left out.
  now.edges.push_back(Edge("bee", "dog", 1));
  now.nodes.push_back(MapNode{.id = "dog"});
  EXPECT_EQ(ChangesWithin(CompareMaps(before, now, 2.0), CutMap(now, "", "app", 1),
                          CutMap(before, "", "app", 1))
                .size(),
            1u);
}

}  // namespace
}  // namespace flowmesh
