// meshctl status: how this node's meshd is doing.
#include <cstdio>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/common/clock.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddStatusCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "status", "show meshd's probe mode and why, events seen and lost, connections, uptime");
  cmd->footer(
      "With --json: one object with node, version, pid, started, uptime_s, probe_mode,\n"
      "probe_reason, netns, events, lost, malformed, polls, open_connections, listeners,\n"
      "opens, closes, watchers, first_event_after_ms, detail {name: count} and bpf_maps\n"
      "(null when polling; else memlock_bytes, the kernel memory of all of them, and maps\n"
      "[{name, memlock_bytes, max_entries}]).");
  return cmd;
}

int RunStatus(const GlobalOptions& g) {
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<NodeStatus> st = client->Status();
  if (!st.ok()) return Fail(kExitFailure, st.status().message());
  int64_t now = RealtimeNs();
  std::string out = g.json ? StatusJson(*st, now) + "\n" : StatusText(*st, now);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace flowmesh::cli
