// End to end as an operator runs it: the real meshd binary traces real
// connections and the real meshctl shows them.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"
#include "tests/test_paths.h"

namespace flowmesh::testing {
namespace {

// Matches a watch line by event and 4-tuple ports.
auto Event(const std::string& kind, uint16_t lport, uint16_t rport) {
  return [=](const JsonLine& l) {
    auto get = [&](const char* k) {
      auto it = l.find(k);
      return it == l.end() ? std::string() : it->second;
    };
    return get("event") == kind && get("lport") == std::to_string(lport) &&
           get("rport") == std::to_string(rport);
  };
}

std::string At(const JsonLine& l, const std::string& key) {
  auto it = l.find(key);
  return it == l.end() ? "<missing " + key + ">" : it->second;
}

void ExpectConnection(Watcher& w, const TrafficSpec& spec, const TrafficResult& t,
                      const std::string& want_source_of_open) {
  const std::string lo = spec.family == AF_INET ? "127.0.0.1" : "::1";
  JsonLine a_open, p_open, a_close, p_close;
  ASSERT_TRUE(w.WaitFor(Event("open", t.client_port, t.server_port), &a_open));
  ASSERT_TRUE(w.WaitFor(Event("open", t.server_port, t.client_port), &p_open));
  ASSERT_TRUE(w.WaitFor(Event("close", t.client_port, t.server_port), &a_close));
  ASSERT_TRUE(w.WaitFor(Event("close", t.server_port, t.client_port), &p_close));

  for (JsonLine* l : {&a_open, &p_open, &a_close, &p_close}) {
    EXPECT_EQ(At(*l, "laddr"), lo);
    EXPECT_EQ(At(*l, "raddr"), lo);
    EXPECT_EQ(At(*l, "family"), spec.family == AF_INET ? "ipv4" : "ipv6");
  }
  EXPECT_EQ(At(a_open, "source"), want_source_of_open);
  EXPECT_EQ(At(a_open, "pid"), std::to_string(t.client_pid));
  EXPECT_EQ(At(a_open, "comm"), spec.client_comm);
  EXPECT_EQ(At(a_open, "direction"), "active");
  EXPECT_EQ(At(p_open, "pid"), std::to_string(t.server_pid));
  EXPECT_EQ(At(p_open, "comm"), spec.server_comm);
  EXPECT_EQ(At(p_open, "direction"), "passive");

  EXPECT_EQ(At(a_close, "pid"), std::to_string(t.client_pid));
  EXPECT_EQ(At(a_close, "comm"), spec.client_comm);
  EXPECT_EQ(At(a_close, "direction"), "active");
  EXPECT_EQ(At(a_close, "tx_bytes"), std::to_string(spec.client_sends));
  EXPECT_EQ(At(a_close, "rx_bytes"), std::to_string(spec.server_sends));
  EXPECT_EQ(At(p_close, "pid"), std::to_string(t.server_pid));
  EXPECT_EQ(At(p_close, "comm"), spec.server_comm);
  EXPECT_EQ(At(p_close, "direction"), "passive");
  EXPECT_EQ(At(p_close, "tx_bytes"), std::to_string(spec.server_sends));
  EXPECT_EQ(At(p_close, "rx_bytes"), std::to_string(spec.client_sends));
  EXPECT_GT(std::stod(At(a_close, "duration_ms")), 0.0);
  EXPECT_GT(std::stod(At(p_close, "duration_ms")), 0.0);
}

// One connection between fm-ns-client and fm-ns-server, run in a child's own
// network namespace.
int OtherNamespaceTraffic() {
  TrafficSpec spec;
  spec.client_comm = "fm-ns-client";
  spec.server_comm = "fm-ns-server";
  return RunTraffic(spec).ok ? 0 : 1;
}

class MeshdStreaming : public ::testing::TestWithParam<int> {};

TEST_P(MeshdStreaming, WatchShowsBothProcessesAndExactBytes) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--netns", "self"}, &err)) << err;
  Watcher w(meshd);

  TrafficSpec spec;
  spec.family = GetParam();
  TrafficResult t = RunTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;
  ExpectConnection(w, spec, t, "kernel");

