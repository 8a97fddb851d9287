// How meshd starts and stops as an operator meets it: signals, a closed
// stderr, config and key files that cannot work, refused at once.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string StateOf(const MeshdProcess& meshd, const std::string& name) {
  CommandResult r = meshd.Meshctl({"peers", "--json"});
  for (const JsonLine& p : ParseFlatJsonArray(r.out))
    if (p.count("name") && p.at("name") == name) return p.at("state");
  return "";
}

bool WaitForState(const MeshdProcess& meshd, const std::string& name, const std::string& state) {
  for (int i = 0; i < 150; i++) {
    if (StateOf(meshd, name) == state) return true;
    usleep(100'000);
  }
  return false;
}

// SIGHUP used to kill meshd on the spot: nothing flushed, and its peers had to
// find out by probing that it was gone (dead, not left).
TEST(MeshdLifecycle, SighupStopsCleanlyAndLeavesTheMesh) {
  FM_REQUIRE_ROOT();
  uint16_t port_a = FreePort(AF_INET), port_b = FreePort(AF_INET);
  std::vector<std::string> common = {"--probe-mode", "polling", "--netns", "self", "--insecure"};
  MeshdProcess a, b;
  std::string err;
  std::vector<std::string> fa = common, fb = common;
  fa.insert(fa.end(), {"--node-name", "hup-a", "--bind", "127.0.0.1:" + std::to_string(port_a)});
  fb.insert(fb.end(), {"--node-name", "hup-b", "--bind", "127.0.0.1:" + std::to_string(port_b),
                       "--join", "127.0.0.1:" + std::to_string(port_a)});
  ASSERT_TRUE(a.Start(fa, &err)) << err;
  ASSERT_TRUE(b.Start(fb, &err)) << err;
  ASSERT_TRUE(WaitForState(a, "hup-b", "alive")) << a.Log() << b.Log();

  EXPECT_EQ(b.Stop(SIGHUP), 0) << b.Log();
  EXPECT_NE(b.Log().find("received SIGHUP, shutting down: meshd does not reload"),
            std::string::npos)
      << b.Log();
  EXPECT_NE(b.Log().find("leaving the mesh"), std::string::npos) << b.Log();
  EXPECT_TRUE(WaitForState(a, "hup-b", "left")) << StateOf(a, "hup-b") << "\n" << a.Log();
}

// With stderr a pipe nobody reads any more, the first log line raised SIGPIPE
// and meshd died of it.
TEST(MeshdLifecycle, AClosedStderrDoesNotKillIt) {
  FM_REQUIRE_ROOT();
  char tmpl[] = "/tmp/fm-stderr-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string socket = dir + "/meshd.sock";
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 2);
    close(p[0]);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(MESHD_BIN, MESHD_BIN, "--control-socket", socket.c_str(), "--data-dir",
          (dir + "/data").c_str(), "--probe-mode", "polling", "--netns", "self", "--log-level",
          "debug", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(p[0]);
  close(p[1]);
  bool answered = false;
  for (int i = 0; i < 100 && !answered; i++) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      FAIL() << "meshd died with a closed stderr: "
             << (WIFSIGNALED(status) ? std::string("signal ") + strsignal(WTERMSIG(status))
                                     : "exit " + std::to_string(WEXITSTATUS(status)));
    }
    answered = RunCommand({MESHCTL_BIN, "--socket", socket, "status"}).exit_code == 0;
    if (!answered) usleep(100'000);
  }
  EXPECT_TRUE(answered);
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "exit");
  std::string cleanup = "rm -rf " + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

// --config /dev/zero read forever; a config that cannot work is a usage error, at once.
TEST(MeshdLifecycle, AConfigThatIsNotAFileExitsTwoAtOnce) {
  auto start = Clock::now();
  CommandResult r = RunCommand({MESHD_BIN, "--config", "/dev/zero"}, std::chrono::seconds(5));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("meshd: --config: config file /dev/zero is not a regular file"),
            std::string::npos)
      << r.err;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

// A --node-name longer than the mesh carries started a node that never joined: the seed dropped
// its every message and the joiner retried forever.
TEST(MeshdLifecycle, ANodeNameTheMeshCannotCarryExitsTwo) {
  CommandResult r = RunCommand({MESHD_BIN, "--node-name", std::string(200, 'n'), "--insecure"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("meshd: --node-name: is 200 bytes; the mesh carries at most 128; choose a "
                       "shorter name"),
            std::string::npos)
      << r.err;
}

// A key file meshd cannot use was refused only when the mesh started: exit 1,
// after seconds of waiting for a leave nobody could hear.
TEST(MeshdLifecycle, ABadKeyFileExitsTwoBeforeAnythingStarts) {
  char tmpl[] = "/tmp/fm-badkey-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::string key = dir + "/cluster.key";
  std::ofstream(key) << "this is not a key\n";
  chmod(key.c_str(), 0600);
  auto start = Clock::now();
  CommandResult r = RunCommand({MESHD_BIN, "--cluster-key-file", key, "--data-dir", dir + "/data",
                                "--control-socket", dir + "/meshd.sock"},
                               std::chrono::seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("meshd: --cluster-key-file: " + key + " line 1"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("leave was not acknowledged"), std::string::npos) << r.err;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  // Nothing started: no store was created.
  struct stat st {};
  EXPECT_NE(stat((dir + "/data").c_str(), &st), 0);
  std::string cleanup = "rm -rf " + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

// A mesh that cannot start (its port taken) fails with exit 1 at once, without
// first waiting for a leave from a mesh it never joined.
TEST(MeshdLifecycle, AMeshThatCannotBindFailsWithoutWaiting) {
  FM_REQUIRE_ROOT();
  uint16_t port = FreePort(AF_INET);
  int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_storage ss{};
  socklen_t len = LoopbackAddr(AF_INET, port, &ss);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&ss), len), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  char tmpl[] = "/tmp/fm-bind-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  auto start = Clock::now();
  CommandResult r =
      RunCommand({MESHD_BIN, "--insecure", "--bind", "127.0.0.1:" + std::to_string(port),
                  "--probe-mode", "polling", "--netns", "self", "--data-dir", dir + "/data",
                  "--control-socket", dir + "/meshd.sock"},
                 std::chrono::seconds(15));
  close(holder);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.find("leave was not acknowledged"), std::string::npos) << r.err;
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(2500)) << r.err;
  std::string cleanup = "rm -rf " + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

}  // namespace
}  // namespace flowmesh::testing
