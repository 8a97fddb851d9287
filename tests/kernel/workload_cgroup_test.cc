// Workloads from real cgroups (root): a process moved into a docker-shaped
// cgroup v2 scope is named by the resolver from its cgroup id, whether the
// path comes from /proc/<pid>/cgroup or a walk of the hierarchy, with the
// name from a config.v2.json under a temporary runtime root.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "node/flow/process_cache.h"
#include "node/proc/cgroup.h"
#include "node/proc/workload_resolver.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh {
namespace {

namespace fs = std::filesystem;

constexpr char kId[] = "f1e2d3c4b5a6978812233445566778899aabbccddeeff0011223344556677889";

// A cgroup tree /fmtest-<pid>/system.slice/docker-<id>.scope holding one
// sleeping child; everything is removed again, child first.
class DockerShapedCgroup {
 public:
  explicit DockerShapedCgroup(std::string root) : root_(std::move(root)) {
    base_ = "/fmtest-" + std::to_string(getpid());
    path_ = base_ + "/system.slice/docker-" + std::string(kId) + ".scope";
    std::error_code ec;
    fs::create_directories(root_ + path_, ec);
    ok_ = !ec;
    if (!ok_) return;
    child_ = fork();
    if (child_ == 0) {
      pause();
      _exit(0);
    }
    std::ofstream(root_ + path_ + "/cgroup.procs") << child_ << "\n";
  }
  ~DockerShapedCgroup() {
    if (child_ > 0) {
      kill(child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    // Deepest first: a cgroup directory goes with rmdir once it is empty.
    for (std::string p = path_; p.size() >= base_.size(); p = p.substr(0, p.rfind('/')))
      rmdir((root_ + p).c_str());
  }
  bool ok() const { return ok_; }
  pid_t child() const { return child_; }
  std::string procs() const { return root_ + path_ + "/cgroup.procs"; }
  const std::string& path() const { return path_; }

 private:
  std::string root_, base_, path_;
  pid_t child_ = -1;
  bool ok_ = false;
};

class WorkloadCgroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runtime_ = fs::temp_directory_path() / ("fm-kt-runtime-" + std::to_string(getpid()));
    fs::path dir = runtime_ / "var/lib/docker/containers" / std::string(kId);
    fs::create_directories(dir);
    std::ofstream(dir / "config.v2.json") << R"({"ID": ")" << std::string(kId)
                                          << R"(", "Name": "/kt-web", "Config": {"Labels": {}}})";
  }
  void TearDown() override { fs::remove_all(runtime_); }

  WorkloadResolverOptions Options(const std::string& root) {
    WorkloadResolverOptions o;
    o.cgroup_root = root;
    o.runtime.root = runtime_.string();
    return o;
  }

  fs::path runtime_;
};

TEST_F(WorkloadCgroupTest, ProcessInADockerScopeIsNamedFromItsCgroupId) {
  FM_REQUIRE_ROOT();
  Result<std::string> root = FindCgroupV2Root();
  ASSERT_TRUE(root.ok()) << root.status().message();
  DockerShapedCgroup cg(*root);
  ASSERT_TRUE(cg.ok()) << "cannot create a cgroup under " << *root;

  // The child is really there: the kernel says so in /proc.
  Result<std::string> text = ReadSmallFile("/proc/" + std::to_string(cg.child()) + "/cgroup");
  ASSERT_TRUE(text.ok());
  Result<std::string> proc_path = ParseProcCgroupV2(*text);
  ASSERT_TRUE(proc_path.ok()) << proc_path.status().message();
  ASSERT_EQ(*proc_path, cg.path());

  Result<uint64_t> id = CgroupIdOfPath(*root, cg.path());
  ASSERT_TRUE(id.ok()) << id.status().message();

  // From /proc/<pid>/cgroup.
  WorkloadResolver by_pid(ProcReader("/proc"), Options(*root));
  Result<uint64_t> of_pid = by_pid.CgroupIdOfPid(static_cast<uint32_t>(cg.child()));
  ASSERT_TRUE(of_pid.ok()) << of_pid.status().message();
  EXPECT_EQ(*of_pid, *id);
  Workload w = by_pid.Resolve(*id, static_cast<uint32_t>(cg.child()));
  EXPECT_EQ(w.kind, WorkloadKind::kContainer);
  EXPECT_EQ(w.runtime, "docker");
  EXPECT_EQ(w.id, std::string(kId));
  EXPECT_EQ(w.name, "kt-web");
  EXPECT_EQ(w.cgroup, cg.path());
  EXPECT_EQ(by_pid.Stats().walks, 0u);

  // From a walk: no process to ask (as for an event whose process is gone).
  WorkloadResolver by_walk(ProcReader("/proc"), Options(*root));
  EXPECT_EQ(by_walk.Resolve(*id), w);
  EXPECT_EQ(by_walk.Stats().walks, 1u);

  // Through the process cache, as the aggregator asks: a polling ref (no id).
  Result<ProcStat> st = ProcReader("/proc").ReadStat(static_cast<uint32_t>(cg.child()));
  ASSERT_TRUE(st.ok());
  ProcessCache cache(ProcReader("/proc"), {}, {}, &by_pid);
  ProcessRef ref;
  ref.pid = static_cast<uint32_t>(cg.child());
  ref.start_ticks = st->start_ticks;
  ProcessDetails d = cache.Lookup(ref);
  EXPECT_EQ(d.cgroup_id, *id);
  EXPECT_EQ(WorkloadLabel(d.workload), "container kt-web (docker f1e2d3c4b5a6)");
}

