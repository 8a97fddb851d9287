// meshctl peers: the members of the mesh as this node sees them.
#include <cstdio>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/common/clock.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddPeersCommand(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("peers", "show the members of the mesh and their state");
  cmd->footer(
      "Columns: NAME ADDRESS (gossip ip:port) STATE (alive, suspect, dead, left)\n"
      "INCARNATION (raised by a member to refute suspicion) ENDPOINTS (announced)\n"
      "LAST CHANGE (when this node saw the state change).\n"
      "With --json: one array of objects with name, addr, state, incarnation, endpoints,\n"
      "generation, last_change.");
  return cmd;
}

int RunPeers(const GlobalOptions& g) {
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<std::vector<PeerView>> peers = client->Peers();
  if (!peers.ok()) return Fail(kExitFailure, peers.status().message());
  SortPeers(&*peers);
  if (g.json) {
    std::printf("%s\n", PeersJson(*peers).c_str());
    return kExitOk;
  }
  std::printf("%s\n", PeersHeader().c_str());
  int64_t now = RealtimeNs();
  for (const PeerView& p : *peers) std::printf("%s\n", PeersLine(p, now).c_str());
  return kExitOk;
}

}  // namespace flowmesh::cli
