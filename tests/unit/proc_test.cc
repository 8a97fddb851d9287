// /proc readers against the checked-in fake tree in testdata/proc: stat
// parsing, process details, socket owners, network namespaces.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "node/probe/netns.h"
#include "node/proc/cgroup.h"
#include "node/proc/process.h"
#include "node/proc/socket_owners.h"
#include "tests/test_paths.h"

namespace flowmesh {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kProc = std::string(FLOWMESH_TESTDATA) + "/proc";
const std::string kCgroupRoot = std::string(FLOWMESH_TESTDATA) + "/cgroup2";
constexpr uint32_t kHostNetns = 4026531840u;
constexpr uint32_t kLabNetns = 4026532999u;

TEST(ParseProcStat, CommWithSpacesAndParentheses) {
  Result<ProcStat> st = ParseProcStat(
      "4242 (a) b (c) d) S 7 4240 4240 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0\n");
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->pid, 4242u);
  EXPECT_EQ(st->comm, "a) b (c) d");
  EXPECT_EQ(st->state, 'S');
  EXPECT_EQ(st->ppid, 7u);
  EXPECT_EQ(st->pgid, 4240u);
  EXPECT_EQ(st->start_ticks, 987654u);
}

TEST(ParseProcStat, EmptyCommAndLargeStartTime) {
  Result<ProcStat> st =
      ParseProcStat("9 () R 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 18446744073709551615");
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->comm, "");
  EXPECT_EQ(st->start_ticks, 18446744073709551615ull);
}

TEST(ParseProcStat, RejectsMalformedLines) {
  EXPECT_THAT(ParseProcStat("500 broken S 1 500").status().message(), HasSubstr("no '(comm)'"));
  EXPECT_THAT(ParseProcStat("x (sh) S 1 2 3").status().message(), HasSubstr("bad pid 'x'"));
  EXPECT_THAT(ParseProcStat("1 (sh) S 1 2 3").status().message(),
              HasSubstr("expected at least 22"));
  EXPECT_THAT(
      ParseProcStat("1 (sh) S one 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5").status().message(),
      HasSubstr("non-numeric"));
  EXPECT_FALSE(ParseProcStat("").ok());
}

TEST(ParseInodeLink, AcceptsOnlyTheRequestedKind) {
  EXPECT_EQ(ParseInodeLink("socket:[12345]", "socket"), 12345u);
  EXPECT_EQ(ParseInodeLink("net:[4026531840]", "net"), 4026531840u);
  EXPECT_EQ(ParseInodeLink("pipe:[12345]", "socket"), std::nullopt);
  EXPECT_EQ(ParseInodeLink("socket:[]", "socket"), std::nullopt);
  EXPECT_EQ(ParseInodeLink("socket:[12x]", "socket"), std::nullopt);
  EXPECT_EQ(ParseInodeLink("socket:12345", "socket"), std::nullopt);
  EXPECT_EQ(ParseInodeLink("/tmp/socket:[1]", "socket"), std::nullopt);
  EXPECT_EQ(ParseInodeLink("socket:[99999999999]", "socket"), std::nullopt);  // > 32 bits
}

TEST(ProcReader, ReadsAProcessWhoseCommHasSpacesAndParentheses) {
  ProcReader reader(kProc);
  Result<ProcessInfo> p = reader.Read(200);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->pid, 200u);
  EXPECT_EQ(p->ppid, 1u);
  EXPECT_EQ(p->pgid, 200u);
  EXPECT_EQ(p->start_ticks, 1500u);
  EXPECT_EQ(p->comm, "my (weird) proc");
  EXPECT_EQ(p->exe, "");  // no exe link: unreadable is not an error
  EXPECT_EQ(p->cmdline, "python3 -c print(1)");
}