  CommandResult st = meshd.Meshctl({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  JsonLine s;
  ASSERT_TRUE(ParseFlatJson(st.out, &s)) << st.out;
  EXPECT_EQ(s["probe_mode"], "streaming");
  EXPECT_EQ(s["lost"], "0");
  EXPECT_NE(s["events"], "0");
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

INSTANTIATE_TEST_SUITE_P(Families, MeshdStreaming, ::testing::Values(AF_INET, AF_INET6),
                         [](const auto& i) { return i.param == AF_INET ? "IPv4" : "IPv6"; });

TEST(Meshd, RawTracepointFallbackTracesTheSame) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--bpf-attach", "raw_tp"}, &err)) << err;
  Watcher w(meshd);
  TrafficSpec spec;
  TrafficResult t = RunTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;
  ExpectConnection(w, spec, t, "kernel");
  CommandResult st = meshd.Meshctl({"status"});
  EXPECT_NE(st.out.find("raw_tp"), std::string::npos) << st.out;
}

TEST(Meshd, PollingModeSeesLongLivedConnections) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "polling", "--probe-interval", "100ms"}, &err)) << err;
  Watcher w(meshd);
  // The watch must be subscribed before the traffic, or a loaded machine
  // lets the poll's open go by before meshctl watch is listening.
  bool subscribed = false;
  for (int i = 0; i < 100 && !subscribed; i++) {
    JsonLine s;
    subscribed = ParseFlatJson(meshd.Meshctl({"status", "--json"}).out, &s) && s["watchers"] == "1";
    if (!subscribed) usleep(50'000);
  }
  ASSERT_TRUE(subscribed) << "meshctl watch did not subscribe within 5 s";

  TrafficSpec spec;
  spec.hold_ms = 600;  // several poll intervals
  TrafficResult t = StartHeldTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;
  // Long-lived means it lives until a poll has seen it, however slow the
  // machine: both ends open before the client is let go.
  EXPECT_TRUE(w.WaitFor(Event("open", t.server_port, t.client_port), nullptr));
  ASSERT_TRUE(FinishTraffic(t));
  ExpectConnection(w, spec, t, "poll");

  CommandResult st = meshd.Meshctl({"status", "--json"});
  JsonLine s;
  ASSERT_TRUE(ParseFlatJson(st.out, &s)) << st.out;
  EXPECT_EQ(s["probe_mode"], "polling");
}

TEST(Meshd, ConnectionsOpenedBeforeStartAppearWithTheirProcesses) {
  FM_REQUIRE_ROOT();
  TrafficSpec spec;
  spec.client_comm = "fm-early-cli";
  spec.server_comm = "fm-early-srv";
  TrafficResult t = StartHeldTraffic(spec);
  ASSERT_TRUE(t.ok) << t.error;

  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming"}, &err)) << err;

  // `top --once --json` lists it with both processes and live counters.
  CommandResult top =
      meshd.Meshctl({"top", "--once", "--json", "-L", std::to_string(t.client_port)});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("\"comm\":\"fm-early-cli\""), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("\"tx_bytes\":" + std::to_string(spec.client_sends)), std::string::npos)
      << top.out;
  CommandResult top_srv =
      meshd.Meshctl({"top", "--once", "--json", "-L", std::to_string(t.server_port)});
  EXPECT_NE(top_srv.out.find("\"comm\":\"fm-early-srv\""), std::string::npos) << top_srv.out;

  // Its close, traced by BPF, keeps the processes learned at start-up.
  Watcher w(meshd);
  ASSERT_TRUE(FinishTraffic(t));
  JsonLine a_close, p_close;
  ASSERT_TRUE(w.WaitFor(Event("close", t.client_port, t.server_port), &a_close));
  ASSERT_TRUE(w.WaitFor(Event("close", t.server_port, t.client_port), &p_close));
  EXPECT_EQ(At(a_close, "pid"), std::to_string(t.client_pid));
  EXPECT_EQ(At(a_close, "comm"), "fm-early-cli");
  EXPECT_EQ(At(a_close, "direction"), "active");
  EXPECT_EQ(At(a_close, "tx_bytes"), std::to_string(spec.client_sends));
  EXPECT_EQ(At(p_close, "pid"), std::to_string(t.server_pid));
  EXPECT_EQ(At(p_close, "comm"), "fm-early-srv");
  EXPECT_EQ(At(p_close, "direction"), "passive");
  EXPECT_EQ(At(p_close, "rx_bytes"), std::to_string(spec.client_sends));
}

