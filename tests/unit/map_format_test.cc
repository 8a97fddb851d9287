// meshctl map's text and dot over the shared sample map: every section, the
// changes, and labels that try to escape a terminal or a dot string.
#include "cli/format/map_format.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <vector>

#include "tests/unit/map_samples.h"

namespace flowmesh::testing {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The index of `line` in `lines`, or -1; so tests can check the order.
int At(const std::vector<std::string>& lines, const std::string& line) {
  for (size_t i = 0; i < lines.size(); i++)
    if (lines[i] == line) return static_cast<int>(i);
  ADD_FAILURE() << "no line '" << line << "' in:\n"
                << [&] {
                     std::string all;
                     for (const std::string& l : lines) all += l + "\n";
                     return all;
                   }();
  return -1;
}

TEST(MapText, TheSummarySaysWhoAnsweredAndWhatTheMapHolds) {
  std::vector<std::string> lines = Lines(FormatMapText(SampleMap()));
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0],
            "map: 4 of 5 members answered (not cache-1), 5 workloads, 2 external, 1 balancer, "
            "7 edges, 2025-11-24T16:00:00.000Z to 2025-11-24T17:00:00.000Z");
}

TEST(MapText, EachHostListsItsWorkloadsWithClientsAndDependencies) {
  std::vector<std::string> lines = Lines(FormatMapText(SampleMap()));
  // Hosts sorted; under each its nodes, clients ('<--') before dependencies.
  int app = At(lines, "app-1");
  int web = At(lines, "web-1");
  EXPECT_LT(app, At(lines, "cache-1"));
  EXPECT_LT(At(lines, "lb-1"), web);
  EXPECT_EQ(At(lines, "  container web ('python3', pgid=6111)  10.213.0.3:8000"), app + 1);
  // Through the balancer: what was dialled follows the endpoint reached.
  EXPECT_EQ(At(lines,
               "    <-- balancer 10.213.250.1:80 on lb-1  10.213.0.3:8000 via "
               "10.213.250.1:80  12 conns 91.9 KB"),
            app + 2);
  // An external server is named by its endpoint, once.
  EXPECT_EQ(At(lines, "    --> 203.0.113.9:443 [no-agent]  3 conns 51.9 KB"), app + 3);
  // A pool opened before the window: its connections, then how many are new.
  EXPECT_EQ(At(lines,
               "    --> cache-1 on cache-1  10.213.0.4:6379 [unreachable]  42 conns (40 "
               "new) 2.0 KB"),
            app + 4);
  EXPECT_EQ(At(lines, "  cache-1  10.213.0.4:6379 [unreachable]  (no answer from cache-1 in 2s)"),
            At(lines, "cache-1") + 1);
  EXPECT_EQ(At(lines, "  nginx.service ('nginx', pgid=4656)  10.213.0.2:80"), web + 1);
  EXPECT_EQ(At(lines, "    <-- 'curl' pgid 5982 on client-1  10.213.0.2:80  3 conns 1.4 KB"),
            web + 2);
  EXPECT_EQ(At(lines, "    <-- 10.213.0.5 on client-2  10.213.0.2:80 [unconfirmed]  2 conns 30 B"),
            web + 3);
  EXPECT_EQ(At(lines, "    --> balancer 10.213.250.1:80 on lb-1  10.213.250.1:80  12 conns 91.9 KB"), web + 5);
  // A process without a workload is named by its label alone.
  EXPECT_GE(At(lines, "  'curl' pgid 5982"), 0);
  EXPECT_GE(At(lines, "  balancer 10.213.250.1:80"), 0);
}

TEST(MapText, ExternalNodesThenTheMembersThatDidNotAnswer) {
  std::vector<std::string> lines = Lines(FormatMapText(SampleMap(/*with_baseline=*/false)));
  int ext = At(lines, "external (no meshd)");
  EXPECT_EQ(At(lines, "  198.51.100.7 [no-agent]"), ext + 1);
  EXPECT_EQ(At(lines, "    --> nginx.service on web-1  10.213.0.2:80  1 conn 490 B"), ext + 2);
  EXPECT_EQ(At(lines, "  203.0.113.9:443 [no-agent]"), ext + 3);
  int missing = At(lines, "members that did not answer in full");
  EXPECT_GT(missing, ext);
  EXPECT_EQ(At(lines, "  cache-1 (10.213.0.4:7946, suspect): no answer in 2s"), missing + 1);
  EXPECT_EQ(At(lines,
               "  lb-1 (10.213.0.9:7946, alive): answered in part: it had more than an "
               "answer may carry"),
            missing + 2);
  EXPECT_EQ(FormatMapText(SampleMap(false)).find("changes"), std::string::npos);
}

