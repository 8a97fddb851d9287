// meshd's flags: history sizes, durations and their limits, kernel table sizes, --netns lists,
// the web listener's address and token file.
#include "node/daemon/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace flowmesh {
namespace {

std::optional<DaemonConfig> Parse(std::vector<std::string> args, int* code) {
  args.insert(args.begin(), "meshd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data(), code);
}

TEST(ByteSize, UnitsArePowersOf1024) {
  EXPECT_EQ(*ParseByteSize("1048576"), 1048576u);
  EXPECT_EQ(*ParseByteSize("64K"), 64u << 10);
  EXPECT_EQ(*ParseByteSize("500M"), 500ull << 20);
  EXPECT_EQ(*ParseByteSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("1TB"), 1ull << 40);
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  for (const char* bad : {"", "G", "2X", "-1", "99999999999T"})
    EXPECT_FALSE(ParseByteSize(bad).ok()) << bad;
}

TEST(DaemonFlags, HistoryDefaultsAndValues) {
  int code = -1;
  std::optional<DaemonConfig> c = Parse({}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data_dir, "/var/lib/flowmesh");
  EXPECT_EQ(c->flush_interval, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->retention, std::chrono::hours(7 * 24));
  EXPECT_EQ(c->retention_bytes, 2ull << 30);
  EXPECT_EQ(c->account_interval, std::chrono::seconds(30)) << "the reconciliation's, sharing its dump";
  EXPECT_EQ(c->look_drain_timeout, std::chrono::seconds(1)) << "half the default --hop-timeout";
  EXPECT_TRUE(c->records);
  c = Parse({"--data-dir", "/tmp/x", "--flush-interval", "250ms", "--retention", "12h",
             "--retention-size", "0", "--account-interval", "0s", "--look-drain-timeout", "0s",
             "--records", "off"},
            &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data_dir, "/tmp/x");
  EXPECT_EQ(c->flush_interval, std::chrono::milliseconds(250));
  EXPECT_EQ(c->retention, std::chrono::hours(12));
  EXPECT_EQ(c->retention_bytes, 0u);
  EXPECT_EQ(c->account_interval, std::chrono::milliseconds(0));
  EXPECT_EQ(c->look_drain_timeout, std::chrono::milliseconds(0));
  EXPECT_FALSE(c->records);
}

TEST(DaemonFlags, BadHistoryValuesAreUsageErrors) {
  for (std::vector<std::string> bad : {std::vector<std::string>{"--flush-interval", "5ms"},
                                       {"--flush-interval", "soon"},
                                       {"--retention", "30s"},
                                       {"--retention-size", "1M"},
                                       {"--retention-size", "lots"},
                                       {"--data-dir", ""},
                                       {"--account-interval", "500ms"},
                                       {"--account-interval", "often"},
                                       {"--look-drain-timeout", "2m"},
                                       {"--look-drain-timeout", "later"},
                                       {"--records", "no"}}) {
    int code = -1;
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(bad, &code)) << bad[0] << " " << bad[1];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2);
    EXPECT_NE(err.find(bad[0]), std::string::npos) << err;
  }
}

// The kernel tables' sizes: whole numbers in range, each error naming its flag, the
// range and an example; the environment works as for every flag.
TEST(DaemonFlags, TableSizesAreWholeNumbersInRange) {
  int code = -1;
  std::optional<DaemonConfig> c = Parse({}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->max_connections, 131072u);
  EXPECT_EQ(c->max_listeners, 16384u);
  c = Parse({"--max-connections", "16", "--max-listeners", "16777216"}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->max_connections, 16u);
  EXPECT_EQ(c->max_listeners, 16777216u);
  setenv("MESHD_MAX_CONNECTIONS", "524288", 1);
  c = Parse({}, &code);
  unsetenv("MESHD_MAX_CONNECTIONS");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->max_connections, 524288u);
  struct Bad {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Bad& bad : {Bad{{"--max-connections", "15"}, "too few"},
                         Bad{{"--max-connections", "16777217"}, "too many"},
                         Bad{{"--max-connections", "99999999999999999999999"}, "too many"},
                         Bad{{"--max-connections", "256K"}, "not a whole number"},
                         Bad{{"--max-connections", "-1"}, "not a whole number"},
                         Bad{{"--max-listeners", ""}, "not a whole number"},
                         Bad{{"--max-listeners", "lots"}, "not a whole number"}}) {
    code = -1;
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(bad.args, &code)) << bad.args[1];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2);
    EXPECT_NE(err.find(bad.args[0]), std::string::npos) << err;
    EXPECT_NE(err.find(bad.says), std::string::npos) << err;
    EXPECT_NE(err.find("from 16 to 16777216"), std::string::npos) << err;
  }
}

