// Looks through NAT on the lab (issue 14): client-2's kube-proxy style VIPs,
// docker-1's published port into a container namespace and lb-1's L4
// balancer (topology_nat.sh), asked on every host; then the failure cases:
// a stale translation, a VIP whose backend changed, a host whose meshd may
// not read connection tracking. Trees are read from their JSON, one line per
// node (look_lines.py): "<path> host=H ep=E comm=C ... via=V balancer=B".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/look_lab_fixture.h"

namespace flowmesh::testing {
namespace {

// A line of `text` matches `re` (a macro: the failure names this line).
#define EXPECT_LINE(text, re) EXPECT_NE(LineMatching(text, re), "") << (text)

constexpr const char* kNginx = R"(host=web-1 ep=10\.213\.0\.2:80 comm=nginx )";
constexpr const char* kRedis = R"(host=cache-1 ep=10\.213\.0\.5:6379 comm=redis-server )";
// `endpoints --all` lines of docker-1's published port and lb-1's front.
constexpr const char* kPublished = R"(^docker-1 +10\.213\.0\.8:9090 +-> 172\.18\.0\.2:80 )";
constexpr const char* kBalanced =
    R"(^lb-1 +10\.213\.0\.9:8000 +-> 10\.213\.0\.3:8000, 10\.213\.0\.4:8000 balancer)";

class NatLabTest : public LookLabTest {
 protected:
  // The look's tree as lines (see look_lines.py).
  std::string Lines(int i, const std::vector<std::string>& args) {
    std::string cmd = "bash " + std::string(TOPOLOGY_SH) + " ctl " + work_ + " " +
                      std::to_string(i) + " look";
    for (const std::string& a : args) cmd += " " + a;
    cmd += " --format json | " + std::string(LOOK_LINES_PY);
    // bash: dash before 0.5.13 (Debian 12's /bin/sh) has no pipefail, and a
    // failed `set` ends its shell with status 2 and no output.
    CommandResult r = RunCommand({"/bin/bash", "-c", "set -o pipefail; " + cmd}, 30s);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
    return r.out;
  }

  // An nft command inside host i's namespace.
  void Nft(int i, const std::string& args) {
    CommandResult r = RunCommand({"/bin/sh", "-c", "ip netns exec " + Ns(i) + " nft " + args});
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
  }

  // Aliases reach the other members by gossip (published each second): a
  // look asked before they arrive walks without them. Waits until every host
  // lists each of `fronts` in `endpoints --all`, and prints how long it took.
  // Gossip spreads an announced alias to most members in a second, but it is
  // best effort: a member the deltas happened to miss (a late full CI run
  // showed one, twice) gets it with the next push-pull sync, every 30 s. So
  // the bound is one sync and a margin, and the time it took is printed.
  void WaitForAliases(const std::vector<std::string>& fronts) {
    constexpr auto kBound = 40s;
    auto start = std::chrono::steady_clock::now();
    for (int i = 1; i <= kHosts; i++) {
      for (;;) {
        std::string eps = Ctl(i, {"endpoints", "--all"}).out;
        bool all = true;
        for (const std::string& f : fronts) all = all && LineMatching(eps, f) != "";
        if (all) break;
        ASSERT_LT(std::chrono::steady_clock::now() - start, kBound)
            << kHostNames[i - 1] << " lacks an alias after 40 s (a push-pull sync and more):\n"
            << eps;
        std::this_thread::sleep_for(200ms);
      }
    }
    std::printf("[ measured ] every host had the aliases %lld ms after the traffic\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - start)
                                           .count()));
  }

  // 10 of each kind (topology.sh traffic), then until every host has the aliases.
  void EveryKindOfTraffic() {
    CommandResult t = Topology({"traffic", work_, "10"}, 120s);
    ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
    LetEventsArrive();
    WaitForAliases({kPublished, kBalanced});
  }

