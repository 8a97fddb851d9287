// The aggregator with a process cache and a workload resolver over a fake
// /proc and cgroup tree: a process written before its workload was named is
// written again once it is, and listeners carry their owner's workload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "node/flow/aggregator.h"
#include "node/proc/cgroup.h"
#include "tests/unit/fake_host_tree.h"

namespace flowmesh {
namespace {

namespace fs = std::filesystem;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;  // Unix ns
constexpr int64_t kSec = 1'000'000'000;
const IpAddr kWeb = IpAddr::V4(10, 213, 0, 2);
const IpAddr kApp = IpAddr::V4(10, 213, 0, 3);

class AggregatorWorkloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fm-aggw-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    late_path_ = "/system.slice/docker-" + late_ + ".scope";
    late_id_ = MakeCgroup(late_path_);
    nginx_id_ = MakeCgroup("/system.slice/nginx.service");
    WorkloadResolverOptions o;
    o.cgroup_root = (dir_ / "cg").string();
    o.runtime.root = (dir_ / "root").string();  // no container's files yet
    resolver_ = std::make_unique<WorkloadResolver>(ProcReader((dir_ / "proc").string()), o,
                                                   [this] { return now_; });
    cache_ = std::make_unique<ProcessCache>(
        ProcReader((dir_ / "proc").string()), ProcessCacheOptions{}, [this] { return now_; },
        resolver_.get());
    agg_ = std::make_unique<Aggregator>(cache_.get());
  }
  void TearDown() override { fs::remove_all(dir_); }

  uint64_t MakeCgroup(const std::string& path) { return testing::MakeFakeCgroup(dir_, path); }
  void PutProcess(uint32_t pid, uint64_t start, const std::string& comm,
                  const std::string& cgroup) {
    testing::PutFakeProcess(dir_, pid, start, comm, cgroup);
  }
  // The runtime writes the container's name (docker: config.v2.json).
  void NameLateContainer() {
    fs::path c = dir_ / "root/var/lib/docker/containers" / late_;
    fs::create_directories(c);
    std::ofstream(c / "config.v2.json") << R"({"Name": "/late"})";
  }
  static ProcessRef Ref(uint32_t pid, uint64_t start, uint64_t cgroup_id, const char* comm) {
    ProcessRef r;
    r.pid = pid;
    r.start_ticks = start;
    r.cgroup_id = cgroup_id;
    r.set_comm(comm);
    return r;
  }
  // An active connection opened (kernel) by `proc` at `ts`.
  void Open(uint16_t lport, int64_t ts, const ProcessRef& proc) {
    ConnEvent e;
    e.kind = EventKind::kOpen;
    e.source = EventSource::kKernel;
    e.direction = Direction::kActive;
    e.ts_ns = ts;
    e.key = ConnKey{1, kWeb, kApp, lport, 8000};
    e.proc = proc;
    agg_->Add(e);
  }
  void Listen(uint16_t port, int64_t ts, const ProcessRef& proc) {
    ConnEvent e;
    e.kind = EventKind::kListen;
    e.source = EventSource::kKernel;
    e.ts_ns = ts;
    e.key = ConnKey{1, IpAddr::V4(0, 0, 0, 0), {}, port, 0};
    e.proc = proc;
    agg_->Add(e);
  }

  const std::string late_ = std::string(64, 'e');
  std::string late_path_;
  fs::path dir_;
  int64_t now_ = 1000 * kSec;  // the cache's and resolver's monotonic clock
  uint64_t late_id_ = 0, nginx_id_ = 0;
  std::unique_ptr<WorkloadResolver> resolver_;
  std::unique_ptr<ProcessCache> cache_;
  std::unique_ptr<Aggregator> agg_;
};

