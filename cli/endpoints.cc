// meshctl endpoints: the listening sockets on this node and who owns them.
#include <cstdio>

#include "cli/commands.h"
#include "cli/format/format.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddEndpointsCommand(CLI::App& app, EndpointsOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "endpoints", "show listening TCP endpoints and their processes: this node's, or --all");
  cmd->footer(
      "Columns: ENDPOINT (ip:port; 0.0.0.0 or :: = every address) PID PGID COMM NETNS EXE\n"
      "WORKLOAD (the owner's systemd unit or container, e.g. nginx.service; - when neither);\n"
      "with --all, NODE first: the mesh member that announced it (loopback-only listeners\n"
      "are not announced; members gossip the owner's workload, not its cgroup path).\n"
      "After the listeners, the fronts the node's NAT translates: ENDPOINT -> TARGETS, then\n"
      "'published' (a published port: the listener it reaches and its owner) or 'balancer'\n"
      "(the backends it forwarded to recently).\n"
      "With --json: one array of objects with family, addr, port, kind (listen, published,\n"
      "balancer), netns, pid, pgid, comm, exe, workload (an object, or null), since,\n"
      "targets (and node with --all).");
  cmd->add_flag("--all", o->all, "every endpoint in the mesh, with its owner node");
  return cmd;
}

int RunEndpoints(const GlobalOptions& g, const EndpointsOptions& o) {
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<std::vector<EndpointView>> all = o.all ? client->MeshEndpoints() : client->Endpoints();
  if (!all.ok()) return Fail(kExitFailure, all.status().message());
  SortEndpoints(&*all);
  if (g.json) {
    std::printf("%s\n", EndpointsJson(*all, o.all).c_str());
    return kExitOk;
  }
  std::printf("%s\n", EndpointsHeader(o.all).c_str());
  for (const EndpointView& e : *all) std::printf("%s\n", EndpointsLine(e, o.all).c_str());
  return kExitOk;
}

}  // namespace flowmesh::cli