TEST(MapText, ChangesListWhatAppearedDisappearedAndChanged) {
  std::vector<std::string> lines = Lines(FormatMapText(SampleMap()));
  int changes = At(lines,
                   "changes since 2025-11-23T16:00:00.000Z to 2025-11-23T17:00:00.000Z "
                   "(changed: more than x2 either way)");
  EXPECT_EQ(At(lines,
               "  + container web on app-1 --> 203.0.113.9:443  203.0.113.9:443  "
               "appeared, 3 conns 51.9 KB"),
            changes + 1);
  // The disappeared edge's server is only in the baseline: named from there.
  EXPECT_EQ(At(lines,
               "  - container web on app-1 --> 203.0.113.20:5432  203.0.113.20:5432  "
               "disappeared, had 5 conns 20 B"),
            changes + 2);
  EXPECT_EQ(At(lines,
               "  ~ 'curl' pgid 5982 on client-1 --> nginx.service on web-1  10.213.0.2:80"
               "  changed x3.0, 1 conn 480 B -> 3 conns 1.4 KB"),
            changes + 3);
  MapResult none = SampleMap();
  none.changes.clear();
  none.query.change_factor = 2.5;
  lines = Lines(FormatMapText(none));
  EXPECT_EQ(At(lines, "  (none)"), At(lines,
                                      "changes since 2025-11-23T16:00:00.000Z to "
                                      "2025-11-23T17:00:00.000Z (changed: more than "
                                      "x2.5 either way)") +
                                       1);
}

TEST(MapText, TheSummaryNamesAFewMissingMembersAndCountsTheRest) {
  MapResult r;
  for (int i = 0; i < 8; i++)
    r.graph.members.push_back(MapPeer("m" + std::to_string(i), "", false));
  r.graph.members.push_back(MapPeer("web-1", "", true));
  std::vector<std::string> lines = Lines(FormatMapText(r));
  EXPECT_EQ(lines[0].rfind("map: 1 of 9 members answered (not m0, m1, m2, m3, m4 and 3 more), ", 0),
            0u)
      << lines[0];
  // ... and the section lists every one.
  EXPECT_GE(At(lines, "  m7 (suspect): no answer"), 0);
}

TEST(MapText, AnEmptyMapSaysSo) {
  MapResult r;
  r.graph.members = {MapPeer("web-1", "10.213.0.2:7946", true)};
  std::vector<std::string> lines = Lines(FormatMapText(r));
  EXPECT_EQ(lines[0],
            "map: 1 of 1 member answered, 0 workloads, 0 external, 0 balancers, 0 edges, the "
            "beginning to now");
  EXPECT_GE(At(lines, "(no connections in the window)"), 0);
}

MapResult HostileMap() {
  MapResult r = SampleMap();
  MapNode& app = r.graph.nodes[0];
  app.label =
      "web\x1b[2J\"q\\\"\nrm -rf \x9b"
      "31m\xff";
  app.host = "app-1\x1b]0;owned\x07";
  app.process->comm = "py\nthon";
  app.status_detail = "detail\r\nwith \x1b[1mbold";
  r.graph.members[1].error = "no\x1b[31m answer\n";
  r.graph.members[1].name = "cache\x1b-1";
  return r;
}

// Nothing a remote process or host names itself reaches the terminal as a
// control, and a newline in a label cannot forge a line.
TEST(MapText, HostileNamesCannotReachTheTerminal) {
  const std::string clean = FormatMapText(SampleMap());
  const std::string text = FormatMapText(HostileMap());
  for (unsigned char c : text) {
    EXPECT_TRUE(c == '\n' || (c >= 0x20 && c != 0x7f)) << "byte " << int(c);
    if (c == 0x9b || c == 0xff) ADD_FAILURE() << "byte " << int(c);
  }
  EXPECT_EQ(Lines(text).size(), Lines(clean).size());
  EXPECT_NE(text.find("  web?[2J\"q\\\"?rm -rf ?31m? ('py?thon', pgid=6111)"), std::string::npos)
      << text;
}

