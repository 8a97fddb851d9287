// meshd's entry point: parse flags, start, serve, exit with a meaningful code.
#include <cstdio>

#include "node/common/log.h"
#include "node/daemon/config.h"
#include "node/daemon/daemon.h"

int main(int argc, char** argv) {
  using namespace flowmesh;
  int exit_code = 0;
  std::optional<DaemonConfig> config = ParseDaemonArgs(argc, argv, &exit_code);
  if (!config) return exit_code;
  // Before anything logs, so every line of this run has the chosen shape.
  if (auto level = log::ParseLevel(config->log_level)) log::SetLevel(*level);
  log::Format format = log::ParseFormat(config->log_format).value_or(log::Format::kText);
  log::SetFormat(format);

  Daemon daemon(std::move(*config));
  if (Status s = daemon.Init(); !s.ok()) {
    if (format == log::Format::kJson)
      log::Write(log::Level::Error, "meshd", s.message());
    else
      std::fprintf(stderr, "meshd: %s\n", s.message().c_str());
    return 1;
  }
  return daemon.Run();
}