TEST(Meshd, NetnsSelfExcludesOtherNamespaces) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--netns", "self"}, &err)) << err;
  Watcher w(meshd);

  // Traffic in a namespace of its own, with names we can look for.
  int rc = RunInNewNetns("fm-other-ns", OtherNamespaceTraffic);
  ASSERT_EQ(rc, 0);
  // Then traffic here, as a marker that everything before it was processed.
  TrafficSpec here;
  TrafficResult t = RunTraffic(here);
  ASSERT_TRUE(t.ok) << t.error;
  ASSERT_TRUE(w.WaitFor(Event("close", t.server_port, t.client_port), nullptr));
  for (const JsonLine& l : w.Lines()) {
    EXPECT_NE(At(l, "comm"), "fm-ns-client");
    EXPECT_NE(At(l, "comm"), "fm-ns-server");
  }
}

TEST(Meshd, NetnsAllIncludesOtherNamespaces) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--netns", "all"}, &err)) << err;
  Watcher w(meshd);
  int rc = RunInNewNetns("fm-other-ns", OtherNamespaceTraffic);
  ASSERT_EQ(rc, 0);
  EXPECT_TRUE(w.WaitFor(
      [](const JsonLine& l) {
        auto c = l.find("comm");
        auto e = l.find("event");
        return c != l.end() && c->second == "fm-ns-client" && e->second == "close";
      },
      nullptr));
}