TEST(MapDot, ClustersPerHostAndShapesByKind) {
  const std::string dot = FormatMapDot(SampleMap(false));
  EXPECT_EQ(dot.rfind("digraph map {\n  rankdir=LR;\n  node [shape=box];\n", 0), 0u);
  EXPECT_NE(dot.find("  subgraph \"cluster_web-1\" {\n    label=\"web-1\";\n    "
                     "\"web-1/wunit:nginx.service\" [label=\"nginx.service\\nnginx "
                     "(pgid=4656)\\n10.213.0.2:80\"];\n  }\n"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("\"lb-1/lb:10.213.250.1:80\" [label=\"balancer 10.213.250.1:80\", "
                     "shape=diamond];"),
            std::string::npos);
  EXPECT_NE(dot.find("\n  \"ext:203.0.113.9:443\" [label=\"203.0.113.9:443\", shape=ellipse];"),
            std::string::npos);
  EXPECT_NE(
      dot.find("\"cache-1/unreachable\" [label=\"cache-1\\n10.213.0.4:6379\\n[unreachable]\", "
               "style=dashed, color=grey, fontcolor=grey, tooltip=\"no answer from cache-1 "
               "in 2s\"];"),
      std::string::npos);
  EXPECT_NE(dot.find("[label=\"10.213.0.5\\n[unconfirmed]\", style=dashed, color=grey"),
            std::string::npos);
  EXPECT_NE(dot.find("  \"lb-1/lb:10.213.250.1:80\" -> \"app-1/wcontainer:web\" [label=\"12 "
                     "conns\\n91.9 KB\\nvia 10.213.250.1:80\"];\n"),
            std::string::npos);
  EXPECT_EQ(dot.find("color=green"), std::string::npos) << "no baseline, no colours";
  EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
}

TEST(MapDot, ChangesAreColoured) {
  const std::string dot = FormatMapDot(SampleMap());
  EXPECT_NE(dot.find("  \"app-1/wcontainer:web\" -> \"ext:203.0.113.9:443\" [label=\"+ 3 "
                     "conns\\n51.9 KB\", color=green, fontcolor=green];"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("  \"client-1/g5982\" -> \"web-1/wunit:nginx.service\" [label=\"x3.0 3 "
                     "conns\\n1.4 KB\", color=orange, fontcolor=orange, penwidth=2];"),
            std::string::npos);
  EXPECT_NE(dot.find("  \"app-1/wcontainer:web\" -> \"ext:203.0.113.20:5432\" [label=\"- 5 "
                     "conns\\n20 B\", color=red, fontcolor=red, style=dashed];"),
            std::string::npos);
  // The gone server is drawn from the baseline, as gone.
  EXPECT_NE(dot.find("  \"ext:203.0.113.20:5432\" [label=\"203.0.113.20:5432\", shape=ellipse, "
                     "style=dashed, color=red, fontcolor=red];"),
            std::string::npos);
}

// Every quoted string closes where it should: after removing escaped
// characters, each line has an even number of quotes, and no raw control
// byte or lone backslash escape (\N, \G, \l) is left for Graphviz to expand.
TEST(MapDot, HostileLabelsStayInsideTheirQuotes) {
  const std::string dot = FormatMapDot(HostileMap());
  for (const std::string& line : Lines(dot)) {
    std::string stripped = std::regex_replace(line, std::regex(R"(\\[\\"n])"), "");
    EXPECT_EQ(std::count(stripped.begin(), stripped.end(), '"') % 2, 0) << line;
    EXPECT_EQ(stripped.find('\\'), std::string::npos) << line;
    for (unsigned char c : line) EXPECT_TRUE(c >= 0x20 && c != 0x7f && c != 0x9b) << line;
  }
  EXPECT_NE(dot.find("[label=\"web?[2J\\\"q\\\\\\\"?rm -rf ?31m?\\npy?thon (pgid=6111)"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("subgraph \"cluster_app-1?]0;owned?\""), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::testing
