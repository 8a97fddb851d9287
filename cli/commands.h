// meshctl's subcommands: each adds its flags to the CLI11 app and runs
// against meshd's control socket. Exit codes: 0 done, 1 meshd unreachable
// or failed, 2 bad usage.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "node/common/status.h"
#include "node/control/convert.h"
#include "node/look/map_types.h"

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
  std::string unit;       // --unit
  std::string container;  // --container
};
void AddFilterOptions(CLI::App* cmd, FilterOptions* f);
// The filter, or an error naming the flag and what is wrong with its value.
Result<WatchFilter> BuildFilter(const FilterOptions& f);

// --since/--until as a window; each names itself in the error.
Result<TimeWindow> BuildWindow(const std::string& since, const std::string& until);

// Prints "meshctl: <message>" to stderr and returns `code`.
int Fail(int code, const std::string& message);
// A duration flag that must be more than 0 (e.g. --timeout 2s); the error names the flag.
Result<std::chrono::milliseconds> PositiveDuration(const char* flag, const std::string& text);

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

struct FlowsOptions {
  FilterOptions filter;
  std::string since = "1h";
  std::string until = "now";
  bool seconds = false;  // -t
  bool clock = false;    // -T
  uint64_t limit = 0;
};
CLI::App* AddFlowsCommand(CLI::App& app, FlowsOptions* o);
int RunFlows(const GlobalOptions& g, const FlowsOptions& o);

struct EndpointsOptions {
  bool all = false;  // every node's, from the mesh
};
CLI::App* AddEndpointsCommand(CLI::App& app, EndpointsOptions* o);
int RunEndpoints(const GlobalOptions& g, const EndpointsOptions& o);

struct KeysOptions {
  KeyOp op = KeyOp::kList;
  std::string key;
  std::string timeout = "20s";
};
CLI::App* AddKeysCommand(CLI::App& app, KeysOptions* o);
int RunKeys(const GlobalOptions& g, const KeysOptions& o);

CLI::App* AddPeersCommand(CLI::App& app);
int RunPeers(const GlobalOptions& g);

struct LookOptions {
  std::string target;
  int depth = 3;
  std::string direction = "both";
  std::string group_by = "workload";
  std::string since = "1h";
  std::string until = "now";
  std::string format = "tree";
  std::string hop_timeout = "2s";
  std::string timeout = "10s";
};
CLI::App* AddLookCommand(CLI::App& app, LookOptions* o);
int RunLook(const GlobalOptions& g, const LookOptions& o);

// Its flags are MapQueryText's, parsed by ParseMapQueryText as the web
// page's /api/map parameters are, so both ask the same question.
struct MapOptions {
  MapQueryText text;
  std::string format = "text";
};
CLI::App* AddMapCommand(CLI::App& app, MapOptions* o);
int RunMap(const GlobalOptions& g, const MapOptions& o);

CLI::App* AddStatusCommand(CLI::App& app);
int RunStatus(const GlobalOptions& g);

}  // namespace flowmesh::cli
