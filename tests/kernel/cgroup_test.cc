// Cgroup ids at the source, against the real kernel: processes moved into
// test cgroups (cgroup v2) listen and connect, and the BPF events, the
// start-up seed (sock_diag and /proc) and the polling probe all carry the id
// of the cgroup each process was in, which is the inode CgroupIdOfPath reads.
#include "node/proc/cgroup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "node/probe/bpf_probe.h"
#include "node/probe/poll_probe.h"
#include "node/probe/snapshot.h"
#include "node/proc/process.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh {
namespace {

using testing::TrafficResult;
using testing::TrafficSpec;

// <v2 root>/fmtest-<pid>/<leaf> cgroups for one test. Remove() (and, as a
// fallback, the destructor) deletes them once their processes have exited.
class TestCgroups {
 public:
  TestCgroups() {
    Result<std::string> root = FindCgroupV2Root();
    if (!root.ok()) {
      error_ = root.status().message();
      return;
    }
    root_ = *root;
    base_ = "/fmtest-" + std::to_string(getpid());
    if (mkdir((root_ + base_).c_str(), 0755) != 0 && errno != EEXIST)
      error_ = "mkdir " + root_ + base_ + ": " + strerror(errno);
  }
  ~TestCgroups() { (void)Remove(); }

  const std::string& error() const { return error_; }
  const std::string& root() const { return root_; }

