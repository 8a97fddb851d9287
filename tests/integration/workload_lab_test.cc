// Workloads on the lab (issue 15): every server runs in a cgroup named as
// systemd, docker or the kubelet name theirs, with the runtimes' files
// beside it (topology_workloads.sh). Trees asked on every host name them;
// a unit's server restarted (new pids, a new process group) stays one node.
// Trees are read from their JSON, one line per node (look_lines.py), and
// from the text a person reads.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/look_lab_fixture.h"

namespace flowmesh::testing {
namespace {

#define EXPECT_LINE(text, re) EXPECT_NE(LineMatching(text, re), "") << (text)

// The lab's fixed ids (topology_workloads.sh: sha256 of a fixed string).
std::string LabId(const std::string& what) {
  CommandResult r = RunCommand(
      {"/bin/sh", "-c", "printf 'flowmesh-lab %s' '" + what + "' | sha256sum | cut -c1-64"});
  return r.out.substr(0, 64);
}

class WorkloadLabTest : public LookLabTest {
 protected:
  std::string Lines(int i, const std::vector<std::string>& args) {
    std::string cmd = "bash " + std::string(TOPOLOGY_SH) + " ctl " + work_ + " " +
                      std::to_string(i) + " look";
    for (const std::string& a : args) cmd += " " + a;
    cmd += " --format json | " + std::string(LOOK_LINES_PY);
    CommandResult r = RunCommand({"/bin/bash", "-c", "set -o pipefail; " + cmd}, 30s);
    EXPECT_EQ(r.exit_code, 0) << cmd << "\n" << r.out << r.err;
    return r.out;
  }

  void Traffic(const std::string& what, int n = 10) {
    CommandResult t = Topology({"traffic", work_, std::to_string(n), what}, 120s);
    ASSERT_EQ(t.exit_code, 0) << t.out << t.err;
    LetEventsArrive();
  }
};

TEST_F(WorkloadLabTest, EveryHostNamesTheUnitsContainersAndPods) {
  if (IsSkipped() || HasFatalFailure()) return;
  Traffic("web,docker");
  if (HasFatalFailure()) return;
  const std::string docker = LabId("docker-web");
  const std::string pod_container = LabId("pod-api");

  for (int i = 1; i <= kHosts; i++) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string web = Lines(i, {"10.213.0.2:80"});
    EXPECT_LINE(web, R"(^root host=web-1 ep=10\.213\.0\.2:80 comm=nginx .*workload=unit:nginx\.service$)");
    EXPECT_LINE(web, R"(^> 10\.213\.0\.2:80\[nginx\] host=app-1 ep=10\.213\.0\.3:8000 comm=python3 )"
                     R"(.*workload=unit:flowmesh-lab-app\.service$)");
    EXPECT_LINE(web, R"(^> 10\.213\.0\.2:80\[nginx\] host=app-2 ep=10\.213\.0\.4:8000 comm=python3 )"
                     R"(.*workload=pod:shop/api-7d9c5b-x2k4q/api$)");
    EXPECT_LINE(web, R"(host=cache-1 ep=10\.213\.0\.5:6379 comm=redis-server .*)"
                     R"(workload=unit:redis-server\.service$)");
    EXPECT_LINE(web, R"(host=kv-1 ep=10\.213\.0\.6:11211 comm=memcached .*)"
                     R"(workload=unit:memcached\.service$)");
    // The client: curl in client-1's login session.
    EXPECT_LINE(web, R"(^< 10\.213\.0\.2:80\[nginx\] host=client-1 ep=10\.213\.0\.1 comm=curl .*)"
                     R"(workload=unit:session-1\.scope$)");

    // docker -p into the container named web.
    std::string pub = Lines(i, {"10.213.0.8:9090"});
    EXPECT_LINE(pub, R"(^root host=docker-1 ep=172\.18\.0\.2:80 comm=nginx .*)"
                     R"(via=10\.213\.0\.8:9090 .*workload=container:docker:web$)");

    // What a person reads: the workload first, then the process.
    std::string text = Look(i, {"10.213.0.2:80"});
    EXPECT_LINE(text, R"(^10\.213\.0\.2:80 nginx\.service \('nginx', pgid=\d+\) on web-1$)");
    EXPECT_LINE(text, R"(10\.213\.0\.4:8000 pod shop/api-7d9c5b-x2k4q/api \(containerd )" +
                          pod_container.substr(0, 12) + R"(\) \('python3', pgid=\d+\) on app-2 )");
    std::string c = Look(i, {"10.213.0.8:9090"});
    EXPECT_LINE(c, R"(^172\.18\.0\.2:80 container web \(docker )" + docker.substr(0, 12) +
                       R"(\) \('nginx', pgid=\d+\) on docker-1 via 10\.213\.0\.8:9090)");
  }

