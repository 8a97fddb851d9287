// meshd's entry point: parse flags, start, serve, exit with a meaningful code.
#include <cstdio>

#include "node/daemon/config.h"
#include "node/daemon/daemon.h"

int main(int argc, char** argv) {
  int exit_code = 0;
  std::optional<flowmesh::DaemonConfig> config = flowmesh::ParseDaemonArgs(argc, argv, &exit_code);
  if (!config) return exit_code;

  flowmesh::Daemon daemon(std::move(*config));
  if (flowmesh::Status s = daemon.Init(); !s.ok()) {
    std::fprintf(stderr, "meshd: %s\n", s.message().c_str());
    return 1;
  }
  return daemon.Run();
}