  // Creates <base>/<leaf>; returns its directory ("" on error, in error()).
  std::string Make(const std::string& leaf) {
    const std::string dir = root_ + base_ + "/" + leaf;
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      error_ = "mkdir " + dir + ": " + strerror(errno);
      return "";
    }
    leaves_.push_back(leaf);
    return dir;
  }
  // The id of <base>/<leaf>, as /proc/<pid>/cgroup names it.
  uint64_t Id(const std::string& leaf) const {
    Result<uint64_t> id = CgroupIdOfPath(root_, base_ + "/" + leaf);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  // Leaves first, then the base; an error names what is still there.
  Status Remove() {
    if (root_.empty()) return Status::Ok();
    for (const std::string& leaf : leaves_) {
      const std::string dir = root_ + base_ + "/" + leaf;
      if (rmdir(dir.c_str()) != 0 && errno != ENOENT)
        return Status::FromErrno(errno, "rmdir " + dir);
    }
    leaves_.clear();
    if (rmdir((root_ + base_).c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno(errno, "rmdir " + root_ + base_);
    return Status::Ok();
  }

 private:
  std::string root_, base_, error_;
  std::vector<std::string> leaves_;
};

// The cgroup id of this process, the way SocketOwners finds it.
uint64_t OwnCgroupId(const std::string& root) {
  Result<std::string> text = ReadSmallFile("/proc/self/cgroup");
  if (!text.ok()) return 0;
  Result<std::string> path = ParseProcCgroupV2(*text);
  if (!path.ok()) return 0;
  Result<uint64_t> id = CgroupIdOfPath(root, *path);
  return id.ok() ? *id : 0;
}

// A child in `cgroup` that listens on 127.0.0.1 and serves connections one
// at a time (reads each to EOF), until killed.
class ListenerChild {
 public:
  explicit ListenerChild(const std::string& cgroup) {
    int p[2];
    if (pipe(p) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_NAME, "fm-cg-server", 0, 0, 0);
      if (!testing::JoinCgroup(cgroup)) _exit(10);
      int ls = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_storage ss;
      socklen_t len = testing::LoopbackAddr(AF_INET, 0, &ss);
      if (bind(ls, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(ls, 16) != 0) _exit(11);
      len = sizeof ss;
      getsockname(ls, reinterpret_cast<sockaddr*>(&ss), &len);
      uint16_t port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
      if (write(p[1], &port, sizeof port) != sizeof port) _exit(12);
      for (;;) {
        int c = accept(ls, nullptr, nullptr);
        char buf[256];
        while (c >= 0 && read(c, buf, sizeof buf) > 0) {
        }
        if (c >= 0) close(c);
      }
    }
    close(p[1]);
    if (pid_ > 0 && read(p[0], &port_, sizeof port_) != sizeof port_) port_ = 0;
    close(p[0]);
  }
  ~ListenerChild() { Stop(); }
  // Kills and reaps it, so its cgroup can go.
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A connection from this process to 127.0.0.1:port, held open.
int ConnectTo(uint16_t port) {
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss;
  socklen_t len = testing::LoopbackAddr(AF_INET, port, &ss);
  if (connect(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    close(s);
    return -1;
  }
  return s;
}

class Collector : public EventSink {
 public:
  void OnEvent(const ConnEvent& e) override { events.push_back(e); }
  const ConnEvent* Find(EventKind kind, uint16_t lport, uint16_t rport) const {
    for (const ConnEvent& e : events)
      if (e.kind == kind && e.key.lport == lport && e.key.rport == rport) return &e;
    return nullptr;
  }
  std::vector<ConnEvent> events;
};

void PumpUntil(Probe& probe, Collector& c, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    Result<int> n = probe.TransferData(c, 50);
    ASSERT_TRUE(n.ok()) << n.status().message();
  }
}

class BpfCgroupTest : public ::testing::TestWithParam<BpfAttach> {};

// Listen and connect happen in the caller's context: the event takes the
// caller's cgroup. The accepted side is made in softirq: it takes the
// listener's, as it takes its pid.
TEST_P(BpfCgroupTest, EventsCarryTheCgroupOfListenerAndConnector) {
  FM_REQUIRE_ROOT();
  TestCgroups cg;
  const std::string srv = cg.Make("srv"), cli = cg.Make("cli");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  const uint64_t srv_id = cg.Id("srv"), cli_id = cg.Id("cli");
  ASSERT_NE(srv_id, cli_id);
  ASSERT_NE(srv_id, OwnCgroupId(cg.root()));

  BpfProbeOptions opts;
  opts.attach = GetParam();
  opts.filter.family = AF_INET;
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();

  TrafficSpec spec;
  spec.server_cgroup = srv;
  spec.client_cgroup = cli;
  TrafficResult t = testing::RunTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;

  Collector c;
  PumpUntil(probe, c, [&] {
    return c.Find(EventKind::kClose, t.client_port, t.server_port) &&
           c.Find(EventKind::kClose, t.server_port, t.client_port) &&
           c.Find(EventKind::kUnlisten, t.server_port, 0);
  });
  const ConnEvent* listen = c.Find(EventKind::kListen, t.server_port, 0);
  const ConnEvent* unlisten = c.Find(EventKind::kUnlisten, t.server_port, 0);
  const ConnEvent* a_open = c.Find(EventKind::kOpen, t.client_port, t.server_port);
  const ConnEvent* a_close = c.Find(EventKind::kClose, t.client_port, t.server_port);
  const ConnEvent* p_open = c.Find(EventKind::kOpen, t.server_port, t.client_port);
  const ConnEvent* p_close = c.Find(EventKind::kClose, t.server_port, t.client_port);
  for (const ConnEvent* e : {listen, unlisten, a_open, a_close, p_open, p_close})
    ASSERT_NE(e, nullptr);
  EXPECT_EQ(listen->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(listen->proc.cgroup_id, srv_id);
  EXPECT_EQ(unlisten->proc.cgroup_id, srv_id);
  EXPECT_EQ(a_open->proc.pid, static_cast<uint32_t>(t.client_pid));
  EXPECT_EQ(a_open->proc.cgroup_id, cli_id);
  EXPECT_EQ(a_close->proc.cgroup_id, cli_id);
  EXPECT_EQ(p_open->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(p_open->proc.cgroup_id, srv_id);
  EXPECT_EQ(p_close->proc.cgroup_id, srv_id);
  probe.Stop();
  Status removed = cg.Remove();
  EXPECT_TRUE(removed.ok()) << removed.message();
}

INSTANTIATE_TEST_SUITE_P(AttachTypes, BpfCgroupTest,
                         ::testing::Values(BpfAttach::kBtf, BpfAttach::kRaw), [](const auto& info) {
                           return info.param == BpfAttach::kRaw ? "RawTp" : "TpBtf";
                         });

// A listener older than the probe: the start-up snapshot finds its cgroup in
// /proc, the listeners map is seeded with it, and a connection accepted
// afterwards takes it in the kernel.
TEST(CgroupSeed, SnapshotAndSeededListenerCarryTheCgroup) {
  FM_REQUIRE_ROOT();
  TestCgroups cg;
  const std::string srv = cg.Make("srv");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  const uint64_t srv_id = cg.Id("srv");
  const uint64_t own_id = OwnCgroupId(cg.root());
  ASSERT_NE(srv_id, own_id);

  ListenerChild server(srv);
  ASSERT_NE(server.port(), 0) << "the listener child did not start";
  const int before = ConnectTo(server.port());  // open before the snapshot
  ASSERT_GE(before, 0) << strerror(errno);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  getsockname(before, reinterpret_cast<sockaddr*>(&local), &len);
  const uint16_t before_port = ntohs(local.sin_port);

  ProbeFilter filter;
  filter.ports = {server.port()};
  Snapshotter snapshotter(filter, "/proc");
  // The child's accept() may not have run yet: until it does, the accepted
  // socket has no file and no process.
  Snapshot snap;
  const ConnEvent* passive = nullptr;
  for (int i = 0; i < 50 && (!passive || !passive->proc.known()); i++) {
    if (i) usleep(20'000);
    Result<Snapshot> taken = snapshotter.Take(EventSource::kSeed);
    ASSERT_TRUE(taken.ok()) << taken.status().message();
    snap = std::move(taken).value();
    passive = nullptr;
    for (const ConnEvent& e : snap.connections)
      if (e.key.lport == server.port() && e.key.rport == before_port) passive = &e;
  }
  ASSERT_NE(passive, nullptr);
  EXPECT_EQ(passive->proc.pid, static_cast<uint32_t>(server.pid()));
  EXPECT_EQ(passive->proc.cgroup_id, srv_id);
  const ConnEvent* listener = nullptr;
  const ConnEvent* active = nullptr;
  for (const ConnEvent& e : snap.listeners)
    if (e.key.lport == server.port()) listener = &e;
  for (const ConnEvent& e : snap.connections)
    if (e.key.lport == before_port) active = &e;
  ASSERT_NE(listener, nullptr);
  ASSERT_NE(active, nullptr);
  EXPECT_EQ(listener->proc.pid, static_cast<uint32_t>(server.pid()));
  EXPECT_EQ(listener->proc.cgroup_id, srv_id);
  EXPECT_EQ(active->proc.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(active->proc.cgroup_id, own_id);
  EXPECT_EQ(snap.cgroup_errors, 0u);

  BpfProbeOptions opts;
  opts.filter.ports = {server.port()};
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();
  s = probe.SeedListener(listener->key, listener->proc);
  ASSERT_TRUE(s.ok()) << s.message();
  const int after = ConnectTo(server.port());
  ASSERT_GE(after, 0) << strerror(errno);
  len = sizeof local;
  getsockname(after, reinterpret_cast<sockaddr*>(&local), &len);
  const uint16_t after_port = ntohs(local.sin_port);
  Collector c;
  PumpUntil(probe, c, [&] { return c.Find(EventKind::kOpen, server.port(), after_port); });
  const ConnEvent* p_open = c.Find(EventKind::kOpen, server.port(), after_port);
  const ConnEvent* a_open = c.Find(EventKind::kOpen, after_port, server.port());
  ASSERT_NE(p_open, nullptr);
  ASSERT_NE(a_open, nullptr);
  EXPECT_EQ(p_open->proc.pid, static_cast<uint32_t>(server.pid()));
  EXPECT_EQ(p_open->proc.cgroup_id, srv_id) << "the seeded owner's cgroup";
  EXPECT_EQ(a_open->proc.cgroup_id, own_id);
  probe.Stop();

  close(before);
  close(after);
  server.Stop();
  Status removed = cg.Remove();
  EXPECT_TRUE(removed.ok()) << removed.message();
}

// Polling finds the same ids in /proc, under the v2 root it finds itself.
TEST(CgroupPoll, PolledListenerAndConnectionsCarryTheirCgroups) {
  FM_REQUIRE_ROOT();
  TestCgroups cg;
  const std::string srv = cg.Make("srv"), cli = cg.Make("cli");
  ASSERT_TRUE(cg.error().empty()) << cg.error();
  const uint64_t srv_id = cg.Id("srv"), cli_id = cg.Id("cli");

  TrafficSpec spec;
  spec.server_cgroup = srv;
  spec.client_cgroup = cli;
  TrafficResult t = testing::StartHeldTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;

  ProbeFilter filter;
  filter.ports = {t.server_port};
  PollProbe probe(filter, std::chrono::milliseconds(50), "/proc");
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();
  Collector c;
  PumpUntil(probe, c, [&] {
    return c.Find(EventKind::kListen, t.server_port, 0) &&
           c.Find(EventKind::kOpen, t.client_port, t.server_port) &&
           c.Find(EventKind::kOpen, t.server_port, t.client_port);
  });
  const ConnEvent* listen = c.Find(EventKind::kListen, t.server_port, 0);
  const ConnEvent* a_open = c.Find(EventKind::kOpen, t.client_port, t.server_port);
  const ConnEvent* p_open = c.Find(EventKind::kOpen, t.server_port, t.client_port);
  ASSERT_NE(listen, nullptr);
  ASSERT_NE(a_open, nullptr);
  ASSERT_NE(p_open, nullptr);
  EXPECT_EQ(listen->source, EventSource::kSeed);
  EXPECT_EQ(listen->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(listen->proc.cgroup_id, srv_id);
  EXPECT_EQ(a_open->proc.pid, static_cast<uint32_t>(t.client_pid));
  EXPECT_EQ(a_open->proc.cgroup_id, cli_id);
  EXPECT_EQ(p_open->proc.pid, static_cast<uint32_t>(t.server_pid));
  EXPECT_EQ(p_open->proc.cgroup_id, srv_id);
  bool counted = false;
  for (const auto& [name, value] : probe.Stats().detail) {
    if (name != "cgroup_errors") continue;
    counted = true;
    EXPECT_EQ(value, 0u);
  }
  EXPECT_TRUE(counted) << "no cgroup_errors in the probe's detail";
  probe.Stop();

  ASSERT_TRUE(testing::FinishTraffic(t));
  Status removed = cg.Remove();
  EXPECT_TRUE(removed.ok()) << removed.message();
}

// CgroupIdOfPath reads kernfs's file handle (what bpf_get_current_cgroup_id
// returns on every kernel); from 5.5 on that is also the directory's inode.
TEST(CgroupId, TheHandleIsTheIdAndOnThisKernelTheInode) {
  Result<std::string> root = FindCgroupV2Root();
  if (!root.ok()) GTEST_SKIP() << root.status().message();
  Result<std::string> text = ReadSmallFile("/proc/self/cgroup");
  ASSERT_TRUE(text.ok());
  Result<std::string> path = ParseProcCgroupV2(*text);
  ASSERT_TRUE(path.ok()) << path.status().message();
  std::string dir = *root + (*path == "/" ? "" : *path);
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0) << dir;
  alignas(struct file_handle) unsigned char buf[sizeof(struct file_handle) + 8]{};
  auto* fh = reinterpret_cast<struct file_handle*>(buf);
  fh->handle_bytes = 8;
  int mount_id = 0;
  ASSERT_EQ(name_to_handle_at(AT_FDCWD, dir.c_str(), fh, &mount_id, 0), 0) << strerror(errno);
  ASSERT_EQ(fh->handle_bytes, 8u);
  uint64_t handle = 0;
  std::memcpy(&handle, fh->f_handle, 8);
  Result<uint64_t> id = CgroupIdOfPath(*root, *path);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(*id, handle);
  EXPECT_EQ(handle, static_cast<uint64_t>(st.st_ino)) << "a kernel of 5.5 or later";
}

}  // namespace
}  // namespace flowmesh
