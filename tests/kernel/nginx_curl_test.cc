// The issue's own acceptance: meshd + meshctl watch show a real curl to a
// real local nginx, with both processes named.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh::testing {
namespace {

class Nginx {
 public:
  explicit Nginx(uint16_t port) {
    char tmpl[] = "/tmp/fm-nginx-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ + "/nginx.conf")
        << "daemon off;\nmaster_process on;\nworker_processes 2;\npid " << dir_
        << "/nginx.pid;\nerror_log " << dir_ << "/error.log;\nevents {}\nhttp {\n"
        << "  access_log off;\n  client_body_temp_path " << dir_ << ";\n"
        << "  server {\n    listen 127.0.0.1:" << port << ";\n"
        << "    location / { return 200 \"hello from nginx\\n\"; }\n  }\n}\n";
    pid_ = fork();
    if (pid_ == 0) {
      execl("/usr/sbin/nginx", "nginx", "-p", dir_.c_str(), "-c", (dir_ + "/nginx.conf").c_str(),
            nullptr);
      _exit(127);
    }
  }
  ~Nginx() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    std::string cmd = "rm -rf " + dir_;
    if (system(cmd.c_str()) != 0) {
    }
  }
  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
};

TEST(NginxCurl, WatchNamesCurlAndNginx) {
  FM_REQUIRE_ROOT();
  ASSERT_EQ(access("/usr/sbin/nginx", X_OK), 0) << "nginx is not installed; run scripts/setup.sh";
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming"}, &err)) << err;

  uint16_t port = FreePort(2);
  Nginx nginx(port);
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  // nginx needs a moment to listen; curl retries connection refusals.
  CommandResult warm = RunCommand({"/usr/bin/curl", "-s", "--retry", "20", "--retry-delay", "0",
                                   "--retry-connrefused", "-o", "/dev/null", url});
  ASSERT_EQ(warm.exit_code, 0) << warm.err;

  Watcher w(meshd, {"-D", std::to_string(port)});
  CommandResult r = RunCommand({"/usr/bin/curl", "-s", url});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from nginx\n");

  JsonLine client, server;
  ASSERT_TRUE(w.WaitFor(
      [&](const JsonLine& l) {
        return l.at("event") == "close" && l.at("rport") == std::to_string(port) &&
               l.at("comm") == "curl";
      },
      &client));
  EXPECT_EQ(client.at("direction"), "active");
  EXPECT_GT(std::stoul(client.at("tx_bytes")), 0u);
  EXPECT_GT(std::stoul(client.at("rx_bytes")), 0u);

  Watcher w2(meshd, {"-L", std::to_string(port)});
  ASSERT_EQ(RunCommand({"/usr/bin/curl", "-s", url}).exit_code, 0);
  ASSERT_TRUE(w2.WaitFor(
      [&](const JsonLine& l) {
        return l.at("event") == "close" && l.at("lport") == std::to_string(port);
      },
      &server));
  EXPECT_EQ(server.at("comm"), "nginx");
  EXPECT_EQ(server.at("direction"), "passive");
  EXPECT_EQ(server.at("pid"), std::to_string(nginx.pid()));  // the listener's owner
  EXPECT_GT(std::stoul(server.at("tx_bytes")), std::stoul(server.at("rx_bytes")) / 100);
}

}  // namespace
}  // namespace flowmesh::testing
