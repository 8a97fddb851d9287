// Flags shared by several subcommands: the connection filter, windows, durations.
#include <sys/socket.h>

#include <cstdio>

#include "cli/commands.h"
#include "node/common/clock.h"
#include "node/common/duration.h"
#include "node/common/net.h"
#include "node/look/look_query_text.h"

namespace flowmesh::cli {

void AddFilterOptions(CLI::App* cmd, FilterOptions* f) {
  cmd->add_option("-p,--pid", f->pid, "only connections of this process id")
      ->type_name("PID")
      ->check(CLI::Range(1u, 4194304u));
  cmd->add_option("-L,--lport", f->lports,
                  "only these local ports: a list with ranges, e.g. 80,443,8000-8010")
      ->type_name("PORTS");
  cmd->add_option("-D,--rport", f->rports, "only these remote ports, same syntax as -L")
      ->type_name("PORTS");
  CLI::Option* v4 = cmd->add_flag("-4,--ipv4", f->ipv4, "only IPv4");
  CLI::Option* v6 = cmd->add_flag("-6,--ipv6", f->ipv6, "only IPv6");
  v4->excludes(v6);
  cmd->add_option("--unit", f->unit,
                  "only processes of this systemd unit, e.g. nginx.service (a name without a "
                  "type means .service, as systemctl reads it)")
      ->type_name("UNIT");
  cmd->add_option("--container", f->container,
                  "only processes of this container: its name (in a pod, the container's name) "
                  "or a prefix of its id, e.g. web or 3f2a1c")
      ->type_name("NAME|ID");
}

Result<WatchFilter> BuildFilter(const FilterOptions& f) {
  WatchFilter w;
  w.pid = f.pid;
  w.family = f.ipv4 ? AF_INET : f.ipv6 ? AF_INET6 : 0;
  if (!f.lports.empty()) {
    Result<std::vector<uint16_t>> p = ParsePortList(f.lports);
    if (!p.ok()) return p.status().WithContext("-L");
    w.lports = std::move(p).value();
  }
  if (!f.rports.empty()) {
    Result<std::vector<uint16_t>> p = ParsePortList(f.rports);
    if (!p.ok()) return p.status().WithContext("-D");
    w.rports = std::move(p).value();
  }
  if (!f.unit.empty()) {
    FM_ASSIGN_OR_RETURN(w.unit, ParseUnitFilter(f.unit));
  }
  if (!f.container.empty()) {
    FM_ASSIGN_OR_RETURN(w.container, ParseContainerFilter(f.container));
  }
  return w;
}

Result<TimeWindow> BuildWindow(const std::string& since, const std::string& until) {
  return ParseWindowText("--since", since, "--until", until, RealtimeNs());
}

Result<std::chrono::milliseconds> PositiveDuration(const char* flag, const std::string& text) {
  return ParsePositiveDuration(flag, text);
}

int Fail(int code, const std::string& message) {
  std::fprintf(stderr, "meshctl: %s\n", message.c_str());
  if (code == kExitUsage) std::fprintf(stderr, "Run with --help for more information.\n");
  return code;
}

}  // namespace flowmesh::cli