TEST(ProcReader, ReadsExeAndCmdline) {
  ProcReader reader(kProc);
  Result<ProcessInfo> p = reader.Read(101);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->comm, "nginx");
  EXPECT_EQ(p->ppid, 100u);
  EXPECT_EQ(p->pgid, 100u);
  EXPECT_EQ(p->start_ticks, 1010u);
  EXPECT_EQ(p->exe, "/usr/sbin/nginx");
  EXPECT_EQ(p->cmdline, "nginx: worker process");

  Result<ProcessInfo> init = reader.Read(1);
  ASSERT_TRUE(init.ok());
  EXPECT_EQ(init->cmdline, "/sbin/init splash");
  EXPECT_EQ(init->exe, "/usr/lib/systemd/systemd");
}

TEST(ProcReader, ErrorsNameTheFileAndTheCause) {
  ProcReader reader(kProc);
  Result<ProcessInfo> broken = reader.Read(500);
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(broken.status().message(), HasSubstr(kProc + "/500/stat"));
  EXPECT_THAT(broken.status().message(), HasSubstr("no '(comm)'"));

  Result<ProcessInfo> gone = reader.Read(999);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), Status::Code::kNotFound);
  EXPECT_THAT(gone.status().message(), HasSubstr(kProc + "/999/stat"));
  EXPECT_THAT(gone.status().message(), HasSubstr("No such file or directory"));
}

TEST(ProcReader, NetnsInode) {
  ProcReader reader(kProc);
  EXPECT_EQ(*reader.NetnsInode(100), kHostNetns);
  EXPECT_EQ(*reader.NetnsInode(400), kLabNetns);
  Result<uint32_t> none = reader.NetnsInode(500);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr(kProc + "/500/ns/net"));
}

TEST(ProcReader, PidsAreTheNumericEntriesAscending) {
  ProcReader reader(kProc);
  Result<std::vector<uint32_t>> pids = reader.Pids();
  ASSERT_TRUE(pids.ok()) << pids.status().message();
  // "self", "uptime" and "sys" are not processes.
  EXPECT_THAT(*pids, ElementsAre(1, 100, 101, 102, 200, 300, 400, 401, 500));

  Result<std::vector<uint32_t>> missing = ProcReader("/nonexistent/proc").Pids();
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("cannot list /nonexistent/proc"));
  EXPECT_THAT(missing.status().message(), HasSubstr("procfs"));
}

// A clock the test steps by hand, to check the rescan rate limit.
struct FakeClock {
  int64_t now = 1'000'000'000;
  SocketOwners::Clock fn() {
    return [this] { return now; };
  }
};

TEST(SocketOwners, ResolvesSocketsToProcesses) {
  FakeClock clock;
  SocketOwners owners(kProc, std::chrono::milliseconds(100), clock.fn());

  ProcessRef weird = owners.Lookup(33333);
  EXPECT_EQ(weird.pid, 200u);
  EXPECT_EQ(weird.start_ticks, 1500u);
  EXPECT_EQ(weird.comm_view(), "my (weird) proc");
  EXPECT_EQ(owners.scans(), 1u);

  ProcessRef redis = owners.Lookup(44444);  // another namespace, same scan
  EXPECT_EQ(redis.pid, 400u);
  EXPECT_EQ(redis.comm_view(), "redis-server");
  EXPECT_EQ(owners.scans(), 1u);

  // Held by one worker through two fds (dup): reported once, that worker.
  ProcessRef accepted = owners.Lookup(22222);
  EXPECT_EQ(accepted.pid, 101u);
  EXPECT_EQ(accepted.start_ticks, 1010u);
}

TEST(SocketOwners, SharedSocketGoesToTheServingProcess) {
  SocketOwners owners(kProc);
  // nginx: the master (100) and both workers hold the listener; the master
  // is the workers' parent so a worker is chosen; 101 and 102 started in
  // the same tick, so the lower pid breaks the tie.
  ProcessRef nginx = owners.Lookup(12345);
  EXPECT_EQ(nginx.pid, 101u);
  EXPECT_EQ(nginx.comm_view(), "nginx");
  EXPECT_EQ(owners.Lookup(12346).pid, 101u);
  // Socket activation: systemd (1) passed the listener to sshd (300).
  ProcessRef sshd = owners.Lookup(5555);
  EXPECT_EQ(sshd.pid, 300u);
  EXPECT_EQ(sshd.start_ticks, 1600u);
  EXPECT_EQ(sshd.comm_view(), "sshd");
}