// What the mesh or the system would refuse later is refused at start-up, naming the flag and
// the limit: a 200-byte --node-name used to start a meshd whose every message the seed dropped.
TEST(DaemonFlags, ValuesBeyondWhatTheMeshCarriesAreUsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  std::vector<Case> cases = {
      {{"--node-name", std::string(200, 'n')},
       "meshd: --node-name: is 200 bytes; the mesh carries at most 128; choose a shorter name"},
      {{"--control-socket", "/tmp/" + std::string(120, 's')}, "meshd: --control-socket: '/tmp/sss"},
      {{"--control-socket", ""}, "meshd: --control-socket: must not be empty"},
      {{"--insecure", "--join", "10.0.0.5:0"},
       "meshd: --join: '10.0.0.5:0' is not IP:PORT with a port"},
      {{"--node-name", "web\n2026-12-06T00:00:00Z ERROR forged"},
       "meshd: --node-name: holds a control character"},
      {{"--data-dir", "/" + std::string(5000, 'd')},
       "meshd: --data-dir: is 5001 bytes; the store needs paths under 3840 bytes"},
      {{"--proc-root", "/nonexistent/proc"},
       "meshd: --proc-root: '/nonexistent/proc' is not a directory"},
  };
  for (const Case& c : cases) {
    int code = -1;
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(c.args, &code)) << c.args[0];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2) << c.args[0];
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
  int code = -1;
  EXPECT_TRUE(Parse({"--node-name", std::string(128, 'n')}, &code));
}

// A bad key file was refused only when the mesh started, after a 5 s wait for a leave nobody
// could hear, with exit 1; --print-config accepted it.
TEST(DaemonFlags, WorkloadRootsDefaultsAndBadValues) {
  int code = -1;
  std::optional<DaemonConfig> cfg = Parse({}, &code);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->cgroup_root, "auto");
  EXPECT_EQ(cfg->runtime_root, "/");
  cfg = Parse({"--cgroup-root", "off", "--runtime-root", "/tmp"}, &code);
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->cgroup_root, "off");
  EXPECT_EQ(cfg->runtime_root, "/tmp");
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"--cgroup-root", "/tmp"},
       "meshd: --cgroup-root: '/tmp' is not a cgroup v2 mount (no cgroup.procs there); give "
       "where cgroup2 is mounted"},
      {{"--cgroup-root", "sys/fs/cgroup"}, "meshd: --cgroup-root: 'sys/fs/cgroup' is not"},
      {{"--runtime-root", "/nonexistent/root"},
       "meshd: --runtime-root: '/nonexistent/root' is not a directory; give the absolute root"},
      {{"--runtime-root", "var"}, "meshd: --runtime-root: 'var' is not a directory"},
  };
  for (const Case& c : cases) {
    testing::internal::CaptureStderr();
    EXPECT_FALSE(Parse(c.args, &code)) << c.args[1];
    std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(code, 2) << c.args[1];
    EXPECT_NE(err.find(c.want), std::string::npos) << err;
  }
}

