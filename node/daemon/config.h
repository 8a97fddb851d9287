// meshd's flags (each also MESHD_<NAME> in the environment and a key in the config file) and
// their checks.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/probe/probe.h"

namespace flowmesh {

enum class ProbeMode { kAuto, kStreaming, kPolling };

struct DaemonConfig {
  std::string node_name;  // default: the host name
  std::string control_socket = "/run/flowmesh/meshd.sock";
  ProbeMode probe_mode = ProbeMode::kAuto;
  std::chrono::milliseconds probe_interval{1000};
  std::string netns = "all";  // "all", or a comma list of self, inodes and namespace file paths
  std::vector<uint16_t> ports;
  uint16_t family = 0;  // AF_INET, AF_INET6, 0 = both
  std::string proc_root = "/proc";
  // Workloads (units, containers, pods): where the cgroup v2 hierarchy is
  // mounted ("auto" = found at start, "off" = no workloads), and the root
  // the runtimes' files (/var/lib/docker, ...) are read under.
  std::string cgroup_root = "auto";
  std::string runtime_root = "/";
  std::string bpf_attach = "auto";  // auto, tp_btf, raw_tp
  uint32_t ring_buffer_bytes = 8 << 20;
  // Capacity of the kernel's socket and listener tables (BpfProbeOptions).
  uint32_t max_connections = 131072;
  uint32_t max_listeners = 16384;
  // Streaming mode: how often the open-connection table is checked against
  // sock_diag for closes the probe missed; 0 = never.
  std::chrono::milliseconds reconcile_interval{30'000};
  // Streaming mode: how often open connections' counters are read (0 = never).
  std::chrono::milliseconds account_interval{30'000};
  // Longest a query waits for the probe to drain what came before it (0 = no wait).
  std::chrono::milliseconds look_drain_timeout{1000};
  // NAT translations from the kernel's connection tracking: "auto" (read it
  // when the kernel lets us) or "off".
  std::string conntrack = "auto";
  // Per-connection records in the store ("on"), or flows only ("off").
  bool records = true;
  std::string log_level = "info";
  std::string log_format = "text";  // text, json
  // History (RocksDB).
  std::string data_dir = "/var/lib/flowmesh";
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};
  uint64_t retention_bytes = 2ULL << 30;  // 0 = no size limit
  // Mesh. On when a key file is given, or --insecure.
  std::string bind = "0.0.0.0:7946";
  std::string advertise;  // "" = the bind address, or the host's first address
  std::vector<std::string> join;
  std::string cluster_key_file;
  std::string cluster_label = "flowmesh";
  bool insecure = false;
  // Prometheus metrics over HTTP; "" = not served.
  std::string metrics_listen;
  // The web page and its JSON API (docs/api.md); "" = not served. Anywhere
  // but loopback it needs the token file.
  std::string ui_listen;
  std::string ui_token_file;
  bool mesh_enabled() const { return !cluster_key_file.empty() || insecure; }
};

// "2G", "500M", "64KiB", "1048576" (bytes); K/M/G/T are powers of 1024.
Result<uint64_t> ParseByteSize(std::string_view text);

// --max-connections and --max-listeners: a whole number of table entries
// within [min, max]; the message says which range and gives an example.
Result<uint32_t> ParseTableSize(std::string_view text, uint32_t min, uint32_t max);

inline constexpr const char* kDefaultConfigPath = "/etc/flowmesh/meshd.toml";

// Parses argv, then fills what it left unset from MESHD_* variables, then from the config file
// (--config). On --help, --print-config or a bad value it has already printed what to print;
// the caller exits with *exit_code (0 for help and --print-config, 2 for a usage error).
std::optional<DaemonConfig> ParseDaemonArgs(int argc, char** argv, int* exit_code);

// --netns: "all", or a comma list of self, inode numbers and namespace file
// paths, at most FM_MAX_NETNS_FILTER. CheckNetnsList checks the spelling;
// ResolveNetns opens the paths and returns the namespaces, distinct inodes in
// the order given (empty = all). Errors name the flag and the fix.
Status CheckNetnsList(const std::string& spec);
Result<std::vector<NetnsRef>> ResolveNetns(const std::string& spec, const std::string& proc_root);
std::vector<std::string> SplitNetnsList(const std::string& spec);

std::string_view ProbeModeName(ProbeMode m);

}  // namespace flowmesh
