// ProcessCache with a WorkloadResolver: details carry the cgroup id (the
// ref's, else /proc's) and its workload, for live processes, gone ones and
// ones that moved; a fake /proc and cgroup tree in a temp directory.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "node/flow/process_cache.h"
#include "node/proc/cgroup.h"
#include "tests/unit/fake_host_tree.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

namespace fs = std::filesystem;
constexpr char kWeb[] = "3f2a1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
constexpr int64_t kSec = 1'000'000'000;

class ProcessCacheWorkloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fm-pcw-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    docker_ = MakeCgroup(std::string("/system.slice/docker-") + kWeb + ".scope");
    nginx_ = MakeCgroup("/system.slice/nginx.service");
    WorkloadResolverOptions o;
    o.cgroup_root = (dir_ / "cg").string();
    o.runtime.root = std::string(FLOWMESH_TESTDATA) + "/runtime/host";
    resolver_ = std::make_unique<WorkloadResolver>(ProcReader((dir_ / "proc").string()), o,
                                                   [this] { return now_; });
  }
  void TearDown() override { fs::remove_all(dir_); }

  uint64_t MakeCgroup(const std::string& path) { return testing::MakeFakeCgroup(dir_, path); }
  void PutProcess(uint32_t pid, uint64_t start, const std::string& comm,
                  const std::string& cgroup) {
    testing::PutFakeProcess(dir_, pid, start, comm, cgroup);
  }
  ProcessCache Make(WorkloadResolver* r) {
    return ProcessCache(
        ProcReader((dir_ / "proc").string()), {}, [this] { return now_; }, r);
  }
  static ProcessRef Ref(uint32_t pid, uint64_t start, uint64_t cgroup_id = 0) {
    ProcessRef r;
    r.pid = pid;
    r.start_ticks = start;
    r.cgroup_id = cgroup_id;
    r.set_comm("python3");
    return r;
  }

  fs::path dir_;
  int64_t now_ = 1000 * kSec;
  uint64_t docker_ = 0, nginx_ = 0;
  std::unique_ptr<WorkloadResolver> resolver_;
};

TEST_F(ProcessCacheWorkloadTest, PollingRefGetsItsCgroupFromProc) {
  PutProcess(300, 3000, "python3", std::string("/system.slice/docker-") + kWeb + ".scope");
  ProcessCache cache = Make(resolver_.get());
  ProcessDetails d = cache.Lookup(Ref(300, 3000));
  EXPECT_EQ(d.cgroup_id, docker_);
  EXPECT_EQ(d.workload.kind, WorkloadKind::kContainer);
  EXPECT_EQ(d.workload.name, "web");
  EXPECT_EQ(cache.Lookup(Ref(300, 3000)), d);
  EXPECT_EQ(resolver_->Stats().lookups, 1u);  // the hit did not ask again
}

TEST_F(ProcessCacheWorkloadTest, TheRefsCgroupWinsOverProcs) {
  // The probe saw it in the container; /proc now says nginx.service.
  PutProcess(301, 3010, "python3", "/system.slice/nginx.service");
  ProcessCache cache = Make(resolver_.get());
  ProcessDetails d = cache.Lookup(Ref(301, 3010, docker_));
  EXPECT_EQ(d.cgroup_id, docker_);
  EXPECT_EQ(d.workload.name, "web");
}

TEST_F(ProcessCacheWorkloadTest, AGoneProcessKeepsItsCgroupsWorkload) {
  ProcessCache cache = Make(resolver_.get());
  ProcessDetails d = cache.Lookup(Ref(999, 9990, nginx_));
  EXPECT_EQ(d.pid, 999u);
  EXPECT_EQ(d.cgroup_id, nginx_);
  EXPECT_EQ(d.workload.id, "nginx.service");
  EXPECT_EQ(cache.Stats().gone, 1u);
  EXPECT_EQ(cache.Lookup(Ref(999, 9990, nginx_)).workload.id, "nginx.service");  // the negative
}

TEST_F(ProcessCacheWorkloadTest, AMoveSeenByTheProbeRenamesTheCachedProcess) {
  PutProcess(302, 3020, "python3", "/system.slice/nginx.service");
  ProcessCache cache = Make(resolver_.get());
  EXPECT_EQ(cache.Lookup(Ref(302, 3020, nginx_)).workload.id, "nginx.service");
  ProcessDetails moved = cache.Lookup(Ref(302, 3020, docker_));
  EXPECT_EQ(moved.cgroup_id, docker_);
  EXPECT_EQ(moved.workload.name, "web");
  EXPECT_EQ(cache.Stats().proc_reads, 1u);
  // Kept: a ref without an id (polling) gets the latest.
  EXPECT_EQ(cache.Lookup(Ref(302, 3020)).workload.name, "web");
}

