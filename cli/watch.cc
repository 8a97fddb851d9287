// meshctl watch: connection events live, as tcplife/tcpconnect print them.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/common/duration.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {
namespace {

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  // Usually piped into a script that reacts per event: never sit in a buffer.
  std::fflush(stdout);
}

}  // namespace

CLI::App* AddWatchCommand(CLI::App& app, WatchOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "watch", "show TCP connections opening and closing (and listeners) live, as they happen");
  cmd->footer(
      "Columns: TIME EV(OPEN/CLOSE/LISTEN/UNLISTEN) PID COMM IP LADDR LPORT RADDR RPORT\n"
      "TX_KB RX_KB (at close) MS (duration) DIR (out = this host connected, in = accepted)\n"
      "WORKLOAD (the process's systemd unit or container, e.g. nginx.service or\n"
      "container web (docker 3f2a1c4d5e6f); - when it runs in neither).\n"
      "--unit and --container keep the events of one unit's or container's processes.\n"
      "With --json: one object per line with ts, event, pid, comm, family, laddr, lport,\n"
      "raddr, rport, direction, tx_bytes, rx_bytes, segs_out, segs_in, retrans, rtt_us,\n"
      "rttvar_us, duration_ms, netns, source, workload ({\"kind\", \"runtime\", \"id\",\n"
      "\"name\", \"unit\", \"user_unit\", \"pod\", \"cgroup\"} or null).");
  AddFilterOptions(cmd, &o->filter);
  cmd->add_flag("--no-listen", o->no_listen, "hide LISTEN/UNLISTEN events");
  cmd->add_option("--count", o->count, "exit after printing N events")
      ->type_name("N")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--timeout", o->timeout,
                  "exit after this long, e.g. 500ms, 30s, 5m (default: until interrupted)")
      ->type_name("DURATION");
  return cmd;
}

int RunWatch(const GlobalOptions& g, const WatchOptions& o) {
  Result<WatchFilter> filter = BuildFilter(o.filter);
  if (!filter.ok()) return Fail(kExitUsage, filter.status().message());
  std::chrono::milliseconds timeout{0};
  if (!o.timeout.empty()) {
    Result<std::chrono::milliseconds> t = ParseDuration(o.timeout);
    if (!t.ok()) return Fail(kExitUsage, "--timeout: " + t.status().message());
    if (t->count() == 0)
      return Fail(kExitUsage,
                  "--timeout: must be more than 0 (leave it out to watch until interrupted)");
    timeout = *t;
  }

  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  if (!g.json) PrintLine(WatchHeader());

  uint64_t shown = 0;
  uint64_t dropped_seen = 0;
  auto on_event = [&](const ConnEvent& e, const Workload& w) {
    if (o.no_listen && (e.kind == EventKind::kListen || e.kind == EventKind::kUnlisten))
      return true;
    // meshd filters too; a meshd of before issue 15 ignores --unit.
    if (!filter->MatchesWorkload(w)) return true;
    PrintLine(g.json ? WatchJson(e, w) : WatchLine(e, w));
    return o.count == 0 || ++shown < o.count;
  };
  auto on_dropped = [&](uint64_t total) {
    std::fprintf(stderr, "meshctl: meshd dropped %llu events for this watcher (it fell behind)\n",
                 static_cast<unsigned long long>(total - dropped_seen));
    dropped_seen = total;
  };
  Status s = client->Watch(*filter, on_event, on_dropped, timeout);
  if (!s.ok()) return Fail(kExitFailure, s.message());
  return kExitOk;
}

}  // namespace flowmesh::cli