// A holder source (meshd's BPF iterator) replaces the walk of fd links; the
// owner is chosen among the holders it names as among the walk's, and a
// source that fails (nullopt) leaves that scan to the walk.
TEST(SocketOwners, AHolderSourceNamesTheHoldersInsteadOfTheFdLinks) {
  SocketOwners owners(kProc);
  int calls = 0;
  bool fail = false;
  owners.set_holder_source([&]() -> std::optional<std::vector<std::pair<uint32_t, uint32_t>>> {
    calls++;
    if (fail) return std::nullopt;
    // The nginx listener held by the master and both workers, in no order,
    // and a socket the fd links do not show (pid 300, sshd).
    return std::vector<std::pair<uint32_t, uint32_t>>{
        {12345, 102}, {77777, 300}, {12345, 100}, {12345, 101}};
  });
  EXPECT_EQ(owners.Lookup(12345).pid, 101u) << "a worker, the lower pid of the two";
  EXPECT_EQ(owners.Lookup(77777).pid, 300u);
  EXPECT_EQ(owners.Lookup(77777).comm_view(), "sshd");
  EXPECT_EQ(calls, 1);
  // Not in the source's list (the walk would have found it): unknown.
  EXPECT_EQ(owners.Lookup(44444, /*seen_at_ns=*/0).pid, 0u);
  fail = true;
  owners.Refresh();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(owners.Lookup(44444).pid, 400u) << "the walk, when the source fails";
  EXPECT_EQ(owners.Lookup(77777).pid, 0u);
}

TEST(SocketOwners, UnknownInodesRescanAtMostOncePerInterval) {
  FakeClock clock;
  SocketOwners owners(kProc, std::chrono::milliseconds(100), clock.fn());
  EXPECT_FALSE(owners.Lookup(0).known());  // inode 0 never scans
  EXPECT_EQ(owners.scans(), 0u);

  EXPECT_FALSE(owners.Lookup(55555).known());  // holder's stat is malformed
  EXPECT_EQ(owners.scans(), 1u);
  EXPECT_FALSE(owners.Lookup(1).known());  // "/tmp/socket:[1]" is a file, not a socket
  for (uint32_t inode = 70000; inode < 71000; inode++) EXPECT_FALSE(owners.Lookup(inode).known());
  EXPECT_EQ(owners.scans(), 1u);  // a storm of misses within 100 ms: one scan

  clock.now += 99'000'000;
  EXPECT_FALSE(owners.Lookup(70000).known());
  EXPECT_EQ(owners.scans(), 1u);
  clock.now += 1'000'000;
  EXPECT_FALSE(owners.Lookup(70000).known());
  EXPECT_EQ(owners.scans(), 2u);

  EXPECT_EQ(owners.Lookup(33333).pid, 200u);  // cached: no scan
  EXPECT_EQ(owners.scans(), 2u);
  owners.Refresh();
  EXPECT_EQ(owners.scans(), 3u);
  // 5555 12345 12346 22222 33333 44444; 55555's only holder has no usable stat.
  EXPECT_EQ(owners.size(), 6u);
}

TEST(ParseProcCgroupV2, APathOutsideOurCgroupNamespaceSaysSo) {
  Result<std::string> ok = ParseProcCgroupV2("1:name=systemd:/x\n0::/system.slice/nginx.service\n");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, "/system.slice/nginx.service");
  Result<std::string> outside = ParseProcCgroupV2("0::/../../system.slice/nginx.service\n");
  ASSERT_FALSE(outside.ok());
  EXPECT_THAT(
      outside.status().message(),
      ::testing::HasSubstr("meshd must run in the host's cgroup namespace to name workloads"));
  EXPECT_FALSE(ParseProcCgroupV2("0::/..\n").ok());
  EXPECT_TRUE(ParseProcCgroupV2("0::/..hidden.slice\n").ok()) << "a cgroup may be named so";
}

