// meshd through NAT, in a network namespace of its own with real nftables
// rules, a real server (python3's http.server) and a real client (curl):
// the client's connections to a Service VIP and to a published port are
// shown at the server process, via what was dialled; the server's look
// finds the client through the translation; without CAP_NET_ADMIN meshd
// says why and the walk still works where nothing was translated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

constexpr const char* kHost = "10.99.0.1";
constexpr const char* kVip = "10.99.250.1";


class NatMeshdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FM_REQUIRE_ROOT();
    ns_ = "fmk-nat-" + std::to_string(getpid());
    Sh("ip netns add " + ns_);
    Sh("ip -n " + ns_ + " link set lo up");
    Sh("ip -n " + ns_ + " addr add " + std::string(kHost) + "/32 dev lo");
    Sh("ip -n " + ns_ + " route add 10.99.250.0/24 dev lo");
    // Both in the output hook: the client is on this host. A Service VIP
    // (kube-proxy) and a port published to another (docker -p's shape).
    Nft("add table ip fmnat; "
        "add chain ip fmnat out { type nat hook output priority -100; }; "
        "add rule ip fmnat out ip daddr " + std::string(kVip) +
        " tcp dport 80 dnat to 10.99.0.1:8080; "
        "add rule ip fmnat out ip daddr 10.99.0.1 tcp dport 9090 dnat to 10.99.0.1:8080");
    Sh("ip netns exec " + ns_ + " setsid python3 -m http.server --bind " + kHost +
       " 8080 >/dev/null 2>&1 & sleep 0.5");
  }
  void TearDown() override {
    if (ns_.empty()) return;
    meshd_.Stop();
    RunCommand({"/bin/sh", "-c", "ip netns pids " + ns_ + " | xargs -r kill; ip netns del " + ns_});
  }
  void Sh(const std::string& cmd) {
    CommandResult r = RunCommand({"/bin/sh", "-c", cmd});
    ASSERT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
  }
  void Nft(const std::string& rules) { Sh("ip netns exec " + ns_ + " nft '" + rules + "'"); }
  void Curl(const std::string& url, int times) {
    for (int i = 0; i < times; i++)
      Sh("ip netns exec " + ns_ + " curl -sf -o /dev/null --max-time 5 " + url);
  }
  std::string Tree(std::vector<std::string> args) {
    args.insert(args.end(), {"--format", "json"});
    CommandResult r = meshd_.Meshctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // One line per node (tests/integration/look_lines.py, the lab tests' too).
    CommandResult flat = RunCommand(
        {"/bin/sh", "-c", "printf '%s' \"$0\" | python3 \"$1\"", r.out, LOOK_LINES_PY});
    EXPECT_EQ(flat.exit_code, 0) << flat.err << "\n" << r.out;
    return flat.out;
  }
  static bool Has(const std::string& tree, const std::string& line) {
    std::istringstream in(tree);
    for (std::string l; std::getline(in, l);)
      if (l.find(line) != std::string::npos) return true;
    return false;
  }

  std::string ns_;
  MeshdProcess meshd_;
};

TEST_F(NatMeshdTest, TheClientsVipAndPublishedPortLeadToTheServerProcess) {
  meshd_.set_netns(ns_);
  std::string err;
  ASSERT_TRUE(meshd_.Start({"--node-name", "fm-nat", "--netns", "self"}, &err)) << err;
  CommandResult st = meshd_.Meshctl({"status"});
  EXPECT_NE(st.out.find("conntrack    on"), std::string::npos) << st.out;
  Curl(std::string("http://") + kVip + "/", 3);
  Curl(std::string("http://") + kHost + ":9090/", 2);

  const std::string down = Tree({"look", kHost});
  // curl's connections went to python3 on :8080, dialled as the VIP and as :9090.
  EXPECT_TRUE(Has(down, "host=fm-nat ep=10.99.0.1:8080 comm=python3 status=ok conns=3 via=10.99.250.1:80 balancer=0"))
      << down;
  EXPECT_TRUE(Has(down, "host=fm-nat ep=10.99.0.1:8080 comm=python3 status=ok conns=2 via=10.99.0.1:9090 balancer=0"))
      << down;
  EXPECT_FALSE(Has(down, "ep=10.99.250.1:80 ")) << "the VIP is no dead end:\n" << down;

  // From the server, the client is found through its translation.
  const std::string up = Tree({"look", "10.99.0.1:8080", "--direction", "in"});
  // One line per way it was reached: through the VIP (3) and the published port (2).
  EXPECT_TRUE(Has(up, "host=fm-nat ep=10.99.0.1 comm=curl status=ok conns=3 via=10.99.250.1:80 balancer=0")) << up;
  EXPECT_TRUE(Has(up, "host=fm-nat ep=10.99.0.1 comm=curl status=ok conns=2 via=10.99.0.1:9090 balancer=0")) << up;

  // The published port resolves to the listener it reaches.
  const std::string published = Tree({"look", "10.99.0.1:9090", "--direction", "in"});
  EXPECT_TRUE(Has(published, "root host=fm-nat ep=10.99.0.1:8080 comm=python3 status=ok conns=- via=10.99.0.1:9090")) << published;

  CommandResult detail = meshd_.Meshctl({"status"});
  EXPECT_NE(detail.out.find("nat_translated"), std::string::npos) << detail.out;
}

TEST_F(NatMeshdTest, WithoutCapNetAdminMeshdSaysWhyAndTheWalkStillWorks) {
  meshd_.set_netns(ns_);
  meshd_.set_drop_caps("cap_net_admin");
  std::string err;
  ASSERT_TRUE(meshd_.Start({"--node-name", "fm-nat", "--netns", "self"}, &err)) << err;
  CommandResult st = meshd_.Meshctl({"status"});
  EXPECT_NE(st.out.find("conntrack    off:"), std::string::npos) << st.out;
  EXPECT_NE(st.out.find("CAP_NET_ADMIN"), std::string::npos) << st.out;
  EXPECT_NE(meshd_.Log().find("not reading connection tracking"), std::string::npos)
      << meshd_.Log();
  Curl(std::string("http://") + kVip + "/", 2);
  Curl(std::string("http://") + kHost + ":8080/", 2);
  const std::string down = Tree({"look", kHost});
  // Untranslated, the direct connections still reach the server; the VIP
  // is what the client dialled, and no agent owns it.
  EXPECT_TRUE(Has(down, "host=fm-nat ep=10.99.0.1:8080 comm=python3 status=ok conns=2 via=- balancer=0")) << down;
  EXPECT_TRUE(Has(down, "host=- ep=10.99.250.1:80 comm=- status=no-agent conns=2 via=- balancer=0")) << down;
}

}  // namespace
}  // namespace flowmesh::testing
