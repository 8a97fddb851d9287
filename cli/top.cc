// meshctl top: a live table of open connections and their counters.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/common/clock.h"
#include "node/common/duration.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {
namespace {

// Rows that fit on the terminal under the title and header lines.
size_t TerminalRows() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 3) return ws.ws_row - 3;
  return 20;
}

void Print(const std::string& s) { std::fwrite(s.data(), 1, s.size(), stdout); }

}  // namespace

CLI::App* AddTopCommand(CLI::App& app, TopOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "top", "show open TCP connections with their counters, refreshed every --interval");
  cmd->footer(
      "Columns: PID COMM LADDR LPORT RADDR RPORT DIR(out/in) TX_KB RX_KB, TX_KB/s RX_KB/s\n"
      "(rates since the previous refresh; '-' on the first), SEGS_OUT SEGS_IN RETRANS RTT_US\n"
      "WORKLOAD (the process's systemd unit or container; - when neither). --unit and\n"
      "--container keep one unit's or container's connections.\n"
      "On a terminal the screen is redrawn; otherwise each refresh is printed after a title\n"
      "line. With --json: one JSON array per refresh.");
  AddFilterOptions(cmd, &o->filter);
  cmd->add_option("--interval", o->interval, "time between refreshes, e.g. 500ms, 2s")
      ->type_name("DURATION")
      ->capture_default_str();
  cmd->add_option("--sort", o->sort, "order rows by bytes (tx+rx), rx, tx, pid or rtt")
      ->type_name("KEY")
      ->check(CLI::IsMember({"bytes", "rx", "tx", "pid", "rtt"}))
      ->capture_default_str();
  cmd->add_option("-n,--rows", o->rows,
                  "show at most ROWS connections (default: all; on a "
                  "terminal, as many as fit)")
      ->type_name("ROWS")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--once", o->once, "print one snapshot and exit");
  return cmd;
}

int RunTop(const GlobalOptions& g, const TopOptions& o) {
  Result<WatchFilter> filter = BuildFilter(o.filter);
  if (!filter.ok()) return Fail(kExitUsage, filter.status().message());
  Result<std::chrono::milliseconds> interval = ParseDuration(o.interval);
  if (!interval.ok()) return Fail(kExitUsage, "--interval: " + interval.status().message());
  if (interval->count() < 100) return Fail(kExitUsage, "--interval: must be at least 100ms");
  Result<TopSort> sort = ParseTopSort(o.sort);
  if (!sort.ok()) return Fail(kExitUsage, "--sort: " + sort.status().message());

  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  const bool tty = isatty(STDOUT_FILENO) == 1;
  RateTracker tracker;
  for (bool first = true;; first = false) {
    if (!first) std::this_thread::sleep_for(*interval);
    std::vector<Workload> workloads;
    Result<std::vector<OpenConnection>> conns = client->Connections(*filter, &workloads);
    if (!conns.ok()) return Fail(kExitFailure, conns.status().message());
    std::vector<TopRow> rows = tracker.Update(std::move(conns).value(), workloads);
    // meshd filters too; a meshd of before issue 15 ignores --unit.
    std::erase_if(rows, [&](const TopRow& r) { return !filter->MatchesWorkload(r.workload); });
    SortTopRows(&rows, *sort);
    size_t total = rows.size();
    size_t limit = o.rows > 0       ? static_cast<size_t>(o.rows)
                   : tty && !g.json ? TerminalRows()
                                    : total;
    if (rows.size() > limit) rows.resize(limit);

    std::string out;
    if (g.json) {
      out = TopJson(rows) + "\n";
    } else {
      if (tty && !o.once)
        out += "\033[H\033[2J";  // home, clear: redraw in place
      else if (!first)
        out += "\n";
      out += TopTitle(rows.size(), total, *sort, RealtimeNs()) + "\n" + TopHeader() + "\n";
      for (const TopRow& r : rows) out += TopLine(r) + "\n";
    }
    Print(out);
    std::fflush(stdout);
    if (o.once) return kExitOk;
  }
}

}  // namespace flowmesh::cli