TEST_F(AggregatorWorkloadTest, AContainerNamedAfterFirstSightIsWrittenAgain) {
  PutProcess(304, 3040, "python3", late_path_);
  const ProcessRef app = Ref(304, 3040, late_id_, "python3");
  Open(40001, kT0, app);
  Batch b = agg_->TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].workload.kind, WorkloadKind::kContainer);
  EXPECT_EQ(b.processes[0].workload.name, "");  // not named yet

  NameLateContainer();
  // Within process_recheck_ns of the last look: not asked again per event.
  Open(40002, kT0 + kSec / 2, app);
  EXPECT_THAT(agg_->TakeBatch().processes, IsEmpty());
  // Later (and past the resolver's metadata retry): named, so written again
  // for the store to overwrite the row it wrote first.
  now_ += 2 * kSec;
  Open(40003, kT0 + 2 * kSec, app);
  b = agg_->TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].pid, 304u);
  EXPECT_EQ(b.processes[0].workload.name, "late");
  EXPECT_EQ(agg_->Stats().processes_renamed, 1u);

  // Named: no more lookups for it, and nothing written again.
  const uint64_t lookups = cache_->Stats().lookups;
  now_ += 10 * kSec;
  Open(40004, kT0 + 12 * kSec, app);
  EXPECT_THAT(agg_->TakeBatch().processes, IsEmpty());
  EXPECT_EQ(cache_->Stats().lookups, lookups);
}

TEST_F(AggregatorWorkloadTest, AMoveTheProbeSeesIsWrittenAgain) {
  PutProcess(305, 3050, "python3", "/system.slice/nginx.service");
  Open(40001, kT0, Ref(305, 3050, nginx_id_, "python3"));
  ASSERT_THAT(agg_->TakeBatch().processes, SizeIs(1));
  // Moved into the container; asked at most once a second.
  Open(40002, kT0 + kSec / 10, Ref(305, 3050, late_id_, "python3"));
  EXPECT_THAT(agg_->TakeBatch().processes, IsEmpty());
  Open(40003, kT0 + 2 * kSec, Ref(305, 3050, late_id_, "python3"));
  Batch b = agg_->TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].cgroup_id, late_id_);
  EXPECT_EQ(b.processes[0].workload.kind, WorkloadKind::kContainer);
}

TEST_F(AggregatorWorkloadTest, AListenerCarriesItsOwnersWorkload) {
  PutProcess(120, 1200, "nginx", "/system.slice/nginx.service");
  const ProcessRef nginx = Ref(120, 1200, nginx_id_, "nginx");
  Listen(80, kT0, nginx);  // not cached yet: filled in once looked up
  Batch b = agg_->TakeBatch();
  ASSERT_THAT(b.endpoints_added, SizeIs(1));
  EXPECT_EQ(b.endpoints_added[0].workload.id, "nginx.service");
  Listen(443, kT0 + 1, nginx);  // cached
  b = agg_->TakeBatch();
  ASSERT_THAT(b.endpoints_added, SizeIs(1));
  EXPECT_EQ(b.endpoints_added[0].port, 443);
  EXPECT_EQ(b.endpoints_added[0].workload.id, "nginx.service");
}

TEST_F(AggregatorWorkloadTest, AListenerIsWrittenAgainWhenItsOwnerIsNamed) {
  PutProcess(304, 3040, "python3", late_path_);
  const ProcessRef app = Ref(304, 3040, late_id_, "python3");
  Listen(8080, kT0, app);
  Batch b = agg_->TakeBatch();
  ASSERT_THAT(b.endpoints_added, SizeIs(1));
  EXPECT_EQ(b.endpoints_added[0].workload.kind, WorkloadKind::kContainer);
  EXPECT_EQ(b.endpoints_added[0].workload.name, "");

  NameLateContainer();
  now_ += 2 * kSec;
  Open(40001, kT0 + 2 * kSec, app);
  b = agg_->TakeBatch();
  ASSERT_THAT(b.processes, SizeIs(1));
  EXPECT_EQ(b.processes[0].workload.name, "late");
  ASSERT_THAT(b.endpoints_added, SizeIs(1));
  EXPECT_EQ(b.endpoints_added[0].port, 8080);
  EXPECT_EQ(b.endpoints_added[0].since_ns, kT0);
  EXPECT_EQ(b.endpoints_added[0].workload.name, "late");
}

}  // namespace
}  // namespace flowmesh
