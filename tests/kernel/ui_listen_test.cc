// meshd --ui-listen on a veth address, asked from another network namespace
// as a browser on another host would: without the token 401, with it the
// JSON; and without a token file meshd refuses to listen there at all.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/kernel/conntrack_util.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"

namespace flowmesh::testing {
namespace {

constexpr const char* kServer = "10.97.0.1";
constexpr uint16_t kPort = 7947;
constexpr const char* kToken = "kernel-test-token-0123456789";

struct Reply {
  std::string status_line, head, body;
};

class UiListenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    ns_ = std::make_unique<NatNetns>("ui");
    std::string err;
    ASSERT_TRUE(ns_->Add("srv", &err)) << err;
    ASSERT_TRUE(ns_->Add("cli", &err)) << err;
    ns_->Link("srv", {std::string(kServer) + "/24"}, "cli", {"10.97.0.2/24"}, &err);
    ASSERT_TRUE(err.empty()) << err;
    meshd_.set_netns(std::filesystem::path(ns_->Path("srv")).filename().string());
    token_file_ = (std::filesystem::path(meshd_.socket()).parent_path() / "ui.token").string();
    std::ofstream(token_file_) << kToken << "\n";
    chmod(token_file_.c_str(), 0600);
  }
  void TearDown() override {
    meshd_.Stop();
    ns_.reset();
  }

  // One request from the client namespace to the server's veth address.
  Reply Ask(const std::string& target, const std::string& headers) {
    Reply r;
    int fd = ns_->Socket("cli", AF_INET);
    if (fd < 0) return r;
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (!Connect(fd, Endpoint{*IpAddr::Parse(kServer), kPort})) {
      close(fd);
      r.status_line = "connect failed";
      return r;
    }
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + kServer + "\r\n" + headers + "\r\n";
    send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string all;
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
      all.append(buf, static_cast<size_t>(n));
    close(fd);
    size_t end = all.find("\r\n\r\n");
    r.status_line = all.substr(0, all.find("\r\n"));
    r.head = all.substr(0, end == std::string::npos ? all.size() : end);
    if (end != std::string::npos) r.body = all.substr(end + 4);
    return r;
  }

  std::unique_ptr<NatNetns> ns_;
  MeshdProcess meshd_;
  std::string token_file_;
};

TEST_F(UiListenTest, FromAnotherHostTheTokenIsRequiredAndOpensTheJson) {
  std::string err;
  const std::string listen = std::string(kServer) + ":" + std::to_string(kPort);
  ASSERT_TRUE(meshd_.Start({"--node-name", "fm-ui", "--netns", "self", "--probe-mode", "polling",
                            "--ui-listen", listen, "--ui-token-file", token_file_},
                           &err))
      << err;
  CommandResult st = meshd_.Meshctl({"status"});
  EXPECT_NE(st.out.find("ui           on: http://" + listen + "/ (token required)"),
            std::string::npos)
      << st.out;

  Reply no = Ask("/api/map", "");
  EXPECT_EQ(no.status_line, "HTTP/1.1 401 Unauthorized") << no.body;
  EXPECT_NE(no.head.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(Ask("/", "").status_line, "HTTP/1.1 401 Unauthorized");
  const std::string bearer = std::string("Authorization: Bearer ") + kToken + "\r\n";
  EXPECT_EQ(Ask("/api/map", "Authorization: Bearer not-the-token-at-all\r\n").status_line,
            "HTTP/1.1 401 Unauthorized");

  // The listener itself is one of this node's endpoints, once the probe's
  // next poll has seen it.
  Reply eps;
  for (int i = 0; i < 50; ++i) {
    eps = Ask("/api/endpoints", bearer);
    if (eps.body.find("\"addr\":\"10.97.0.1\",\"port\":7947") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(eps.status_line, "HTTP/1.1 200 OK") << eps.body;
  EXPECT_NE(eps.body.find("\"addr\":\"10.97.0.1\",\"port\":7947"), std::string::npos) << eps.body;
  Reply map = Ask("/api/map?since=5m", bearer);
  EXPECT_EQ(map.status_line, "HTTP/1.1 200 OK") << map.body;
  EXPECT_TRUE(map.body.starts_with("{\"query\": ")) << map.body;
  EXPECT_EQ(Ask("/", bearer).status_line, "HTTP/1.1 200 OK");
}

TEST_F(UiListenTest, WithoutATokenFileMeshdRefusesAnAddressOthersReach) {
  std::string err;
  const std::string listen = std::string(kServer) + ":" + std::to_string(kPort);
  EXPECT_FALSE(meshd_.Start(
      {"--node-name", "fm-ui", "--netns", "self", "--probe-mode", "polling", "--ui-listen", listen},
      &err));
  EXPECT_NE(err.find("--ui-listen: " + listen + " is not a loopback address"), std::string::npos)
      << err;
  EXPECT_NE(err.find("give --ui-token-file FILE"), std::string::npos) << err;
  EXPECT_EQ(Ask("/", "").status_line, "connect failed");
}

}  // namespace
}  // namespace flowmesh::testing