TEST(DaemonFlags, TheKeyFileIsCheckedWithTheFlags) {
  char dir[] = "/tmp/fm-keyflag-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string garbage = std::string(dir) + "/garbage.key";
  std::ofstream(garbage) << "not base64 at all\n";
  chmod(garbage.c_str(), 0600);
  std::string open = std::string(dir) + "/open.key";
  std::ofstream(open) << "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
  chmod(open.c_str(), 0644);
  std::string good = std::string(dir) + "/good.key";
  std::ofstream(good) << "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
  chmod(good.c_str(), 0600);
  for (const auto& [path, want] : std::vector<std::pair<std::string, std::string>>{
           {std::string(dir) + "/missing.key", "No such file or directory"},
           {garbage, garbage + " line 1"},
           {open, "chmod 600 " + open},
       }) {
    for (bool print : {false, true}) {
      std::vector<std::string> args = {"--cluster-key-file", path};
      if (print) args.push_back("--print-config");
      int code = -1;
      testing::internal::CaptureStdout();
      testing::internal::CaptureStderr();
      EXPECT_FALSE(Parse(args, &code)) << path;
      testing::internal::GetCapturedStdout();
      std::string err = testing::internal::GetCapturedStderr();
      EXPECT_EQ(code, 2) << path << (print ? " --print-config" : "");
      EXPECT_NE(err.find("meshd: --cluster-key-file: "), std::string::npos) << err;
      EXPECT_NE(err.find(want), std::string::npos) << err;
    }
  }
  int code = -1;
  std::optional<DaemonConfig> c = Parse({"--cluster-key-file", good}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->cluster_key_file, good);
  std::string cleanup = std::string("rm -rf ") + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

TEST(NetnsFlag, AllAloneOrAListOfSelfInodesAndPaths) {
  int code = 0;
  for (const char* good : {"all", "self", "4026531840", "self,/run/netns/web",
                           "self, /proc/1/ns/net ,4026532290", "1,2,3,4,5,6,7,8"}) {
    std::optional<DaemonConfig> c = Parse({"--netns", good}, &code);
    ASSERT_TRUE(c) << good;
    EXPECT_EQ(c->netns, good);
  }
  for (const char* bad : {"", "self,", "all,self", "self,all", "web", "0", "12x", "-1",
                          "run/netns/web", "1,2,3,4,5,6,7,8,9"}) {
    code = 0;
    EXPECT_FALSE(Parse({"--netns", bad}, &code)) << bad;
    EXPECT_EQ(code, 2) << bad;
  }
  EXPECT_TRUE(CheckNetnsList("all,self").message().find("stands alone") != std::string::npos);
  EXPECT_TRUE(CheckNetnsList("1,2,3,4,5,6,7,8,9").message().find("at most 8") !=
              std::string::npos);
}

// --ui-listen/--ui-token-file: a usage error naming the flag and the fix.
std::string ParseError(std::vector<std::string> args) {
  int code = -1;
  ::testing::internal::CaptureStderr();
  std::optional<DaemonConfig> c = Parse(std::move(args), &code);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(c);
  EXPECT_EQ(code, 2);
  return err;
}

TEST(UiFlags, LoopbackNeedsNoTokenAnythingElseDoes) {
  int code = -1;
  std::optional<DaemonConfig> c = Parse({}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ui_listen, "") << "off by default";
  c = Parse({"--ui-listen", "127.0.0.1:7947"}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ui_listen, "127.0.0.1:7947");
  EXPECT_TRUE(Parse({"--ui-listen", "[::1]:7947"}, &code));
  for (const char* open : {"0.0.0.0:7947", "10.213.0.2:7947", "[::]:7947"}) {
    std::string err = ParseError({"--ui-listen", open});
    EXPECT_NE(err.find("--ui-listen: " + std::string(open) + " is not a loopback address"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("give --ui-token-file FILE"), std::string::npos) << err;
  }
  EXPECT_NE(ParseError({"--ui-listen", "127.0.0.1"}).find("--ui-listen: '127.0.0.1' is not IP:PORT"),
            std::string::npos);
}

TEST(UiFlags, TheTokenFileIsCheckedBeforeAnythingStarts) {
  std::string path = ::testing::TempDir() + "fm_ui_token_" + std::to_string(getpid());
  std::ofstream(path) << "0123456789abcdef0123\n";
  chmod(path.c_str(), 0644);
  std::string err = ParseError({"--ui-listen", "0.0.0.0:7947", "--ui-token-file", path});
  EXPECT_NE(err.find("--ui-token-file: --ui-token-file " + path + " has mode 0644"),
            std::string::npos)
      << err;
  chmod(path.c_str(), 0600);
  int code = -1;
  std::optional<DaemonConfig> c =
      Parse({"--ui-listen", "0.0.0.0:7947", "--ui-token-file", path}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ui_token_file, path);
  std::ofstream(path, std::ios::trunc) << "short\n";
  EXPECT_NE(ParseError({"--ui-token-file", path}).find("too short"), std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace flowmesh