TEST_F(WorkloadCgroupTest, AGoneCgroupIsUnresolvedNotAnError) {
  FM_REQUIRE_ROOT();
  Result<std::string> root = FindCgroupV2Root();
  ASSERT_TRUE(root.ok()) << root.status().message();
  uint64_t id = 0;
  {
    DockerShapedCgroup cg(*root);
    ASSERT_TRUE(cg.ok());
    Result<uint64_t> got = CgroupIdOfPath(*root, cg.path());
    ASSERT_TRUE(got.ok());
    id = *got;
  }  // removed
  WorkloadResolver r(ProcReader("/proc"), Options(*root));
  EXPECT_TRUE(r.Resolve(id).empty());
  EXPECT_EQ(r.Stats().unresolved, 1u);
}

// A detail count of `meshctl status --json` ("detail": {"name": n, ...}).
long Detail(const std::string& json, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + name + "\":\\s*(\\d+)"))) return -1;
  return std::stol(m[1]);
}

TEST_F(WorkloadCgroupTest, MeshdNamesTheWorkloadOfAConnectionFromTheScope) {
  FM_REQUIRE_ROOT();
  Result<std::string> root = FindCgroupV2Root();
  ASSERT_TRUE(root.ok()) << root.status().message();
  DockerShapedCgroup cg(*root);
  ASSERT_TRUE(cg.ok());
  testing::MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start(
      {"--probe-mode", "streaming", "--netns", "self", "--runtime-root", runtime_.string()}, &err))
      << err;
  EXPECT_EQ(Detail(meshd.Meshctl({"status", "--json"}).out, "workloads_on"), 1);
  testing::Watcher w(meshd);

  // A child joins the scope, then runs a server and a client there: both
  // are in the container, as a container's processes are. The connection
  // is held open: until events carry the cgroup id, a process is named
  // only while /proc still has it.
  pid_t runner = fork();
  if (runner == 0) {
    std::ofstream(cg.procs()) << getpid() << "\n";
    testing::TrafficSpec spec;
    spec.hold_ms = 3000;
    testing::TrafficResult t = testing::RunTraffic(spec);
    _exit(t.ok ? 0 : 1);
  }
  std::string st;
  for (int i = 0; i < 50; i++) {
    st = meshd.Meshctl({"status", "--json"}).out;
    if (Detail(st, "workloads_named") >= 1) break;
    usleep(100'000);
  }
  int status = 0;
  waitpid(runner, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(Detail(st, "workloads_named"), 1) << st;
  EXPECT_EQ(Detail(st, "workload_metadata_errors"), 0) << st;
  EXPECT_NE(meshd.Log().find("naming workloads from the cgroup v2 hierarchy at " + *root),
            std::string::npos)
      << meshd.Log();
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

TEST_F(WorkloadCgroupTest, MeshdWithWorkloadsOffSaysSo) {
  FM_REQUIRE_ROOT();
  testing::MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "polling", "--cgroup-root", "off"}, &err)) << err;
  std::string st = meshd.Meshctl({"status", "--json"}).out;
  EXPECT_EQ(Detail(st, "workloads_on"), 0) << st;
  EXPECT_EQ(Detail(st, "workloads_named"), -1) << st;
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

}  // namespace
}  // namespace flowmesh
