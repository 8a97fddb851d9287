// meshctl flows: closed connections from meshd's store, as tcplife prints them.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddFlowsCommand(CLI::App& app, FlowsOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "flows", "show closed TCP connections from this node's history, oldest first");
  cmd->footer(
      "Columns: PID COMM LADDR LPORT RADDR RPORT DIR (out = this host connected, in =\n"
      "accepted) TX_KB RX_KB (payload) MS (duration) RETRANS RTT_US (smoothed RTT at close)\n"
      "WORKLOAD (the process's systemd unit or container, e.g. nginx.service or\n"
      "container web (docker 3f2a1c4d5e6f); - when it runs in neither or is not known).\n"
      "--unit nginx.service keeps the records of that unit's processes, across restarts;\n"
      "--container web those of a container named web (in a pod, a container of that name)\n"
      "or whose id starts with what is given. Both may be given, and with the other filters.\n"
      "--since/--until take a duration before now (15m, 2h, 7d), an RFC 3339 time\n"
      "(2026-11-22T10:00:00Z) or 'now'.\n"
      "A line ending in [reconstructed] is a close the probe missed (events lost in the\n"
      "kernel), made up when sock_diag no longer showed the connection: its time is when it\n"
      "was found gone, its bytes are as last seen and MS is an upper bound.\n"
      "With --json: one object per line with ts, pid, comm, family, laddr, lport, raddr,\n"
      "rport, direction, tx_bytes, rx_bytes, segs_out, segs_in, retrans, rtt_us, rttvar_us,\n"
      "duration_ms, netns, reconstructed, workload ({\"kind\", \"runtime\", \"id\", \"name\",\n"
      "\"unit\", \"user_unit\", \"pod\", \"cgroup\"} or null).");
  AddFilterOptions(cmd, &o->filter);
  CLI::Option* t = cmd->add_flag("-t,--timestamp", o->seconds,
                                 "first column: seconds since the first record shown");
  CLI::Option* T = cmd->add_flag("-T,--time", o->clock, "first column: time of day (HH:MM:SS)");
  t->excludes(T);
  cmd->add_option("--since", o->since, "start of the window")
      ->type_name("WHEN")
      ->capture_default_str();
  cmd->add_option("--until", o->until, "end of the window")
      ->type_name("WHEN")
      ->capture_default_str();
  cmd->add_option("--limit", o->limit, "print at most N records (default: all in the window)")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  return cmd;
}

int RunFlows(const GlobalOptions& g, const FlowsOptions& o) {
  Result<WatchFilter> filter = BuildFilter(o.filter);
  if (!filter.ok()) return Fail(kExitUsage, filter.status().message());
  Result<TimeWindow> window = BuildWindow(o.since, o.until);
  if (!window.ok()) return Fail(kExitUsage, window.status().message());

  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  const char time_column = o.seconds ? 's' : o.clock ? 'T' : 0;
  if (!g.json) std::printf("%s\n", FlowsHeader(time_column).c_str());
  int64_t first_ts = 0;
  bool truncated = false;
  Status s = client->Flows(
      *filter, *window, o.limit,
      [&](const ConnRecord& r, const Workload& w) {
        // meshd filters too; a meshd of before issue 15 ignores --unit.
        if (!filter->MatchesWorkload(w)) return true;
        if (first_ts == 0) first_ts = r.ts_ns;
        std::string line = g.json ? FlowsJson(r, w) : FlowsLine(r, time_column, first_ts, w);
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fputc('\n', stdout);
        return true;
      },
      &truncated);
  std::fflush(stdout);
  if (!s.ok()) return Fail(kExitFailure, s.message());
  if (truncated)
    std::fprintf(stderr, "meshctl: stopped at --limit %llu; more records are in the window\n",
                 static_cast<unsigned long long>(o.limit));
  return kExitOk;
}

}  // namespace flowmesh::cli
