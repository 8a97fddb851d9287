// ProcessCache against the fake /proc in testdata: verified identities are
// cached, reused pids and vanished processes yield only the ref and are
// remembered briefly, the cache stays within its capacity.
#include "node/flow/process_cache.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/test_paths.h"

namespace flowmesh {
namespace {

const std::string kProc = std::string(FLOWMESH_TESTDATA) + "/proc";
constexpr int64_t kSec = 1'000'000'000;

ProcessRef Ref(uint32_t pid, uint64_t start, const char* comm) {
  ProcessRef r;
  r.pid = pid;
  r.start_ticks = start;
  r.set_comm(comm);
  return r;
}

class ProcessCacheTest : public ::testing::Test {
 protected:
  ProcessCache Make(size_t capacity = 16) {
    ProcessCacheOptions o;
    o.capacity = capacity;
    o.negative_ttl_ns = 5 * kSec;
    return ProcessCache(ProcReader(kProc), o, [this] { return now_; });
  }
  int64_t now_ = 1000 * kSec;
};

TEST_F(ProcessCacheTest, ReadsAVerifiedProcessOnce) {
  ProcessCache cache = Make();
  ProcessDetails d = cache.Lookup(Ref(101, 1010, "nginx"));
  EXPECT_EQ(d.pid, 101u);
  EXPECT_EQ(d.start_ticks, 1010u);
  EXPECT_EQ(d.pgid, 100u);
  EXPECT_EQ(d.ppid, 100u);
  EXPECT_EQ(d.comm, "nginx");
  EXPECT_EQ(d.exe, "/usr/sbin/nginx");
  now_ += 3600 * kSec;  // a verified identity does not expire
  EXPECT_EQ(cache.Lookup(Ref(101, 1010, "nginx")), d);
  ProcessCacheStats s = cache.Stats();
  EXPECT_EQ(s.lookups, 2u);
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.proc_reads, 1u);
}

TEST_F(ProcessCacheTest, ReusedPidGivesOnlyTheRefAndIsRememberedBriefly) {
  ProcessCache cache = Make();
  // /proc/101 is a process that started at 1010; this ref's started at 900.
  ProcessDetails d = cache.Lookup(Ref(101, 900, "old-worker"));
  EXPECT_EQ(d.pid, 101u);
  EXPECT_EQ(d.start_ticks, 900u);
  EXPECT_EQ(d.comm, "old-worker");
  EXPECT_EQ(d.pgid, 0u);
  EXPECT_EQ(d.exe, "");
  EXPECT_EQ(cache.Lookup(Ref(101, 900, "old-worker")).comm, "old-worker");
  EXPECT_EQ(cache.Stats().proc_reads, 1u);
  EXPECT_EQ(cache.Stats().pid_reused, 1u);
  // The process now in /proc/101 is still found under its own identity.
  EXPECT_EQ(cache.Lookup(Ref(101, 1010, "nginx")).exe, "/usr/sbin/nginx");
  now_ += 6 * kSec;
  cache.Lookup(Ref(101, 900, "old-worker"));
  EXPECT_EQ(cache.Stats().proc_reads, 3u);  // negative expired: read again
}

TEST_F(ProcessCacheTest, VanishedProcessGivesTheRef) {
  ProcessCache cache = Make();
  for (int i = 0; i < 100; i++) {
    ProcessDetails d = cache.Lookup(Ref(9999, 42, "curl"));
    EXPECT_EQ(d.comm, "curl");
    EXPECT_EQ(d.pgid, 0u);
  }
  EXPECT_EQ(cache.Stats().proc_reads, 1u);  // a flood of events reads /proc once
  EXPECT_EQ(cache.Stats().gone, 1u);
}

TEST_F(ProcessCacheTest, UnknownProcessAndUnverifiableStartTime) {
  ProcessCache cache = Make();
  EXPECT_EQ(cache.Lookup(ProcessRef{}), ProcessDetails{});
  EXPECT_EQ(cache.Stats().proc_reads, 0u);
  // No start time: what /proc has now, but only briefly trusted.
  ProcessDetails d = cache.Lookup(Ref(400, 0, ""));
  EXPECT_EQ(d.comm, "redis-server");
  EXPECT_EQ(d.start_ticks, 0u);  // the identity stays the ref's
  cache.Lookup(Ref(400, 0, ""));
  EXPECT_EQ(cache.Stats().proc_reads, 1u);
  now_ += 6 * kSec;
  cache.Lookup(Ref(400, 0, ""));
  EXPECT_EQ(cache.Stats().proc_reads, 2u);
}

TEST_F(ProcessCacheTest, EvictsTheLeastRecentlyUsed) {
  ProcessCache cache = Make(2);
  cache.Lookup(Ref(100, 1000, "nginx"));
  cache.Lookup(Ref(101, 1010, "nginx"));
  cache.Lookup(Ref(100, 1000, "nginx"));  // 101 is now the least recent
  cache.Lookup(Ref(400, 2000, "redis-server"));
  ProcessCacheStats s = cache.Stats();
  EXPECT_EQ(s.size, 2u);
  EXPECT_EQ(s.evictions, 1u);
  cache.Lookup(Ref(100, 1000, "nginx"));
  EXPECT_EQ(cache.Stats().proc_reads, 3u);
  cache.Lookup(Ref(101, 1010, "nginx"));
  EXPECT_EQ(cache.Stats().proc_reads, 4u);
}

TEST_F(ProcessCacheTest, PeekOnlyReadsTheCache) {
  ProcessCache cache = Make(2);
  // Not cached: no /proc read, and nothing inserted (not even a negative).
  EXPECT_FALSE(cache.Peek(Ref(101, 1010, "nginx")));
  EXPECT_FALSE(cache.Peek(Ref(9999, 42, "curl")));
  EXPECT_FALSE(cache.Peek(ProcessRef{}));
  ProcessCacheStats s = cache.Stats();
  EXPECT_EQ(s.proc_reads, 0u);
  EXPECT_EQ(s.size, 0u);

  ProcessDetails d = cache.Lookup(Ref(101, 1010, "nginx"));
  cache.Lookup(Ref(100, 1000, "nginx"));
  std::optional<ProcessDetails> peeked = cache.Peek(Ref(101, 1010, "nginx"));
  ASSERT_TRUE(peeked);
  EXPECT_EQ(*peeked, d);
  // Peek does not make 101 the most recent: the next insert evicts it.
  cache.Lookup(Ref(400, 2000, "redis-server"));
  EXPECT_FALSE(cache.Peek(Ref(101, 1010, "nginx")));
  EXPECT_TRUE(cache.Peek(Ref(100, 1000, "nginx")));

  // A negative is peeked while it lasts, with the ref's comm.
  cache.Lookup(Ref(9999, 42, "curl"));
  ASSERT_TRUE(cache.Peek(Ref(9999, 42, "curl")));
  EXPECT_EQ(cache.Peek(Ref(9999, 42, "curl"))->comm, "curl");
  now_ += 6 * kSec;
  EXPECT_FALSE(cache.Peek(Ref(9999, 42, "curl")));
  s = cache.Stats();
  EXPECT_EQ(s.proc_reads, 4u);  // the Lookups' only
  EXPECT_EQ(s.lookups, 4u);
}

}  // namespace
}  // namespace flowmesh
