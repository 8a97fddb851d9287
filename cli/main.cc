// meshctl: the command-line client of meshd, over its Unix control socket.
#include <cstdio>
#include <exception>

#include "cli/commands.h"

namespace flowmesh::cli {
namespace {

int Main(int argc, char** argv) {
  CLI::App app{
      "meshctl: ask the local meshd which processes talk to which over TCP.\n"
      "Each subcommand has its own --help."};
  app.name("meshctl");
  app.set_version_flag("--version", FLOWMESH_VERSION);
  // Global flags may also follow the subcommand (meshctl status --json).
  app.fallthrough();
  app.require_subcommand(1);

  GlobalOptions global;
  app.add_option("--socket", global.socket, "meshd's control socket")
      ->envname("MESHCTL_SOCKET")
      ->type_name("PATH")
      ->capture_default_str();
  app.add_flag("--json", global.json,
               "machine-readable output: JSON, one object (or array) per line");

  WatchOptions watch;
  TopOptions top;
  FlowsOptions flows;
  LookOptions look;
  CLI::App* look_cmd = AddLookCommand(app, &look);
  MapOptions map;
  CLI::App* map_cmd = AddMapCommand(app, &map);
  CLI::App* flows_cmd = AddFlowsCommand(app, &flows);
  EndpointsOptions endpoints;
  CLI::App* endpoints_cmd = AddEndpointsCommand(app, &endpoints);
  CLI::App* peers_cmd = AddPeersCommand(app);
  KeysOptions keys;
  CLI::App* keys_cmd = AddKeysCommand(app, &keys);
  CLI::App* watch_cmd = AddWatchCommand(app, &watch);
  CLI::App* top_cmd = AddTopCommand(app, &top);
  CLI::App* status_cmd = AddStatusCommand(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // "A subcommand is required" is misleading when one was given misspelt.
    if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr && app.get_subcommands().empty() &&
        !app.remaining().empty())
      return Fail(
          kExitUsage,
          "unknown subcommand '" + app.remaining().front() +
              "' (expected look, map, flows, endpoints, peers, keys, watch, top or status)");
    // CLI11 prints the message (or the help); its codes vary, ours do not.
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  if (look_cmd->parsed()) return RunLook(global, look);
  if (map_cmd->parsed()) return RunMap(global, map);
  if (flows_cmd->parsed()) return RunFlows(global, flows);
  if (endpoints_cmd->parsed()) return RunEndpoints(global, endpoints);
  if (peers_cmd->parsed()) return RunPeers(global);
  if (keys_cmd->parsed()) return RunKeys(global, keys);
  if (watch_cmd->parsed()) return RunWatch(global, watch);
  if (top_cmd->parsed()) return RunTop(global, top);
  if (status_cmd->parsed()) return RunStatus(global);
  return Fail(kExitUsage, "no subcommand; run meshctl --help");
}

}  // namespace
}  // namespace flowmesh::cli

int main(int argc, char** argv) {
  try {
    return flowmesh::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "meshctl: internal error: %s\n", e.what());
    return flowmesh::cli::kExitFailure;
  }
}
