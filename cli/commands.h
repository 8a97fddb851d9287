// meshctl's subcommands: each adds its flags to the CLI11 app and runs
// against meshd's control socket. Exit codes: 0 done, 1 meshd unreachable
// or failed, 2 bad usage.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "node/common/status.h"
#include "node/control/convert.h"

namespace flowmesh::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string socket = "/run/flowmesh/meshd.sock";
  bool json = false;
};

// -p, -L, -D, -4, -6: shared by watch and top.
struct FilterOptions {
  uint32_t pid = 0;
  std::string lports;
  std::string rports;
  bool ipv4 = false;
  bool ipv6 = false;
};
void AddFilterOptions(CLI::App* cmd, FilterOptions* f);
// The filter, or an error naming the flag and what is wrong with its value.
Result<WatchFilter> BuildFilter(const FilterOptions& f);

// Prints "meshctl: <message>" to stderr and returns `code`.
int Fail(int code, const std::string& message);

struct WatchOptions {
  FilterOptions filter;
  bool no_listen = false;
  uint64_t count = 0;
  std::string timeout;
};
CLI::App* AddWatchCommand(CLI::App& app, WatchOptions* o);
int RunWatch(const GlobalOptions& g, const WatchOptions& o);

struct TopOptions {
  FilterOptions filter;
  std::string interval = "1s";
  std::string sort = "bytes";
  int rows = 0;
  bool once = false;
};
CLI::App* AddTopCommand(CLI::App& app, TopOptions* o);
int RunTop(const GlobalOptions& g, const TopOptions& o);

CLI::App* AddStatusCommand(CLI::App& app);
int RunStatus(const GlobalOptions& g);

}  // namespace flowmesh::cli