  // The JSON object, whole, from a host that is not docker-1.
  CommandResult j = RunCommand(
      {"/bin/bash", "-c",
       "set -o pipefail; bash " + std::string(TOPOLOGY_SH) + " ctl " + work_ +
           " client-1 look 10.213.0.8:9090 --format json | /usr/bin/python3 -c 'import json,sys; "
           "print(json.dumps(json.load(sys.stdin)[\"root\"][\"process\"][\"workload\"], "
           "sort_keys=True))'"},
      30s);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.out.find("\"kind\": \"container\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"runtime\": \"docker\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"id\": \"" + docker + "\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"name\": \"web\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"unit\": \"docker-" + docker + ".scope\""), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("\"pod\": null"), std::string::npos) << j.out;

  // Filters on the owning host, and the endpoints table everyone has.
  CommandResult units = Ctl(2, {"flows", "--unit", "nginx.service"});
  EXPECT_EQ(units.exit_code, 0) << units.err;
  EXPECT_NE(units.out.find("nginx"), std::string::npos) << units.out;
  EXPECT_EQ(units.out.find("python3"), std::string::npos) << units.out;
  CommandResult web = Ctl(8, {"flows", "--container", "web"});
  EXPECT_EQ(web.exit_code, 0) << web.err;
  // Columns: PID COMM LADDR LPORT ... WORKLOAD.
  const std::string served = R"(nginx +172\.18\.0\.2 +80 .*container web \(docker )";
  EXPECT_LINE(web.out, served);
  CommandResult none = Ctl(8, {"flows", "--container", "no-such-container"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(LineMatching(none.out, served), "") << none.out;
  std::string eps = Ctl(1, {"endpoints", "--all"}).out;
  EXPECT_LINE(eps, R"(^web-1 +10\.213\.0\.2:80 .*nginx\.service)");
  EXPECT_LINE(eps, R"(^app-2 +10\.213\.0\.4:8000 .*pod shop/api-7d9c5b-x2k4q/api)");
}

// systemctl restart: nginx.service's processes exit and new ones (new pids,
// a new process group) start in the same unit. app-1's clients over both
// lives are one node by workload, two by process group.
TEST_F(WorkloadLabTest, ARestartedUnitIsOneNode) {
  if (IsSkipped() || HasFatalFailure()) return;
  Traffic("web", 20);
  if (HasFatalFailure()) return;
  CommandResult r = Topology({"restart", work_, "web-1"}, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::printf("%s", r.out.c_str());
  Traffic("web", 20);
  if (HasFatalFailure()) return;

  const std::string web1 = R"(^< 10\.213\.0\.3:8000\[python3\] host=web-1 ep=10\.213\.0\.2 )";
  for (int i : {1, 3, 5}) {
    SCOPED_TRACE(std::string("asked on ") + kHostNames[i - 1]);
    std::string by_unit = Lines(i, {"10.213.0.3:8000", "--direction", "in", "--depth", "1"});
    EXPECT_EQ(CountMatching(by_unit, web1), 1) << by_unit;
    EXPECT_LINE(by_unit, web1 + R"(comm=nginx .*workload=unit:nginx\.service$)");
    std::string by_pgid = Lines(
        i, {"10.213.0.3:8000", "--direction", "in", "--depth", "1", "--group-by", "pgid"});
    EXPECT_EQ(CountMatching(by_pgid, web1), 2) << by_pgid;
    std::string text = Look(i, {"10.213.0.3:8000", "--direction", "in", "--depth", "1"});
    EXPECT_EQ(CountMatching(text, R"(10\.213\.0\.2 nginx\.service \('nginx')"), 1) << text;
  }
}

}  // namespace
}  // namespace flowmesh::testing
