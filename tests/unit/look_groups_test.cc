// How look groups a host's processes (ProcessGroupKey, ProcessIndex): a
// unit's processes across restarts are one group, processes without a
// workload fall back to their pgid, pgid and pid groupings are as before,
// and the process shown for a restarted unit is its latest.
#include <gtest/gtest.h>

#include "node/look/process_groups.h"

namespace flowmesh {
namespace {

Workload Unit(const char* name) {
  Workload w;
  w.kind = WorkloadKind::kUnit;
  w.id = name;
  w.unit = name;
  w.cgroup = std::string("/system.slice/") + name;
  return w;
}

Workload Container(const char* name, const char* id) {
  Workload w;
  w.kind = WorkloadKind::kContainer;
  w.runtime = "docker";
  w.id = id;
  w.name = name;
  w.unit = std::string("docker-") + id + ".scope";
  return w;
}

ProcessDetails Proc(uint32_t pid, uint64_t start, uint32_t pgid, const char* comm,
                    Workload w = {}) {
  ProcessDetails p;
  p.pid = pid;
  p.start_ticks = start;
  p.pgid = pgid;
  p.comm = comm;
  p.workload = std::move(w);
  return p;
}

// nginx.service ran as master 120 + worker 121, then restarted as master
// 300 + worker 301; a shell's pgid 500 holds a unit-less python3 and curl;
// a container's app; a process of unknown pgid.
std::vector<ProcessDetails> Host() {
  return {Proc(120, 1000, 120, "nginx", Unit("nginx.service")),
          Proc(121, 1001, 120, "nginx", Unit("nginx.service")),
          Proc(300, 9000, 300, "nginx", Unit("nginx.service")),
          Proc(301, 9001, 300, "nginx", Unit("nginx.service")),
          Proc(500, 2000, 500, "python3"),
          Proc(501, 2001, 500, "curl"),
          Proc(600, 3000, 600, "python3", Container("web", "3f2a1c4d5e6f00112233")),
          Proc(700, 4000, 0, "orphan")};
}

TEST(ProcessGroupKey, WorkloadThenPgidThenProcess) {
  const ProcessDetails nginx = Proc(120, 1000, 120, "nginx", Unit("nginx.service"));
  EXPECT_EQ(ProcessGroupKey(nginx, GroupBy::kWorkload), "wu:nginx.service");
  EXPECT_EQ(ProcessGroupKey(nginx, GroupBy::kPgid), "g120");
  EXPECT_EQ(ProcessGroupKey(nginx, GroupBy::kPid), "p120/1000");
  const ProcessDetails bare = Proc(500, 2000, 500, "python3");
  EXPECT_EQ(ProcessGroupKey(bare, GroupBy::kWorkload), "g500");
  EXPECT_EQ(ProcessGroupKey(Proc(700, 4000, 0, "orphan"), GroupBy::kWorkload), "p700/4000");
  EXPECT_EQ(ProcessGroupKey(Proc(600, 3000, 600, "python3", Container("web", "3f2a")),
                            GroupBy::kWorkload),
            "wc:docker:web");
}

TEST(ProcessIndex, AUnitAcrossRestartsIsOneGroupByWorkload) {
  ProcessIndex by_workload(Host(), GroupBy::kWorkload);
  EXPECT_EQ(by_workload.Group(121, 1001), by_workload.Group(300, 9000));
  EXPECT_EQ(by_workload.Group(120, 1000), by_workload.Group(301, 9001));
  ProcessIndex by_pgid(Host(), GroupBy::kPgid);
  EXPECT_NE(by_pgid.Group(121, 1001), by_pgid.Group(300, 9000));
  EXPECT_EQ(by_pgid.Group(120, 1000), by_pgid.Group(121, 1001));
  ProcessIndex by_pid(Host(), GroupBy::kPid);
  EXPECT_NE(by_pid.Group(120, 1000), by_pid.Group(121, 1001));
}

TEST(ProcessIndex, MixedGroupsKeepTheirPgidWithoutAWorkload) {
  ProcessIndex procs(Host(), GroupBy::kWorkload);
  // The shell's two processes have no workload: one pgid group.
  EXPECT_EQ(procs.Group(500, 2000), procs.Group(501, 2001));
  EXPECT_NE(procs.Group(500, 2000), procs.Group(600, 3000));
  EXPECT_NE(procs.Group(500, 2000), procs.Group(120, 1000));
  // Unknown to the store, or without a pgid: alone.
  EXPECT_EQ(procs.Group(999, 1), "p999/1");
  EXPECT_EQ(procs.Group(700, 4000), "p700/4000");
  EXPECT_NE(procs.Group(600, 3000), procs.Group(601, 3000));
}

TEST(ProcessIndex, TheRestartedUnitShowsItsLatestLeader) {
  ProcessIndex procs(Host(), GroupBy::kWorkload);
  // The old worker had more connections, but the unit now runs as 300/301:
  // its leader is shown.
  ProcessDetails shown = procs.Representative({{{121, 1001}, 50}, {{301, 9001}, 2}});
  EXPECT_EQ(shown.pid, 300u);
  EXPECT_EQ(shown.workload.id, "nginx.service");
  // Only the old run in the window: its leader, as for a pgid.
  EXPECT_EQ(procs.Representative({{{121, 1001}, 5}}).pid, 120u);
}

TEST(ProcessIndex, PgidAndPidRepresentativesAreAsBefore) {
  ProcessIndex by_pgid(Host(), GroupBy::kPgid);
  EXPECT_EQ(by_pgid.Representative({{{121, 1001}, 5}}).pid, 120u);  // the master
  EXPECT_EQ(by_pgid.Representative({{{501, 2001}, 3}, {{500, 2000}, 1}}).pid, 500u);
  ProcessIndex by_pid(Host(), GroupBy::kPid);
  EXPECT_EQ(by_pid.Representative({{{121, 1001}, 5}}).pid, 121u);
  // A process the store never saw is shown as the flow knew it.
  EXPECT_EQ(by_pgid.Representative({{{999, 1}, 1}}).pid, 999u);
}

TEST(ProcessIndex, ALeaderOfAnotherWorkloadIsNotShown) {
  // A container's process whose pgid leader is the shell outside it (a
  // `docker exec` or a process moved into a cgroup keeps its pgid).
  std::vector<ProcessDetails> all = Host();
  all.push_back(Proc(502, 2500, 500, "app", Container("web", "3f2a1c4d5e6f00112233")));
  ProcessIndex procs(std::move(all), GroupBy::kWorkload);
  EXPECT_EQ(procs.Representative({{{502, 2500}, 1}}).pid, 502u);
  EXPECT_EQ(procs.Group(502, 2500), procs.Group(600, 3000));
}

TEST(ProcessGroupKey, InitScopeGroupsByPgidLikeASession) {
  // Socket-activated services listen through PID 1: init.scope is no one
  // service, so its processes are not one group.
  ProcessDetails pid1 = Proc(1, 10, 1, "systemd", Unit("init.scope"));
  EXPECT_EQ(ProcessGroupKey(pid1, GroupBy::kWorkload), "g1");
  Workload user = Unit("init.scope");
  user.user_unit = true;
  EXPECT_EQ(ProcessGroupKey(Proc(900, 20, 900, "systemd", user), GroupBy::kWorkload), "g900");
  EXPECT_EQ(ProcessGroupKey(Proc(2, 30, 2, "x", Unit("session-2.scope")), GroupBy::kWorkload),
            "g2");
}

EndpointRecord Listener(uint32_t pid, uint64_t start, uint32_t pgid, const char* comm, Workload w) {
  EndpointRecord l;
  l.port = 80;
  l.proc.pid = pid;
  l.proc.start_ticks = start;
  l.proc.pgid = pgid;
  l.proc.set_comm(comm);
  l.workload = std::move(w);
  return l;
}

TEST(ProcessIndex, AListenersOwnerWithoutARowGroupsByTheListenersWorkload) {
  // nginx 400's process row expired; its listener kept its workload.
  ProcessIndex procs(Host(), GroupBy::kWorkload);
  EXPECT_EQ(procs.Group(400, 9500), "p400/9500");
  procs.AddListenerOwner(Listener(400, 9500, 400, "nginx", Unit("nginx.service")));
  EXPECT_EQ(procs.Group(400, 9500), procs.Group(120, 1000));
  ProcessDetails d = procs.Details(400, 9500);
  EXPECT_EQ(d.comm, "nginx");
  EXPECT_EQ(d.pgid, 400u);
  EXPECT_EQ(d.workload.id, "nginx.service");
}

TEST(ProcessIndex, AStoredRowWinsOverTheListenersButAnEmptyWorkloadIsFilledIn) {
  ProcessIndex procs(Host(), GroupBy::kWorkload);
  // Stored as nginx.service: the listener's (older) word does not change it.
  procs.AddListenerOwner(Listener(120, 1000, 120, "nginx", Unit("other.service")));
  EXPECT_EQ(procs.Details(120, 1000).workload.id, "nginx.service");
  // Stored before it was named: the listener names it.
  procs.AddListenerOwner(Listener(500, 2000, 500, "python3", Unit("app.service")));
  EXPECT_EQ(procs.Group(500, 2000), "wu:app.service");
  EXPECT_EQ(procs.Details(500, 2000).comm, "python3");
  // An unknown owner adds nothing.
  procs.AddListenerOwner(Listener(0, 0, 0, "", Unit("x.service")));
  EXPECT_EQ(procs.Group(0, 0), "p0/0");
}

}  // namespace
}  // namespace flowmesh