  // n curls of url from host i; how many answered 200.
  int Curl(int i, const std::string& url, int n) {
    CommandResult r = RunCommand(
        {"/bin/sh", "-c",
         "ok=0; for k in $(seq " + std::to_string(n) + "); do [ \"$(ip netns exec " + Ns(i) +
             " curl -s -o /dev/null -w '%{http_code}' --max-time 2 " + url +
             ")\" = 200 ] && ok=$((ok+1)); done; echo $ok"},
        60s);
    return std::atoi(r.out.c_str());
  }
};

TEST_F(NatLabTest, EveryHostFollowsTheVipsThePublishedPortAndTheBalancer) {
  if (IsSkipped() || HasFatalFailure()) return;
  EveryKindOfTraffic();
  if (HasFatalFailure()) return;

  for (int i = 1; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    // kube-proxy: client-2's processes dialled the VIPs; the walk goes on to
    // the real servers, the VIP on the edge.
    std::string c2 = Lines(i, {"10.213.0.7"});
    EXPECT_LINE(c2, std::string(R"(^> 10\.213\.0\.7\[-\] > 10\.213\.0\.7\[curl\] )") +
                                   kNginx + R"(.*conns=\d+ via=10\.213\.250\.1:80 )");
    EXPECT_LINE(c2, std::string(R"(^> 10\.213\.0\.7\[-\] > 10\.213\.0\.7\[redis-cli\] )") +
                             kRedis + R"(.*conns=1 via=10\.213\.250\.2:6379 )");
    EXPECT_EQ(c2.find("ep=10.213.250."), std::string::npos) << c2;  // no VIP as a node
    // Its curl's dependency on the balancer goes on to each backend.
    const std::string to_lb = R"(^> 10\.213\.0\.7\[-\] > 10\.213\.0\.7\[curl\] )";
    EXPECT_LINE(c2, to_lb + R"(host=lb-1 ep=10\.213\.0\.9:8000 comm=- status=ok )"
                                       R"(conns=10 .*balancer=1 )");
    for (const char* app : {"app-1 ep=10\\.213\\.0\\.3", "app-2 ep=10\\.213\\.0\\.4"})
      EXPECT_LINE(c2, to_lb + R"(> 10\.213\.0\.9:8000\[-\] host=)" + app +
                                     R"(:8000 comm=python3 status=ok )");
    // ... and web-1's clients: client-2's curl (via the VIP) beside client-1's.
    std::string in = Lines(i, {"10.213.0.2:80", "--direction", "in"});
    EXPECT_LINE(in, R"(^< 10\.213\.0\.2:80\[nginx\] host=client-2 ep=10\.213\.0\.7 )"
                               R"(comm=curl .*conns=10 via=10\.213\.250\.1:80 )");
    EXPECT_LINE(in, R"(^< 10\.213\.0\.2:80\[nginx\] host=client-1 ep=10\.213\.0\.1 )"
                               R"(comm=curl .*conns=10 via=- )");

    // docker -p: the published port is the container's nginx on docker-1.
    std::string pub = Lines(i, {"10.213.0.8:9090"});
    EXPECT_LINE(pub, R"(^root host=docker-1 ep=172\.18\.0\.2:80 comm=nginx )"
                                R"(.*via=10\.213\.0\.8:9090 )");
    EXPECT_LINE(pub, R"(^< 172\.18\.0\.2:80\[nginx\] host=client-1 ep=10\.213\.0\.1 )"
                                R"(comm=curl .*conns=10 )");
    std::string c1 = Lines(i, {"10.213.0.1"});
    EXPECT_LINE(c1, R"(^> 10\.213\.0\.1\[-\] > 10\.213\.0\.1\[curl\] host=docker-1 )"
                               R"(ep=172\.18\.0\.2:80 comm=nginx .*conns=10 via=10\.213\.0\.8:9090 )");

    // The balancer: its own node with both apps under it, each with its
    // backends, and client-2's curl as its client.
    std::string lb = Lines(i, {"10.213.0.9:8000"});
    EXPECT_LINE(lb, R"(^root host=lb-1 ep=10\.213\.0\.9:8000 comm=- .*balancer=1 )");
    for (const char* app : {"3", "4"}) {
      std::string under = std::string(R"(^> 10\.213\.0\.9:8000\[-\] )");
      EXPECT_LINE(lb, under + R"(host=app-[12] ep=10\.213\.0\.)" + app +
                                     R"(:8000 comm=python3 )");
      std::string below = under + R"(> 10\.213\.0\.)" + app + R"(:8000\[python3\] )";
      EXPECT_LINE(lb, below + kRedis);
      EXPECT_LINE(lb, below + R"(host=kv-1 ep=10\.213\.0\.6:11211 comm=memcached )");
    }
    EXPECT_LINE(lb, R"(^< 10\.213\.0\.9:8000\[-\] host=client-2 ep=10\.213\.0\.7 )"
                               R"(comm=curl .*conns=10 )");
    // From a backend upward: the balancer (client-2's curl above it) beside nginx.
    std::string app = Lines(i, {"10.213.0.3:8000", "--direction", "in"});
    EXPECT_LINE(app, R"(^< 10\.213\.0\.3:8000\[python3\] host=lb-1 ep=10\.213\.0\.9(:8000)? )"
                                R"(.*balancer=1 )");
    EXPECT_LINE(app, R"(^< 10\.213\.0\.3:8000\[python3\] < 10\.213\.0\.9(:8000)?\[-\] )"
                                R"(host=client-2 ep=10\.213\.0\.7 comm=curl )");
    EXPECT_LINE(app, R"(^< 10\.213\.0\.3:8000\[python3\] host=web-1 ep=10\.213\.0\.2 )"
                                R"(comm=nginx )");
  }

  // The text: the VIP after the host, the balancer as such, the published
  // port's root the listener it reached.
  std::string text = Look(1, {"10.213.0.7"});
  EXPECT_LINE(text, R"(10\.213\.0\.2:80 nginx\.service \('nginx', pgid=\d+\) on web-1 via )"
                               R"(10\.213\.250\.1:80(  |$))");
  text = Look(1, {"10.213.0.9:8000"});
  EXPECT_LINE(text, R"(^10\.213\.0\.9:8000 balancer on lb-1)");
  text = Look(1, {"10.213.0.8:9090"});
  EXPECT_LINE(text, R"(^172\.18\.0\.2:80 container web \(docker [0-9a-f]{12}\) \('nginx', pgid=\d+\) on docker-1 via )"
                               R"(10\.213\.0\.8:9090\b)");
}

// A translation outlives its rule in the window it happened in; a connection
// after the rule is gone is not translated. A VIP whose backend changed in
// the window shows both backends, each via the VIP.
TEST_F(NatLabTest, AStaleTranslationStaysInItsWindowAndAChangedBackendShowsBoth) {
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_EQ(Curl(7, "http://10.213.250.1/", 5), 5);
  // The Service goes away (kube-proxy deletes its rule); a connection to the
  // backend itself is then plain, and the VIP answers nothing.
  Nft(7, "flush chain ip kube output");
  Nft(7, "add rule ip kube output ip daddr 10.213.250.2 tcp dport 6379 dnat to 10.213.0.5:6379");
  EXPECT_EQ(Curl(7, "http://10.213.250.1/", 1), 0);
  ASSERT_EQ(Curl(7, "http://10.213.0.2/", 3), 3);

  // A new Service whose backend moves from app-1 to app-2.
  Nft(7, "add rule ip kube output ip daddr 10.213.250.3 tcp dport 8000 dnat to 10.213.0.3:8000");
  ASSERT_EQ(Curl(7, "http://10.213.250.3:8000/", 4), 4);
  Nft(7, "flush chain ip kube output");
  Nft(7, "add rule ip kube output ip daddr 10.213.250.3 tcp dport 8000 dnat to 10.213.0.4:8000");
  ASSERT_EQ(Curl(7, "http://10.213.250.3:8000/", 6), 6);
  LetEventsArrive();

  for (int i = 1; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string c2 = Lines(i, {"10.213.0.7"});
    const std::string curl = R"(^> 10\.213\.0\.7\[-\] > 10\.213\.0\.7\[curl\] )";
    EXPECT_LINE(c2, curl + kNginx + R"(.*conns=5 via=10\.213\.250\.1:80 )");
    EXPECT_LINE(c2, curl + kNginx + R"(.*conns=3 via=- )");
    EXPECT_LINE(c2, curl + R"(host=app-1 ep=10\.213\.0\.3:8000 comm=python3 )"
                                      R"(.*conns=4 via=10\.213\.250\.3:8000 )");
    EXPECT_LINE(c2, curl + R"(host=app-2 ep=10\.213\.0\.4:8000 comm=python3 )"
                                      R"(.*conns=6 via=10\.213\.250\.3:8000 )");
  }
}

// client-2's meshd may not read connection tracking: its status says why,
// and every look that needs no translation from it is whole.
class NatLabNoConntrackTest : public NatLabTest {
 protected:
  void SetUp() override {
    setenv("TOPOLOGY_NO_CONNTRACK", "7", 1);
    NatLabTest::SetUp();
  }
  void TearDown() override {
    NatLabTest::TearDown();
    unsetenv("TOPOLOGY_NO_CONNTRACK");
  }
};

TEST_F(NatLabNoConntrackTest, StatusSaysWhyAndLooksWithoutTranslationWork) {
  if (IsSkipped() || HasFatalFailure()) return;
  CommandResult st = Ctl(7, {"--json", "status"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_LINE(st.out, R"("conntrack":\s*"off: [^"]*CAP_NET_ADMIN)");
  EXPECT_NE(LineMatching(Ctl(7, {"status"}).out, R"(^conntrack\s+off: .*CAP_NET_ADMIN)"), "");
  // The others read theirs.
  EXPECT_NE(LineMatching(Ctl(8, {"--json", "status"}).out, R"("conntrack":\s*"on)"), "");

  EveryKindOfTraffic();
  if (HasFatalFailure()) return;
  for (int i = 1; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string web = Lines(i, {"10.213.0.2:80"});
    EXPECT_LINE(web, std::string("^root ") + kNginx);
    EXPECT_LINE(web, R"(^< 10\.213\.0\.2:80\[nginx\] host=client-1 .*conns=10 )");
    EXPECT_EQ(CountMatching(web, R"(^> 10\.213\.0\.2:80\[nginx\] > 10\.213\.0\.[34]:8000\[python3\] )"
                                 R"(host=(cache|kv)-1 .*status=ok)"),
              4)
        << web;
    // The other hosts' translations still work: lb-1 translated client-2's
    // connections itself, docker-1 its published port.
    std::string lb = Lines(i, {"10.213.0.9:8000"});
    EXPECT_LINE(lb, R"(^root host=lb-1 .*balancer=1 )");
    std::string pub = Lines(i, {"10.213.0.8:9090"});
    EXPECT_LINE(pub, R"(^root host=docker-1 ep=172\.18\.0\.2:80 comm=nginx )");
    // client-2's own VIP translation is not known, so no edge claims it.
    std::string c2 = Lines(i, {"10.213.0.7"});
    EXPECT_EQ(c2.find("via=10.213.250."), std::string::npos) << c2;
  }
}

}  // namespace
}  // namespace flowmesh::testing
