// ParseCgroupPath against every real path in testdata/cgroup_paths.tsv (and
// the malformed ones beside them), plus inputs no text file can hold.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "node/proc/cgroup_path.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

// "kind=container runtime=docker id=..." -> {kind: container, ...}
std::map<std::string, std::string> Fields(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string word;
  while (in >> word) {
    size_t eq = word.find('=');
    out[word.substr(0, eq)] = eq == std::string::npos ? "" : word.substr(eq + 1);
  }
  return out;
}

std::string Describe(const Workload& w) {
  std::string s = "kind=" + std::string(WorkloadKindName(w.kind));
  if (!w.runtime.empty()) s += " runtime=" + w.runtime;
  if (!w.id.empty() && w.kind == WorkloadKind::kContainer) s += " id=" + w.id;
  if (!w.unit.empty()) s += " unit=" + w.unit;
  if (w.user_unit) s += " user=1";
  if (w.pod) s += " pod=" + w.pod->uid + " qos=" + w.pod->qos;
  return s;
}

TEST(ParseCgroupPath, EveryCollectedPath) {
  std::ifstream in(std::string(FLOWMESH_TESTDATA) + "/cgroup_paths.tsv");
  ASSERT_TRUE(in) << "cannot open testdata/cgroup_paths.tsv";
  std::string line;
  int checked = 0, line_no = 0;
  while (std::getline(in, line)) {
    line_no++;
    if (line.empty() || line[0] == '#') continue;
    size_t t1 = line.find('\t');
    size_t t2 = line.find('\t', t1 + 1);
    ASSERT_NE(t2, std::string::npos) << "line " << line_no << " needs path, expected, source";
    std::string path = line.substr(0, t1);
    std::map<std::string, std::string> want = Fields(line.substr(t1 + 1, t2 - t1 - 1));
    ASSERT_FALSE(line.substr(t2 + 1).empty()) << "line " << line_no << " has no source";
    ASSERT_TRUE(want.count("kind")) << "line " << line_no;

    Workload w = ParseCgroupPath(path);
    Workload expect;
    expect.kind = ParseWorkloadKind(want["kind"]).value_or(WorkloadKind::kNone);
    expect.runtime = want["runtime"];
    expect.unit = want["unit"];
    expect.id = expect.kind == WorkloadKind::kUnit ? expect.unit : want["id"];
    expect.user_unit = want["user"] == "1";
    if (!want["pod"].empty()) expect.pod = Pod{want["pod"], "", "", want["qos"]};
    expect.cgroup = path;
    EXPECT_EQ(w, expect) << "line " << line_no << ": " << path << "\n  got:  " << Describe(w)
                         << "\n  want: " << Describe(expect);
    checked++;
  }
  EXPECT_GE(checked, 50);
}

TEST(ParseCgroupPath, HugeAndBinaryInputNameNothing) {
  std::string id(64, 'a');
  std::string deep;
  while (deep.size() <= kMaxCgroupPathBytes) deep += "/system.slice";
  Workload w = ParseCgroupPath(deep + "/docker-" + id + ".scope");
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.cgroup, "");  // not kept: a bounded record never holds a huge path

  std::string with_nul = "/system.slice/docker-" + id + ".scope";
  with_nul[3] = '\0';
  EXPECT_TRUE(ParseCgroupPath(with_nul).empty());
  EXPECT_TRUE(ParseCgroupPath("/system.slice/ngi\nnx.service").empty());
  EXPECT_TRUE(ParseCgroupPath("").empty());
}

TEST(ParseCgroupPath, JustUnderTheBoundStillParses) {
  std::string id(64, 'b');
  std::string tail = "/docker-" + id + ".scope";
  std::string path;
  while (path.size() + tail.size() + 3 <= kMaxCgroupPathBytes) path += "/a";
  path += tail;
  ASSERT_LE(path.size(), kMaxCgroupPathBytes);
  Workload w = ParseCgroupPath(path);
  EXPECT_EQ(w.kind, WorkloadKind::kContainer);
  EXPECT_EQ(w.id, id);
}

TEST(ParseCgroupPath, InnermostContainerWinsAndKeepsItsOwnPod) {
  std::string outer(64, 'c'), inner(64, 'd');
  // docker-in-docker inside a pod: the inner container, in that pod.
  Workload w = ParseCgroupPath("/kubepods/burstable/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363/" +
                               outer + "/docker/" + inner);
  EXPECT_EQ(w.id, inner);
  ASSERT_TRUE(w.pod.has_value());
  EXPECT_EQ(w.pod->uid, "18d34ce4-50c7-452c-9df8-53c4a3fdf363");
  EXPECT_EQ(w.runtime, "docker");
  // A bare id right below the pod: only the runtime's files say whose it is.
  EXPECT_EQ(ParseCgroupPath("/kubepods/burstable/pod18d34ce4-50c7-452c-9df8-53c4a3fdf363/" + outer)
                .runtime,
            "");
}

}  // namespace
}  // namespace flowmesh
