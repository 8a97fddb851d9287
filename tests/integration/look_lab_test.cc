// The mesh-wide look on the lab (issue 5): topology.sh's hosts (client ->
// nginx -> two python apps -> redis and memcached), each with its own meshd in
// one sealed mesh, real traffic, and `meshctl look` asked on every host. Plus
// an address no agent owns, a cycle (A calls B calls A), and an app host whose
// meshd is killed, which must come back as an `unreachable` leaf in time while
// the rest of the tree is intact. The same tree from every host, 50 rounds
// under CPU load. And a past window, whose root is the
// process that listened then.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/look_lab_fixture.h"

namespace flowmesh::testing {
namespace {

using namespace std::chrono_literals;

// The whole nginx tree from every host, the directions, depth, windows, the
// JSON and dot renderings, look <ip>, a no-agent leaf and a cycle.
TEST_F(LookLabTest, EveryHostSeesTheWholeTreeOfTheNginxEndpoint) {
  if (IsSkipped() || HasFatalFailure()) return;
  CommandResult t = Topology({"traffic", work_, "20", "web"}, 60s);
  ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
  LetEventsArrive();

  for (int i = 1; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string tree = Look(i, {"10.213.0.2:80"});
    EXPECT_NE(LineMatching(tree, R"(^10\.213\.0\.2:80 nginx\.service \('nginx', pgid=\d+\) on web-1$)"), "")
        << tree;
    EXPECT_NE(
        LineMatching(tree, R"(^└<-- 10\.213\.0\.1 session-1\.scope \('curl', pgid=\d+\) on client-1  20 conns)"), "")
        << tree;
    for (const char* app : {R"(10\.213\.0\.3:8000 flowmesh-lab-app\.service \('python3', pgid=\d+\) on app-1  \d+ conns)",
                            R"(10\.213\.0\.4:8000 pod shop/api-7d9c5b-x2k4q/api \(containerd [0-9a-f]{12}\) \('python3', pgid=\d+\) on app-2  \d+ conns)"})
      EXPECT_NE(LineMatching(tree, std::string("^└--> ") + app), "") << tree;
    // Both apps use both backends: two levels of dependencies.
    EXPECT_EQ(
        CountMatching(
            tree,
            R"(^     └--> 10\.213\.0\.5:6379 redis-server\.service \('redis-server', pgid=\d+\) on cache-1  [1-9]\d* conns)"),
        2)
        << tree;
    EXPECT_EQ(
        CountMatching(
            tree,
            R"(^     └--> 10\.213\.0\.6:11211 memcached\.service \('memcached', pgid=\d+\) on kv-1  [1-9]\d* conns)"),
        2)
        << tree;
    EXPECT_EQ(tree.find("[unreachable]"), std::string::npos) << tree;
    EXPECT_EQ(tree.find("[no-agent]"), std::string::npos) << tree;
  }

  // Directions and depth.
  std::string in = Look(1, {"10.213.0.2:80", "--direction", "in"});
  EXPECT_NE(in.find("└<-- 10.213.0.1 session-1.scope ('curl'"), std::string::npos) << in;
  EXPECT_EQ(in.find("└-->"), std::string::npos) << in;
  std::string out = Look(1, {"10.213.0.2:80", "--direction", "out", "--depth", "1"});
  EXPECT_EQ(out.find("└<--"), std::string::npos) << out;
  EXPECT_EQ(CountMatching(out, R"(^└--> 10\.213\.0\.[34]:8000 .* on app-[12] \[depth-limit\])"), 2)
      << out;
  EXPECT_EQ(out.find("redis-server"), std::string::npos) << out;
  // From the app upward: nginx, then curl above it.
  std::string up = Look(5, {"10.213.0.3:8000", "--direction", "in"});
  EXPECT_NE(LineMatching(up, R"(^└<-- 10\.213\.0\.2 nginx\.service \('nginx', pgid=\d+\) on web-1)"), "") << up;
  EXPECT_NE(LineMatching(up, R"(^     └<-- 10\.213\.0\.1 session-1\.scope \('curl', pgid=\d+\) on client-1)"), "")
      << up;

  // Windows: one that ends before the traffic holds none of it. Flows are
  // kept per minute, so it ends before the minute the traffic began in.
  auto minute = std::chrono::floor<std::chrono::minutes>(before_traffic_);
  std::string before = Look(3, {"10.213.0.2:80", "--until", Rfc3339(minute - 1s)});
  EXPECT_EQ(before.find("└"), std::string::npos) << before;
  std::string recent = Look(3, {"10.213.0.2:80", "--since", "10m"});
  EXPECT_NE(recent.find("└<-- 10.213.0.1 session-1.scope ('curl'"), std::string::npos) << recent;

  // JSON is one valid object with the DESIGN.md fields; dot is a digraph.
  CommandResult json = Ctl(4, {"look", "10.213.0.2:80", "--format", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  CommandResult valid = RunCommand(
      {"/usr/bin/python3", "-c",
       "import json,sys; d=json.loads(sys.argv[1]); r=d['root']; "
       "assert d['query']=={'target':'10.213.0.2:80','direction':'both','depth':3,"
       "'group_by':'workload'}, d['query']; "
       "assert r['host']=='web-1' and r['process']['comm']=='nginx' and r['status']=='ok'; "
       "assert r['clients'][0]['stats']['connections']==20; "
       "deps=[n for n in r['dependencies'] if n['host'] in ('app-1','app-2')]; assert "
       "len(deps)==2; "
       "assert all({c['host'] for c in n['dependencies']}=={'cache-1','kv-1'} for n in deps); "
       "print('ok')",
       json.out});
  EXPECT_EQ(valid.out, "ok\n") << valid.err << json.out;
  CommandResult dot = Ctl(6, {"look", "10.213.0.2:80", "--format", "dot"});
  EXPECT_EQ(dot.out.rfind("digraph", 0), 0u) << dot.out;
  EXPECT_NE(dot.out.find("redis-server"), std::string::npos) << dot.out;

  // An address no agent owns: a tenth host without meshd serves, client-1's
  // curl fetches from it, and look <ip> of client-1 shows it as a no-agent leaf
  // beside nginx.
  ASSERT_EQ(RunCommand({"/bin/bash", LAB_SH, "add", kPrefix, "10"}).exit_code, 0);
  Background(10, "ext",
             "/usr/bin/python3 -m http.server 8080 --bind 10.213.0.10 --directory /var/empty");
  ASSERT_TRUE(Listening(10, "10.213.0.10:8080"));
  for (int n = 0; n < 3; n++)
    RunCommand({"/usr/sbin/ip", "netns", "exec", Ns(1), "curl", "-s", "-o", "/dev/null",
                "--max-time", "2", "http://10.213.0.10:8080/"});
  LetEventsArrive();
  std::string host = Look(2, {"10.213.0.1"});
  EXPECT_NE(LineMatching(host, R"(^10\.213\.0\.1 on client-1$)"), "") << host;
  EXPECT_NE(LineMatching(host, R"(^└--> 10\.213\.0\.1 session-1\.scope \('curl', pgid=\d+\) on client-1)"), "")
      << host;
  EXPECT_NE(
      LineMatching(host, R"(^     └--> 10\.213\.0\.2:80 nginx\.service \('nginx', pgid=\d+\) on web-1  20 conns)"),
      "")
      << host;
  EXPECT_NE(LineMatching(host, R"(^     └--> 10\.213\.0\.10:8080 \[no-agent\]  3 conns)"), "")
      << host;

  // A cycle: A (app-1:9001) calls B (app-2:9002), which calls A again.
  Background(3, "ping",
             std::string("/usr/bin/python3 ") + PING_PONG_PY +
                 " --listen 10.213.0.3:9001 --peer 10.213.0.4:9002");
  Background(4, "pong",
             std::string("/usr/bin/python3 ") + PING_PONG_PY +
                 " --listen 10.213.0.4:9002 --peer 10.213.0.3:9001");
  ASSERT_TRUE(Listening(3, "10.213.0.3:9001"));
  ASSERT_TRUE(Listening(4, "10.213.0.4:9002"));
  CommandResult c = RunCommand({"/usr/sbin/ip", "netns", "exec", Ns(1), "curl", "-s", "-o",
                                "/dev/null", "--max-time", "5", "http://10.213.0.3:9001/?n=3"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  LetEventsArrive();
  std::string cycle = Look(1, {"10.213.0.3:9001", "--direction", "out", "--depth", "6"});
  EXPECT_NE(LineMatching(cycle, R"(^└--> 10\.213\.0\.4:9002 \('python3', pgid=\d+\) on app-2)"), "")
      << cycle;
  EXPECT_NE(
      LineMatching(cycle,
                   R"(^     └--> 10\.213\.0\.3:9001 \('python3', pgid=\d+\) on app-1 \[cycle\])"),
      "")
      << cycle;
}

// The same tree from every host (issue 13): 50 rounds, each asking all nine
// hosts at once, with a CPU hog on both cores. Every tree must equal the
// first one, which must be whole; a node the walk could not answer must show
// as `unreachable` with its reason, never as a missing branch, and be counted.
TEST_F(LookLabTest, EveryHostSeesTheSameTreeFiftyTimesUnderCpuLoad) {
  if (IsSkipped() || HasFatalFailure()) return;
  CommandResult t = Topology({"traffic", work_, "20", "web"}, 60s);
  ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
  LetEventsArrive();
  // The reference: the whole tree (both apps, each with both backends). Its
  // flows reach the stores as the probes read them, later on a loaded host:
  // how long that took is printed, so a late store is told from a bad walk.
  std::string whole = R"(^(     )?└--> .*\('[a-z0-9-]+', pgid=\d+\) on .*conns)";
  std::string reference;
  int attempts = 0;
  while (attempts++ < 20) {
    reference = Look(1, {"10.213.0.2:80"});
    if (CountMatching(reference, whole) == 6) break;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_EQ(CountMatching(reference, whole), 6) << reference;
  std::printf("[ measured ] the whole tree after %d look(s), 250 ms apart\n", attempts);

  constexpr int kRounds = 50;
  // Bounded: the hog ends by itself even if this test is killed.
  std::string hog = "timeout 150 sh -c 'while :; do :; done'";
  Background(1, "hog1", hog);
  Background(1, "hog2", hog);
  auto start = std::chrono::steady_clock::now();
  int differing = 0, unreachable = 0;
  for (int round = 0; round < kRounds; round++) {
    // All at once: the answering nodes see concurrent queries.
    std::string script;
    for (int i = 1; i <= kHosts; i++)
      script += "bash " + std::string(TOPOLOGY_SH) + " ctl " + work_ + " " + std::to_string(i) +
                " look 10.213.0.2:80 >" + work_ + "/tree" + std::to_string(i) + " 2>&1 & ";
    CommandResult r = RunCommand({"/bin/sh", "-c", script + "wait"}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (int i = 1; i <= kHosts; i++) {
      std::string tree = RunCommand({"/bin/cat", work_ + "/tree" + std::to_string(i)}).out;
      if (tree == reference) continue;
      differing++;
      bool visible = tree.find("[unreachable]") != std::string::npos;
      unreachable += visible;
      // Every unreachable node says why, at the end of its line.
      EXPECT_EQ(CountMatching(tree, R"(\[unreachable\].*  \(.+\)$)"),
                CountMatching(tree, R"(\[unreachable\])"))
          << tree;
      ADD_FAILURE() << "round " << round << ", asked on " << kHostNames[i - 1]
                    << (visible ? " (a node is marked unreachable)" : " (SILENTLY different)")
                    << ":\n"
                    << tree << "--- expected:\n"
                    << reference;
    }
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  // The hogs end with their timeout, or with the lab's namespaces in TearDown.
  // Whatever went unanswered was counted where the look ran.
  uint64_t counted = 0;
  for (int i = 1; i <= kHosts; i++) {
    CommandResult st = Ctl(i, {"--json", "status"});
    std::smatch m;
    std::string s = st.out;
    std::regex count(R"("look_unanswered":\{[^}]*\})");
    ASSERT_TRUE(std::regex_search(s, m, count)) << s;
    std::string obj = m.str();
    std::regex n(R"(:(\d+))");
    for (auto it = std::sregex_iterator(obj.begin(), obj.end(), n); it != std::sregex_iterator();
         ++it)
      counted += std::stoull((*it)[1]);
  }
  EXPECT_EQ(counted > 0, unreachable > 0) << counted << " unanswered queries counted";
  std::printf(
      "[ measured ] %d rounds x %d hosts under load: %lld ms, %d trees differ (%d with an "
      "unreachable node), %llu unanswered member queries counted\n",
      kRounds, kHosts, static_cast<long long>(took.count()), differing, unreachable,
      static_cast<unsigned long long>(counted));
  EXPECT_EQ(differing, 0);
}

// A past listener as the root of a past window (issue 13): a server on app-1
// serves client-1's curl and exits, another process takes its port, and a
// look of the first one's time, asked on client-1 (the question crosses the
// mesh with its window) and on app-1, has the first as its root with curl
// as its client; a look of now has the second.
TEST_F(LookLabTest, APastWindowsRootIsWhoListenedThenAskedFromAnyHost) {
  if (IsSkipped() || HasFatalFailure()) return;
  // A server on app-1 in its own process group; its pid (= pgid) in a file.
  auto serve = [&](const std::string& name) {
    const std::string pid_file = work_ + "/" + name + ".pid";
    CommandResult r =
        RunCommand({"/bin/sh", "-c",
                    "ip netns exec " + Ns(3) + " setsid /bin/sh -c 'echo $$ >" + pid_file +
                        "; exec /usr/bin/python3 -m http.server 9100 --bind 10.213.0.3 --directory "
                        "/var/empty' >" +
                        work_ + "/" + name + ".log 2>&1 </dev/null &"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(Listening(3, "10.213.0.3:9100"));
    return std::stoi(RunCommand({"/bin/cat", pid_file}).out);
  };
  const auto before = std::chrono::system_clock::now() - 1s;
  const int first = serve("past-first");
  for (int n = 0; n < 3; n++)
    ASSERT_EQ(RunCommand({"/usr/sbin/ip", "netns", "exec", Ns(1), "curl", "-s", "-o", "/dev/null",
                          "--max-time", "2", "http://10.213.0.3:9100/"})
                  .exit_code,
              0);
  LetEventsArrive();
  std::this_thread::sleep_for(1s);
  const auto while_first = std::chrono::system_clock::now();
  std::this_thread::sleep_for(1s);
  ASSERT_EQ(kill(first, SIGTERM), 0);
  for (int n = 0; n < 50 && kill(first, 0) == 0; n++) std::this_thread::sleep_for(100ms);
  std::this_thread::sleep_for(1s);
  const int second = serve("past-second");
  LetEventsArrive();

  const std::string root = R"(^10\.213\.0\.3:9100 \('python3', pgid=)";
  for (int i : {1, 3}) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string then =
        Look(i, {"10.213.0.3:9100", "--since", Rfc3339(before), "--until", Rfc3339(while_first)});
    EXPECT_NE(LineMatching(then, root + std::to_string(first) + R"(\) on app-1$)"), "") << then;
    EXPECT_NE(
        LineMatching(then, R"(^└<-- 10\.213\.0\.1 \('curl', pgid=\d+\) on client-1  3 conns)"), "")
        << then;
    EXPECT_EQ(then.find("pgid=" + std::to_string(second)), std::string::npos) << then;
    std::string now = Look(i, {"10.213.0.3:9100"});
    EXPECT_NE(LineMatching(now, root + std::to_string(second) + R"(\) on app-1$)"), "") << now;
  }
  kill(second, SIGTERM);
}

// kill -9 of app-2's meshd: asked before the mesh has noticed, app-2 is an
// unreachable leaf within the per-hop timeout; after it is declared dead,
// at once. Either way the rest of the tree comes back whole.
TEST_F(LookLabTest, AKilledAppHostIsAnUnreachableLeafAndTheRestComesBack) {
  if (IsSkipped() || HasFatalFailure()) return;
  CommandResult t = Topology({"traffic", work_, "10", "web"}, 60s);
  LetEventsArrive();
  ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
  CommandResult pid = RunCommand({"/bin/cat", work_ + "/app-2/meshd.pid"});
  ASSERT_EQ(pid.exit_code, 0);
  ASSERT_EQ(kill(std::stoi(pid.out), SIGKILL), 0);

  for (const char* phase : {"just killed", "declared dead"}) {
    SCOPED_TRACE(phase);
    auto start = std::chrono::steady_clock::now();
    std::string tree = Look(1, {"10.213.0.2:80", "--hop-timeout", "1s"});
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, 4s) << "look took "
                        << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                        << " ms";
    EXPECT_NE(LineMatching(tree, // The owner its gossiped table announced, when the asking node has that
                                 // row (not always: seen missing in CI, see the issue 15 note).
                                 R"(^└--> 10\.213\.0\.4:8000 (pod shop/api-7d9c5b-x2k4q/api \(containerd )"
                                 R"([0-9a-f]{12}\) \('python3', pgid=\d+\) )?on app-2 \[unreachable\]  \d+ conns)"
                                 R"(.*  \(.+\)$)"),
              "")
        << tree;
    EXPECT_NE(LineMatching(tree, R"(^└<-- 10\.213\.0\.1 session-1\.scope \('curl', pgid=\d+\) on client-1)"), "")
        << tree;
    EXPECT_NE(LineMatching(tree, R"(^└--> 10\.213\.0\.3:8000 flowmesh-lab-app\.service \('python3', pgid=\d+\) on app-1)"),
              "")
        << tree;
    EXPECT_NE(LineMatching(tree, R"(^     └--> 10\.213\.0\.5:6379 redis-server\.service \('redis-server')"), "") << tree;
    if (std::string(phase) == "just killed") {
      // Wait for the failure detector (memberlist LAN defaults: a few seconds).
      bool dead = false;
      for (int n = 0; n < 60 && !dead; n++) {
        std::this_thread::sleep_for(500ms);
        for (const JsonLine& p : ParseFlatJsonArray(Ctl(1, {"--json", "peers"}).out)) {
          auto name = p.find("name");
          auto state = p.find("state");
          if (name != p.end() && name->second == "app-2" && state != p.end() &&
              state->second == "dead")
            dead = true;
        }
      }
      ASSERT_TRUE(dead) << Ctl(1, {"peers"}).out;
    }
  }
  // Both went unanswered and were counted: a refused connection (or a
  // timeout), then a member not asked because it is dead.
  std::string st = Ctl(1, {"--json", "status"}).out;
  EXPECT_NE(LineMatching(st, R"("look_unanswered":\{.*"member_gone":[1-9])"), "") << st;
  std::string json = Ctl(1, {"look", "10.213.0.2:80", "--format", "json"}).out;
  EXPECT_NE(json.find(R"("status": "unreachable", "status_detail": "member app-2 is dead")"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace flowmesh::testing
