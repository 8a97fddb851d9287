// WorkloadResolver against a fake cgroup hierarchy (plain directories: their
// inodes are the ids, as in cgroupfs), a fake /proc and the fixture runtime
// root, with a virtual clock for the walk limit and metadata retries.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "node/proc/cgroup.h"
#include "node/proc/workload_resolver.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

namespace fs = std::filesystem;

constexpr char kWeb[] = "3f2a1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
constexpr char kLate[] = "ab2a1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
constexpr int64_t kSecond = 1'000'000'000;

class WorkloadResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fm-resolver-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cg");
    fs::create_directories(dir_ / "proc");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Its id as the resolver reads ids: on a disk filesystem the file handle
  // carries a generation, so the inode alone would not be it.
  uint64_t MakeCgroup(const std::string& path) {
    fs::create_directories(dir_ / "cg" / path.substr(1));
    Result<uint64_t> id = CgroupIdOfPath((dir_ / "cg").string(), path);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
  }
  void PutProc(uint32_t pid, const std::string& cgroup) {
    fs::create_directories(dir_ / "proc" / std::to_string(pid));
    std::ofstream(dir_ / "proc" / std::to_string(pid) / "cgroup") << "0::" << cgroup << "\n";
  }
  WorkloadResolver Make(WorkloadResolverOptions o = {}) {
    o.cgroup_root = (dir_ / "cg").string();
    if (o.runtime.root == "/") o.runtime.root = std::string(FLOWMESH_TESTDATA) + "/runtime/host";
    return WorkloadResolver(ProcReader((dir_ / "proc").string()), o, [this] { return now_; });
  }

  fs::path dir_;
  int64_t now_ = 100 * kSecond;
};

TEST_F(WorkloadResolverTest, PidHintGivesThePathAndTheRuntimeTheName) {
  std::string path = std::string("/system.slice/docker-") + kWeb + ".scope";
  uint64_t id = MakeCgroup(path);
  PutProc(42, path);
  WorkloadResolver r = Make();
  Workload w = r.Resolve(id, 42);
  EXPECT_EQ(w.kind, WorkloadKind::kContainer);
  EXPECT_EQ(w.name, "web");
  EXPECT_EQ(w.cgroup, path);
  WorkloadResolverStats s = r.Stats();
  EXPECT_EQ(s.proc_paths, 1u);
  EXPECT_EQ(s.walks, 0u);
  EXPECT_EQ(s.named, 1u);
  EXPECT_EQ(s.metadata_reads, 1u);

  fs::remove_all(dir_ / "proc" / "42");  // the process is gone: the cache still knows
  EXPECT_EQ(r.Resolve(id, 42), w);
  EXPECT_EQ(r.Stats().hits, 1u);
  EXPECT_EQ(r.Stats().metadata_reads, 1u);  // named: not read again
}

TEST_F(WorkloadResolverTest, WithoutAProcessAWalkFindsItAndRemembersEveryId) {
  uint64_t nginx = MakeCgroup("/system.slice/nginx.service");
  uint64_t sshd = MakeCgroup("/system.slice/ssh.service");
  WorkloadResolver r = Make();
  Workload w = r.Resolve(nginx);
  EXPECT_EQ(w.kind, WorkloadKind::kUnit);
  EXPECT_EQ(w.id, "nginx.service");
  EXPECT_EQ(r.Stats().walks, 1u);
  // The walk passed ssh.service too: no second walk for it.
  EXPECT_EQ(r.Resolve(sshd).id, "ssh.service");
  EXPECT_EQ(r.Stats().walks, 1u);
  EXPECT_EQ(r.Stats().hits, 1u);
}

TEST_F(WorkloadResolverTest, WalksAreRateLimitedAndMissesCachedShortly) {
  MakeCgroup("/system.slice/nginx.service");
  WorkloadResolver r = Make();
  EXPECT_TRUE(r.Resolve(999999991).empty());  // no such id: one walk
  EXPECT_TRUE(r.Resolve(999999992).empty());  // within the second: no walk
  WorkloadResolverStats s = r.Stats();
  EXPECT_EQ(s.walks, 1u);
  EXPECT_EQ(s.walks_skipped, 1u);
  EXPECT_EQ(s.unresolved, 2u);

  // A cgroup made after the walk is found by the next one, a second later.
  uint64_t late = MakeCgroup("/system.slice/late.service");
  EXPECT_TRUE(r.Resolve(late).empty());  // skipped: same second
  now_ += 3 * kSecond;                   // past the walk limit and the negative
  EXPECT_EQ(r.Resolve(late).id, "late.service");
  EXPECT_EQ(r.Stats().walks, 2u);
}

TEST_F(WorkloadResolverTest, AMovedProcesssPathIsNotTrusted) {
  uint64_t old_id = MakeCgroup("/system.slice/old.service");
  MakeCgroup("/system.slice/new.service");
  PutProc(7, "/system.slice/new.service");  // moved since the probe took the id
  WorkloadResolver r = Make();
  EXPECT_EQ(r.Resolve(old_id, 7).id, "old.service");
  EXPECT_EQ(r.Stats().proc_paths, 0u);
  EXPECT_EQ(r.Stats().walks, 1u);
}

