// meshctl endpoints: the listening sockets on this node and who owns them.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "node/control/control_client.h"
#include "node/control/format.h"

namespace flowmesh::cli {

CLI::App* AddEndpointsCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "endpoints", "show this node's listening TCP endpoints and their processes");
  cmd->footer(
      "Columns: ENDPOINT (ip:port; 0.0.0.0 or :: = every address) PID PGID COMM NETNS EXE.\n"
      "With --json: one array of objects with family, addr, port, netns, pid, pgid, comm,\n"
      "exe, since.");
  return cmd;
}

int RunEndpoints(const GlobalOptions& g) {
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<std::vector<EndpointView>> all = client->Endpoints();
  if (!all.ok()) return Fail(kExitFailure, all.status().message());
  std::sort(all->begin(), all->end(), [](const EndpointView& a, const EndpointView& b) {
    return std::tie(a.endpoint.port, a.endpoint.addr, a.endpoint.netns) <
           std::tie(b.endpoint.port, b.endpoint.addr, b.endpoint.netns);
  });
  if (g.json) {
    std::printf("%s\n", EndpointsJson(*all).c_str());
    return kExitOk;
  }
  std::printf("%s\n", EndpointsHeader().c_str());
  for (const EndpointView& e : *all) std::printf("%s\n", EndpointsLine(e).c_str());
  return kExitOk;
}

}  // namespace flowmesh::cli