TEST_F(ProcessCacheWorkloadTest, ANameTheRuntimeWritesLaterReachesTheCachedProcess) {
  const std::string late(64, 'e');
  std::string path = "/system.slice/docker-" + late + ".scope";
  uint64_t id = MakeCgroup(path);
  PutProcess(304, 3040, "python3", path);
  WorkloadResolverOptions o;
  o.cgroup_root = (dir_ / "cg").string();
  o.runtime.root = (dir_ / "root").string();
  WorkloadResolver r(ProcReader((dir_ / "proc").string()), o, [this] { return now_; });
  ProcessCache cache = Make(&r);
  EXPECT_EQ(cache.Lookup(Ref(304, 3040, id)).workload.name, "");

  fs::create_directories(dir_ / "root/var/lib/docker/containers" / late);
  std::ofstream(dir_ / "root/var/lib/docker/containers" / late / "config.v2.json")
      << R"({"Name": "/late"})";
  EXPECT_EQ(cache.Lookup(Ref(304, 3040, id)).workload.name, "");  // not re-read per event
  now_ += 2 * kSec;
  EXPECT_EQ(cache.Lookup(Ref(304, 3040, id)).workload.name, "late");
  uint64_t lookups = r.Stats().lookups;
  EXPECT_EQ(cache.Lookup(Ref(304, 3040, id)).workload.name, "late");
  EXPECT_EQ(r.Stats().lookups, lookups);  // named: the cache answers alone
  EXPECT_EQ(cache.Stats().proc_reads, 1u);
}

TEST_F(ProcessCacheWorkloadTest, AnIdNoWalkFoundYetIsAskedForAgain) {
  // The probe saw 305 in fresh.service; /proc now says elsewhere, so only a
  // walk can name that id, and this second's walk went by before it existed.
  PutProcess(305, 3050, "python3", "/system.slice/other.service");
  ProcessCache cache = Make(resolver_.get());
  EXPECT_TRUE(resolver_->Resolve(123456789).empty());  // the walk of this second
  uint64_t fresh = MakeCgroup("/system.slice/fresh.service");
  ProcessDetails d = cache.Lookup(Ref(305, 3050, fresh));
  EXPECT_EQ(d.cgroup_id, fresh);
  EXPECT_TRUE(d.workload.empty());
  EXPECT_EQ(resolver_->Stats().walks_skipped, 1u);
  now_ += 3 * kSec;  // past the walk limit and the resolver's negative
  EXPECT_EQ(cache.Lookup(Ref(305, 3050, fresh)).workload.id, "fresh.service");
  EXPECT_EQ(cache.Stats().proc_reads, 1u);  // the cached process, named on a hit
}

TEST_F(ProcessCacheWorkloadTest, PeekNeitherRenamesNorResolves) {
  // A control thread peeks with a record's old cgroup id: the live
  // process's cgroup and workload stay, and the resolver is not asked.
  PutProcess(306, 3060, "python3", "/system.slice/nginx.service");
  ProcessCache cache = Make(resolver_.get());
  EXPECT_EQ(cache.Lookup(Ref(306, 3060, nginx_)).workload.id, "nginx.service");
  const uint64_t asked = resolver_->Stats().lookups;
  std::optional<ProcessDetails> d = cache.Peek(Ref(306, 3060, docker_));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->cgroup_id, nginx_);
  EXPECT_EQ(d->workload.id, "nginx.service");
  EXPECT_EQ(cache.Lookup(Ref(306, 3060)).cgroup_id, nginx_);
  EXPECT_EQ(resolver_->Stats().lookups, asked);
  // An unnamed container is not asked again by a peek either.
  const std::string late(64, 'f');
  std::string path = "/system.slice/docker-" + late + ".scope";
  uint64_t id = MakeCgroup(path);
  PutProcess(307, 3070, "python3", path);
  cache.Lookup(Ref(307, 3070, id));
  const uint64_t asked_late = resolver_->Stats().lookups;
  now_ += 10 * kSec;
  ASSERT_TRUE(cache.Peek(Ref(307, 3070, id)));
  EXPECT_TRUE(cache.MayNameLater(*cache.Peek(Ref(307, 3070, id))));
  EXPECT_EQ(resolver_->Stats().lookups, asked_late);
}

TEST_F(ProcessCacheWorkloadTest, WithoutAResolverOnlyTheRefsId) {
  PutProcess(303, 3030, "python3", "/system.slice/nginx.service");
  ProcessCache cache = Make(nullptr);
  ProcessDetails d = cache.Lookup(Ref(303, 3030, 77));
  EXPECT_EQ(d.cgroup_id, 77u);
  EXPECT_TRUE(d.workload.empty());
  EXPECT_EQ(cache.Lookup(Ref(303, 3030)).cgroup_id, 77u);
}

}  // namespace
}  // namespace flowmesh