TEST_F(WorkloadResolverTest, MissingNameIsRetriedOnlyAfterTheInterval) {
  WorkloadResolverOptions o;
  o.runtime.root = (dir_ / "root").string();
  std::string path = std::string("/system.slice/docker-") + kLate + ".scope";
  uint64_t id = MakeCgroup(path);
  PutProc(9, path);
  WorkloadResolver r = Make(o);
  Workload w = r.Resolve(id, 9);
  EXPECT_EQ(w.id, kLate);
  EXPECT_EQ(w.name, "");  // docker has not written config.v2.json yet

  fs::path cfg = dir_ / "root/var/lib/docker/containers" / kLate;
  fs::create_directories(cfg);
  std::ofstream(cfg / "config.v2.json") << R"({"Name": "/late"})";
  EXPECT_EQ(r.Resolve(id, 9).name, "");  // not per event
  EXPECT_EQ(r.Stats().metadata_reads, 1u);
  now_ += 2 * kSecond;
  EXPECT_EQ(r.Resolve(id, 9).name, "late");
  EXPECT_EQ(r.Stats().metadata_reads, 2u);
  now_ += 10 * kSecond;
  EXPECT_EQ(r.Resolve(id, 9).name, "late");
  EXPECT_EQ(r.Stats().metadata_reads, 2u);  // named: never again
}

TEST_F(WorkloadResolverTest, MalformedRuntimeFilesAreCounted) {
  std::string path = "/docker/5dace3de0735f73d2b5048f12d41a71741a02e49668de921fdae62f7e65dc498";
  uint64_t id = MakeCgroup(path);
  PutProc(5, path);
  WorkloadResolver r = Make();
  Workload w = r.Resolve(id, 5);
  EXPECT_EQ(w.id, "5dace3de0735f73d2b5048f12d41a71741a02e49668de921fdae62f7e65dc498");
  EXPECT_EQ(w.runtime, "docker");
  EXPECT_EQ(r.Stats().metadata_errors, 1u);
}

TEST_F(WorkloadResolverTest, CgroupIdOfPidThenResolveReadsProcOnce) {
  uint64_t id = MakeCgroup("/system.slice/nginx.service");
  PutProc(11, "/system.slice/nginx.service");
  WorkloadResolver r = Make();
  Result<uint64_t> got = r.CgroupIdOfPid(11);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, id);
  fs::remove_all(dir_ / "proc" / "11");
  EXPECT_EQ(r.Resolve(id, 11).id, "nginx.service");
  EXPECT_EQ(r.Stats().walks, 0u);
  EXPECT_EQ(r.Stats().named, 1u);
  EXPECT_FALSE(r.CgroupIdOfPid(11).ok());
}

TEST_F(WorkloadResolverTest, TheCacheIsBounded) {
  WorkloadResolverOptions o;
  o.capacity = 3;
  for (int i = 0; i < 10; i++) MakeCgroup("/system.slice/s" + std::to_string(i) + ".service");
  WorkloadResolver r = Make(o);
  r.Resolve(1);  // a walk passes all eleven directories
  EXPECT_LE(r.Stats().size, 3u);
}

// A walk of a big hierarchy remembers a few of the ids it passes, not all:
// the named entries already cached stay.
TEST_F(WorkloadResolverTest, AWalkRemembersOnlyAFewOthers) {
  std::string web = std::string("/system.slice/docker-") + kWeb + ".scope";
  uint64_t web_id = MakeCgroup(web);
  PutProc(42, web);
  for (int i = 0; i < 400; i++) MakeCgroup("/user.slice/s" + std::to_string(i) + ".scope");
  WorkloadResolverOptions o;
  o.capacity = 300;
  WorkloadResolver r = Make(o);
  EXPECT_EQ(r.Resolve(web_id, 42).name, "web");
  r.Resolve(1);  // no cgroup has id 1: a walk of all 400
  EXPECT_EQ(r.Stats().walks, 1u);
  EXPECT_LE(r.Stats().size, 2u + 256u);
  fs::remove_all(dir_ / "proc" / "42");
  EXPECT_EQ(r.Resolve(web_id).name, "web");
  EXPECT_EQ(r.Stats().walks, 1u) << "web's entry was not pushed out";
}

TEST_F(WorkloadResolverTest, OffResolvesNothing) {
  WorkloadResolverOptions o;
  WorkloadResolver r(ProcReader((dir_ / "proc").string()), o);
  EXPECT_FALSE(r.enabled());
  EXPECT_TRUE(r.Resolve(MakeCgroup("/system.slice/nginx.service")).empty());
  EXPECT_FALSE(r.CgroupIdOfPid(1).ok());
  EXPECT_EQ(r.Stats().lookups, 0u);
}

}  // namespace
}  // namespace flowmesh