TEST(Meshd, WithoutBpfPermissionStreamingFailsNamingTheFixAndAutoFallsBack) {
  FM_REQUIRE_ROOT();
  struct passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  char tmpl[] = "/tmp/fm-noperm-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  chmod(dir.c_str(), 0777);

  // Its own data directory: nobody cannot write the default one.
  CommandResult r = RunCommand({MESHD_BIN, "--probe-mode", "streaming", "--control-socket",
                                dir + "/a.sock", "--data-dir", dir + "/a-data"},
                               std::chrono::seconds(10), nobody->pw_uid);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("CAP_BPF"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--probe-mode polling"), std::string::npos) << r.err;

  // auto: one clear line naming the reason, then polling serves. Run it
  // briefly (the timeout kills it) and check what it said.
  CommandResult a = RunCommand({MESHD_BIN, "--probe-mode", "auto", "--netns", "self",
                                "--control-socket", dir + "/b.sock", "--data-dir", dir + "/b-data"},
                               std::chrono::milliseconds(1500), nobody->pw_uid);
  EXPECT_NE(a.err.find("falling back to polling"), std::string::npos) << a.err;
  EXPECT_NE(a.err.find("ready: polling probe"), std::string::npos) << a.err;
  std::string cleanup = "rm -rf " + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

TEST(Meshd, JsonLogsAreOneObjectPerLineFromStartToStop) {
  FM_REQUIRE_ROOT();
  MeshdProcess meshd;
  std::string error;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--log-format", "json"}, &error)) << error;
  TrafficResult t = RunTraffic(TrafficSpec{});  // something for the debug lines to say
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_EQ(meshd.Stop(), 0);
  std::string log = meshd.Log();
  ASSERT_NE(log.find("ready: streaming probe"), std::string::npos) << log;
  // Every line, start-up, debug and shutdown ones included, is a JSON object
  // with the four fields, as a log shipper's parser sees it.
  std::string path = meshd.data_dir() + "/../json-check.log";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fwrite(log.data(), 1, log.size(), f);
  fclose(f);
  CommandResult check = RunCommand({"/usr/bin/python3", "-c",
                                    "import json,sys\n"
                                    "n=0\n"
                                    "for line in open(sys.argv[1]):\n"
                                    "  o=json.loads(line); n+=1\n"
                                    "  assert set(o)=={'ts','level','component','msg'}, o\n"
                                    "  assert o['level'] in ('debug','info','warn','error'), o\n"
                                    "print(n)\n",
                                    path});
  EXPECT_EQ(check.exit_code, 0) << check.err << log;
  EXPECT_GT(std::stoi(check.out.empty() ? "0" : check.out), 3) << log;
}

// meshd under its systemd unit runs as a plain user with a few capabilities;
// each one taken away is named, with what it costs.
TEST(Meshd, WithoutRootNamesEachMissingCapability) {
  FM_REQUIRE_ROOT();
  char tmpl[] = "/tmp/fm-caps-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  chmod(dir.c_str(), 0777);
  auto as_nobody_with = [&](const std::string& caps, const std::string& name,
                            std::vector<std::string> flags, std::chrono::milliseconds run) {
    std::vector<std::string> argv = {"/usr/bin/setpriv",
                                     "--reuid=nobody",
                                     "--regid=nogroup",
                                     "--clear-groups",
                                     "--no-new-privs",
                                     "--inh-caps=-all" + caps,
                                     "--ambient-caps=-all" + caps,
                                     "--bounding-set=-all" + caps,
                                     "--",
                                     MESHD_BIN,
                                     "--control-socket",
                                     dir + "/" + name + ".sock",
                                     "--data-dir",
                                     dir + "/" + name};
    argv.insert(argv.end(), flags.begin(), flags.end());
    return RunCommand(argv, run);
  };
  // The unit's set: the eBPF probe runs, and nothing is reported missing.
  CommandResult full = as_nobody_with(",+bpf,+perfmon,+sys_ptrace,+dac_read_search", "full",
                                      {"--probe-mode", "streaming"}, std::chrono::seconds(3));
  EXPECT_NE(full.err.find("ready: streaming probe"), std::string::npos) << full.err;
  EXPECT_EQ(full.err.find("missing CAP_"), std::string::npos) << full.err;
  // Without CAP_PERFMON the programs cannot load: the error names it alone.
  CommandResult no_perfmon = as_nobody_with(",+bpf,+sys_ptrace,+dac_read_search", "noperf",
                                            {"--probe-mode", "streaming"}, std::chrono::seconds(5));
  EXPECT_EQ(no_perfmon.exit_code, 1) << no_perfmon.err;
  EXPECT_NE(no_perfmon.err.find("missing CAP_PERFMON;"), std::string::npos) << no_perfmon.err;
  // Without the /proc ones the probe runs, and says what is lost.
  CommandResult no_proc = as_nobody_with(",+bpf,+perfmon", "noproc", {"--probe-mode", "streaming"},
                                         std::chrono::seconds(3));
  EXPECT_NE(no_proc.err.find("ready: streaming probe"), std::string::npos) << no_proc.err;
  EXPECT_NE(no_proc.err.find("missing CAP_SYS_PTRACE: other users' processes"), std::string::npos)
      << no_proc.err;
  EXPECT_NE(no_proc.err.find("missing CAP_DAC_READ_SEARCH"), std::string::npos) << no_proc.err;
  EXPECT_NE(no_proc.err.find("AmbientCapabilities=CAP_SYS_PTRACE"), std::string::npos);
  // Polling every namespace needs setns.
  CommandResult polling = as_nobody_with(",+bpf,+perfmon,+sys_ptrace,+dac_read_search", "poll",
                                         {"--probe-mode", "polling"}, std::chrono::seconds(2));
  EXPECT_NE(polling.err.find("missing CAP_SYS_ADMIN: polling cannot enter"), std::string::npos)
      << polling.err;
  std::string cleanup = "rm -rf " + dir;
  EXPECT_EQ(system(cleanup.c_str()), 0);
}

TEST(Meshd, BadFlagsExitTwoNamingTheFlag) {
  CommandResult r = RunCommand({MESHD_BIN, "--probe-mode", "fast"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--probe-mode"), std::string::npos) << r.err;
  r = RunCommand({MESHD_BIN, "--probe-interval", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--probe-interval"), std::string::npos) << r.err;
  r = RunCommand({MESHD_BIN, "--ports", "80,http"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--ports"), std::string::npos) << r.err;
  r = RunCommand({MESHD_BIN, "--netns", "mine"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--netns"), std::string::npos) << r.err;
  r = RunCommand({MESHD_BIN, "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--probe-mode"), std::string::npos);
}

// No root needed: a bad config file stops meshd before anything starts, and --print-config
// prints and exits.
TEST(Meshd, ConfigFileErrorsExitTwoNamingFileAndLine) {
  char dir[] = "/tmp/meshd-config-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/meshd.toml";
  {
    std::ofstream f(path);
    f << "# test\nretention = \"12h\"\nretention = \"1d\"\n";
  }
  CommandResult r = RunCommand({MESHD_BIN, "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(path + ":3: 'retention' is set twice"), std::string::npos) << r.err;
  {
    std::ofstream f(path);
    f << "# test\nretention = \"12h\"\n";
  }
  r = RunCommand({MESHD_BIN, "--config", path, "--print-config"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("retention = \"12h\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# " + path + ":2"), std::string::npos) << r.out;
  unlink(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace flowmesh::testing