TEST(SocketOwners, OwnersCarryTheirCgroupV2Id) {
  FakeClock clock;
  SocketOwners owners(kProc, std::chrono::milliseconds(100), clock.fn(), kCgroupRoot);
  struct stat st {};
  ASSERT_EQ(stat((kCgroupRoot + "/system.slice/nginx.service").c_str(), &st), 0);
  Result<uint64_t> nginx_id = CgroupIdOfPath(kCgroupRoot, "/system.slice/nginx.service");
  ASSERT_TRUE(nginx_id.ok()) << nginx_id.status().message();
  // A fixture on disk: its file handle (inode and generation), as kernfs's is the id.
  EXPECT_EQ(*nginx_id, CgroupIdOfDir(kCgroupRoot + "/system.slice/nginx.service", st.st_ino));

  // 101's cgroup file has v1 lines too: only "0::" counts.
  EXPECT_EQ(owners.Lookup(12345).cgroup_id, *nginx_id);
  EXPECT_EQ(owners.Lookup(22222).cgroup_id, *nginx_id);
  // 200: v1 only; 300: a cgroup gone from the hierarchy. Both counted, both 0.
  EXPECT_EQ(owners.Lookup(33333).cgroup_id, 0u);
  EXPECT_EQ(owners.Lookup(5555).cgroup_id, 0u);
  // 400 has no cgroup file, as a process that exited during the scan: not an error.
  EXPECT_EQ(owners.Lookup(44444).cgroup_id, 0u);
  EXPECT_EQ(owners.cgroup_errors(), 2u);  // per owner, not per socket
  EXPECT_EQ(owners.cgroup_root(), kCgroupRoot);
  owners.Refresh();
  EXPECT_EQ(owners.cgroup_errors(), 4u);

  // No v2 hierarchy: every id stays 0 and nothing is an error.
  SocketOwners v1_only(kProc, std::chrono::milliseconds(100), clock.fn(), "");
  EXPECT_EQ(v1_only.Lookup(12345).pid, 101u);
  EXPECT_EQ(v1_only.Lookup(12345).cgroup_id, 0u);
  EXPECT_EQ(v1_only.cgroup_errors(), 0u);
}

TEST(SocketOwners, MissesOfOneDumpCostOneScanWhateverTheInterval) {
  FakeClock clock;
  SocketOwners owners(kProc, std::chrono::milliseconds(100), clock.fn());
  int64_t dumped_at = clock.now;
  EXPECT_FALSE(owners.Lookup(70000, dumped_at).known());
  EXPECT_EQ(owners.scans(), 1u);
  // The scan started after the dump ended: another scan cannot find more.
  EXPECT_FALSE(owners.Lookup(70001, dumped_at).known());
  EXPECT_EQ(owners.scans(), 1u);
  // The next dump, 1 ms later, may hold sockets opened since that scan.
  clock.now += 1'000'000;
  dumped_at = clock.now;
  EXPECT_EQ(owners.Lookup(44444, dumped_at).pid, 400u);  // cached: no scan needed
  EXPECT_EQ(owners.scans(), 1u);
  EXPECT_FALSE(owners.Lookup(70002, dumped_at).known());
  EXPECT_EQ(owners.scans(), 2u);
  EXPECT_FALSE(owners.Lookup(70003, dumped_at).known());
  EXPECT_EQ(owners.scans(), 2u);
}

TEST(ListNetns, DistinctNamespacesWithTheirLowestPid) {
  Result<std::vector<NetnsRef>> ns = ListNetns(kProc);
  ASSERT_TRUE(ns.ok()) << ns.status().message();
  ASSERT_EQ(ns->size(), 2u);
  EXPECT_EQ((*ns)[0].inode, kHostNetns);
  EXPECT_EQ((*ns)[0].pid, 1u);
  EXPECT_EQ((*ns)[0].path, kProc + "/1/ns/net");
  EXPECT_EQ((*ns)[1].inode, kLabNetns);
  EXPECT_EQ((*ns)[1].pid, 400u);
  EXPECT_EQ((*ns)[1].path, kProc + "/400/ns/net");
}

}  // namespace
}  // namespace flowmesh
