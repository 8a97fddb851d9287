// meshctl endpoints: the listening sockets on this node and who owns them.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddEndpointsCommand(CLI::App& app, EndpointsOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "endpoints", "show listening TCP endpoints and their processes: this node's, or --all");
  cmd->footer(
      "Columns: ENDPOINT (ip:port; 0.0.0.0 or :: = every address) PID PGID COMM NETNS EXE;\n"
      "with --all, NODE first: the mesh member that announced it (loopback-only listeners\n"
      "are not announced).\n"
      "With --json: one array of objects with family, addr, port, netns, pid, pgid, comm,\n"
      "exe, since (and node with --all).");
  cmd->add_flag("--all", o->all, "every endpoint in the mesh, with its owner node");
  return cmd;
}

int RunEndpoints(const GlobalOptions& g, const EndpointsOptions& o) {
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<std::vector<EndpointView>> all = o.all ? client->MeshEndpoints() : client->Endpoints();
  if (!all.ok()) return Fail(kExitFailure, all.status().message());
  std::sort(all->begin(), all->end(), [](const EndpointView& a, const EndpointView& b) {
    return std::tie(a.node, a.endpoint.port, a.endpoint.addr, a.endpoint.netns) <
           std::tie(b.node, b.endpoint.port, b.endpoint.addr, b.endpoint.netns);
  });
  if (g.json) {
    std::printf("%s\n", EndpointsJson(*all, o.all).c_str());
    return kExitOk;
  }
  std::printf("%s\n", EndpointsHeader(o.all).c_str());
  for (const EndpointView& e : *all) std::printf("%s\n", EndpointsLine(e, o.all).c_str());
  return kExitOk;
}

}  // namespace flowmesh::cli
