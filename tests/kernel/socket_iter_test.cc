// The socket-owner iterator (bpf/tcptrace.bpf.c, socket_owners) against the
// real kernel, loaded by BpfProbe with the tracing programs:
// it names the holder of every socket this process holds, as the walk of
// /proc/<pid>/fd does, and SocketOwners gives the same owners from either.
#include "node/probe/socket_iter.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "node/probe/bpf_probe.h"
#include "node/proc/socket_owners.h"
#include "tests/kernel/kernel_test_util.h"

namespace flowmesh {
namespace {

// A listener and n connections to it on 127.0.0.1, every end held here.
struct Sockets {
  explicit Sockets(int n) {
    const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        listen(lfd, n) != 0 || getsockname(lfd, reinterpret_cast<sockaddr*>(&sin), &len) != 0)
      return;
    fds.push_back(lfd);
    for (int i = 0; i < n; i++) {
      const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0 || connect(c, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) return;
      fds.push_back(c);
      const int a = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (a < 0) return;
      fds.push_back(a);
    }
  }
  ~Sockets() {
    for (int fd : fds) close(fd);
  }
  std::set<uint32_t> Inodes() const {
    std::set<uint32_t> out;
    for (int fd : fds) {
      struct stat st {};
      if (fstat(fd, &st) == 0) out.insert(static_cast<uint32_t>(st.st_ino));
    }
    return out;
  }
  std::vector<int> fds;
};

// The iterator as meshd has it: loaded with the tracing programs.
class SocketIterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    Status init = probe_.Init();
    ASSERT_TRUE(init.ok()) << init.message();
    iter = probe_.socket_iter();
    ASSERT_NE(iter, nullptr) << "this kernel has task_file iterators";
  }
  BpfProbe probe_{BpfProbeOptions{}};
  const SocketIter* iter = nullptr;
};

TEST_F(SocketIterTest, NamesThisProcessAsTheHolderOfEachOfItsSockets) {
  Sockets s(100);
  ASSERT_EQ(s.fds.size(), 201u);
  const std::set<uint32_t> mine = s.Inodes();
  ASSERT_EQ(mine.size(), 201u);

  Result<std::vector<std::pair<uint32_t, uint32_t>>> holders = iter->Holders();
  ASSERT_TRUE(holders.ok()) << holders.status().message();
  std::set<uint32_t> found;
  for (const auto& [inode, pid] : *holders)
    if (mine.count(inode)) {
      EXPECT_EQ(pid, static_cast<uint32_t>(getpid())) << "socket " << inode;
      found.insert(inode);
    }
  EXPECT_EQ(found, mine);

  // Closed: gone from the next read.
  const int closed = s.fds.back();
  struct stat st {};
  ASSERT_EQ(fstat(closed, &st), 0);
  close(closed);
  s.fds.pop_back();
  holders = iter->Holders();
  ASSERT_TRUE(holders.ok());
  EXPECT_TRUE(std::none_of(holders->begin(), holders->end(), [&](const auto& h) {
    return h.first == static_cast<uint32_t>(st.st_ino);
  }));
}

TEST_F(SocketIterTest, SocketOwnersGiveTheSameOwnersFromTheIteratorAsFromProc) {
  Sockets s(20);
  SocketOwners from_proc;
  SocketOwners from_iter;
  from_iter.set_holder_source([&]() -> std::optional<std::vector<std::pair<uint32_t, uint32_t>>> {
    Result<std::vector<std::pair<uint32_t, uint32_t>>> h = iter->Holders();
    if (!h.ok()) return std::nullopt;
    return std::move(h).value();
  });
  from_proc.Refresh();
  from_iter.Refresh();
  for (uint32_t inode : s.Inodes()) {
    const ProcessRef a = from_proc.Lookup(inode), b = from_iter.Lookup(inode);
    EXPECT_EQ(a.pid, static_cast<uint32_t>(getpid())) << inode;
    EXPECT_EQ(b.pid, a.pid) << inode;
    EXPECT_EQ(b.start_ticks, a.start_ticks) << inode;
    EXPECT_EQ(b.cgroup_id, a.cgroup_id) << inode;
    EXPECT_STREQ(b.comm, a.comm) << inode;
  }
  // Every socket on the machine the walk found, the iterator found too
  // (sockets opened or closed between the two reads aside).
  EXPECT_GE(from_iter.size() + 16, from_proc.size());
}

}  // namespace
}  // namespace flowmesh
