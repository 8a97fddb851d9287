// Flag definitions for meshd (CLI11), with MESHD_* environment and config file fallbacks.
#include "node/daemon/config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <climits>

#include "node/common/duration.h"
#include "node/common/log.h"
#include "node/common/net.h"
#include "node/daemon/config_layers.h"
#include "node/mesh/keyring.h"
#include "node/mesh/wire.h"
#include "node/probe/netns.h"
#include "node/store/store.h"
#include "node/ui/auth.h"

namespace flowmesh {
namespace {

std::string HostName() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// "/etc/flowmesh/meshd.toml (flag --config)", for the header of --print-config.
std::string DescribeConfigFile(const std::string& path, const ConfigLayers& layers, bool found) {
  if (path.empty()) return "none (--config \"\")";
  std::string from;
  switch (layers.OriginOf("--config").kind) {
    case ConfigLayers::Origin::Kind::kFlag: from = "flag --config"; break;
    case ConfigLayers::Origin::Kind::kEnv: from = "env MESHD_CONFIG"; break;
    default: from = "default"; break;
  }
  return path + " (" + from + (found ? ")" : "; not found, so nothing from it)");
}

// PATH_MAX less room for RocksDB's file names (000123.sst, LOG.old.1700000000000000).
constexpr size_t kMaxDataDirBytes = PATH_MAX - 256;

// What the mesh, the control socket and the keyring will refuse later, refused now: a value
// that parses but cannot work would otherwise start a meshd that never joins (its messages
// dropped by every peer) or fails after it has started.
Status CheckLimits(const DaemonConfig& cfg, const ConfigLayers& layers) {
  auto at = [&](std::string_view flag) { return layers.Where(flag); };
  if (cfg.node_name.size() > mesh::kMaxNameBytes)
    return InvalidArgument(at("--node-name") + "is " + std::to_string(cfg.node_name.size()) +
                           " bytes; the mesh carries at most " +
                           std::to_string(mesh::kMaxNameBytes) + "; choose a shorter name");
  // Names are printed in logs, tables and metric labels: a newline or an escape
  // sequence in one would forge lines or repaint a terminal.
  for (unsigned char c : cfg.node_name)
    if (c < 0x20 || c == 0x7f)
      return InvalidArgument(at("--node-name") +
                             "holds a control character; use letters, digits, '-', '.' or '_'");
  // The store keeps its files under --data-dir; leave room for their names.
  if (cfg.data_dir.size() > kMaxDataDirBytes)
    return InvalidArgument(at("--data-dir") + "is " + std::to_string(cfg.data_dir.size()) +
                           " bytes; the store needs paths under " +
                           std::to_string(kMaxDataDirBytes) + " bytes");
  // Peers learn this node as "ip:port"; an IPv6 address with a port is at most 47 bytes, so
  // this holds for anything that parsed, and stays true if the wire limit ever shrinks.
  if (Result<Endpoint> b = Endpoint::Parse(cfg.bind); b.ok()) {
    std::string advertised = cfg.advertise.empty()
                                 ? b->ToString()
                                 : Endpoint{*IpAddr::Parse(cfg.advertise), b->port}.ToString();
    if (advertised.size() > mesh::kMaxAddressBytes)
      return InvalidArgument(at(cfg.advertise.empty() ? "--bind" : "--advertise") + "'" +
                             advertised + "' is " + std::to_string(advertised.size()) +
                             " bytes; the mesh carries addresses of at most " +
                             std::to_string(mesh::kMaxAddressBytes));
  }
  struct stat proc {};
  if (stat(cfg.proc_root.c_str(), &proc) != 0 || !S_ISDIR(proc.st_mode))
    return InvalidArgument(at("--proc-root") + "'" + cfg.proc_root +
                           "' is not a directory; give where procfs is mounted (/proc)");
  if (cfg.cgroup_root != "auto" && cfg.cgroup_root != "off") {
    struct stat cg {};
    if (cfg.cgroup_root.empty() || cfg.cgroup_root.front() != '/' ||
        stat((cfg.cgroup_root + "/cgroup.procs").c_str(), &cg) != 0)
      return InvalidArgument(at("--cgroup-root") + "'" + cfg.cgroup_root +
                             "' is not a cgroup v2 mount (no cgroup.procs there); give where "
                             "cgroup2 is mounted (/sys/fs/cgroup or /sys/fs/cgroup/unified), "
                             "auto, or off");
  }
  struct stat runtime {};
  if (cfg.runtime_root.empty() || cfg.runtime_root.front() != '/' ||
      stat(cfg.runtime_root.c_str(), &runtime) != 0 || !S_ISDIR(runtime.st_mode))
    return InvalidArgument(at("--runtime-root") + "'" + cfg.runtime_root +
                           "' is not a directory; give the absolute root the container "
                           "runtimes' files are under (/ on a host)");
  if (cfg.control_socket.empty())
    return InvalidArgument(at("--control-socket") + "must not be empty");
  if (cfg.control_socket.size() >= sizeof(sockaddr_un::sun_path))
    return InvalidArgument(
        at("--control-socket") + "'" + cfg.control_socket + "' is " +
        std::to_string(cfg.control_socket.size()) + " bytes; a Unix socket path holds at most " +
        std::to_string(sizeof(sockaddr_un::sun_path) - 1) + "; choose a shorter path");
  // The keyring is read again when the mesh starts; reading it here refuses a missing,
  // unreadable, world-readable or malformed key file before anything has started (and
  // --print-config refuses it the same way).
  if (!cfg.cluster_key_file.empty()) {
    Result<mesh::Keyring> ring = mesh::LoadKeyringFile(cfg.cluster_key_file);
    if (!ring.ok()) return InvalidArgument(at("--cluster-key-file") + ring.status().message());
  }
  // The same for the page's token: refused before anything has started.
  if (!cfg.ui_token_file.empty()) {
    Result<std::string> token = ui::LoadTokenFile(cfg.ui_token_file);
    if (!token.ok()) return InvalidArgument(at("--ui-token-file") + token.status().message());
  }
  return Status::Ok();
}

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view text) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data())
    return InvalidArgument("'" + std::string(text) + "' is not a size; use e.g. 500M or 2G");
  std::string_view unit(ptr, static_cast<size_t>(text.data() + text.size() - ptr));
  if (unit.size() > 1 && (unit.ends_with("iB") || unit.ends_with("B")))
    unit.remove_suffix(unit.ends_with("iB") ? 2 : 1);
  int shift = unit.empty()                 ? 0
              : unit == "K" || unit == "k" ? 10
              : unit == "M" || unit == "m" ? 20
              : unit == "G" || unit == "g" ? 30
              : unit == "T" || unit == "t" ? 40
                                           : -1;
  if (shift < 0)
    return InvalidArgument("'" + std::string(text) + "' has an unknown unit; use K, M, G or T");
  if (shift > 0 && value > (UINT64_MAX >> shift))
    return InvalidArgument("'" + std::string(text) + "' is too large");
  return value << shift;
}

Result<uint32_t> ParseTableSize(std::string_view text, uint32_t min, uint32_t max) {
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && value > max))
    return InvalidArgument("'" + std::string(text) + "' is too many; give a number " + range);
  if (ec != std::errc() || ptr != text.data() + text.size())
    return InvalidArgument("'" + std::string(text) + "' is not a whole number; give how many " +
                           "entries, " + range + " (e.g. 262144)");
  if (value < min)
    return InvalidArgument("'" + std::string(text) + "' is too few; give a number " + range);
  return static_cast<uint32_t>(value);
}

std::string_view ProbeModeName(ProbeMode m) {
  switch (m) {
    case ProbeMode::kAuto: return "auto";
    case ProbeMode::kStreaming: return "streaming";
    case ProbeMode::kPolling: return "polling";
  }
  return "?";
}

std::optional<DaemonConfig> ParseDaemonArgs(int argc, char** argv, int* exit_code) {
  DaemonConfig cfg;
  cfg.node_name = HostName();
  std::string mode = "auto", interval = "1s", ports, family = "all";
  std::string max_connections = std::to_string(cfg.max_connections);
  std::string max_listeners = std::to_string(cfg.max_listeners);
  std::string flush = "1s", retention = "7d", retention_size = "2G", store_memory = "16M";
  std::string ring_size = "4M", reconcile = "30s", account = "30s", drain = "1s";
  std::string records = "on";
  std::string config_path = kDefaultConfigPath;
  bool print_config = false;

  CLI::App app{
      "meshd: traces every TCP connection on this host with eBPF (or sock_diag polling),\n"
      "attributes each to a process, keeps the history as flows in RocksDB (--data-dir),\n"
      "and with a cluster key joins the mesh of the other hosts' meshd (--join), so that\n"
      "`meshctl look` on any host can walk the whole dependency tree. meshctl talks to it\n"
      "over a Unix socket (--control-socket).\n"
      "Every flag can also be set as MESHD_<FLAG> in the environment or as `flag = value` in\n"
      "the config file (--config, TOML, keys are the long flags without --); a flag wins over\n"
      "the environment, which wins over the file. --print-config shows what applies and why.",
      "meshd"};
  app.get_formatter()->column_width(40);
  app.set_version_flag("--version", FLOWMESH_VERSION);
  CLI::Option* config_option =
      app.add_option("--config", config_path,
                     "Config file: `key = value` lines, e.g. data-dir = \"/srv/flowmesh\", "
                     "join = [\"10.0.0.5:7946\"]. A missing default file is fine; \"\" reads none")
          ->type_name("FILE")
          ->envname("MESHD_CONFIG")
          ->capture_default_str();
  CLI::Option* print_option = app.add_flag(
      "--print-config", print_config,
      "Print the effective configuration as a config file, each value with where it came from "
      "(flag, environment, file:line or default), and exit");
  app.add_option("--node-name", cfg.node_name,
                 "Name of this node in the mesh, unique, at most 128 bytes (default: host name)")
      ->type_name("NAME")
      ->envname("MESHD_NODE_NAME");
  app.add_option("--control-socket", cfg.control_socket,
                 "Unix socket meshctl talks to (created mode 0600)")
      ->type_name("PATH")
      ->envname("MESHD_CONTROL_SOCKET")
      ->capture_default_str();
  app.add_option("--probe-mode", mode,
                 "auto: eBPF, falling back to polling if it cannot load; streaming: eBPF only; "
                 "polling: sock_diag only (misses connections shorter than --probe-interval)")
      ->type_name("MODE")
      ->envname("MESHD_PROBE_MODE")
      ->check(CLI::IsMember({"auto", "streaming", "polling"}))
      ->capture_default_str();
  app.add_option("--probe-interval", interval,
                 "How often sock_diag is polled (polling mode; live counters in streaming "
                 "mode), e.g. 500ms, 1s")
      ->type_name("DURATION")
      ->envname("MESHD_PROBE_INTERVAL")
      ->capture_default_str();
  app.add_option("--netns", cfg.netns,
                 "Network namespaces to record: all, or a comma list (at most 8) of self (the "
                 "one meshd runs in), inode numbers as in /proc/<pid>/ns/net and namespace "
                 "files such as /run/netns/NAME or /proc/PID/ns/net, e.g. self,/run/netns/web")
      ->type_name("NETNS")
      ->envname("MESHD_NETNS")
      ->capture_default_str();
  app.add_option("--ports", ports,
                 "Record only connections whose local or remote port is listed, e.g. "
                 "80,443,8000-8010 (at most 16)")
      ->type_name("PORTS")
      ->envname("MESHD_PORTS");
  app.add_option("--family", family, "Address family to record: all, ipv4, ipv6")
      ->type_name("FAMILY")
      ->envname("MESHD_FAMILY")
      ->check(CLI::IsMember({"all", "ipv4", "ipv6"}))
      ->capture_default_str();
  app.add_option("--proc-root", cfg.proc_root, "Where procfs is mounted")
      ->type_name("PATH")
      ->envname("MESHD_PROC_ROOT")
      ->capture_default_str();
  app.add_option("--cgroup-root", cfg.cgroup_root,
                 "Where the cgroup v2 hierarchy is mounted, to name each process's systemd unit, "
                 "container or pod: auto (/sys/fs/cgroup/unified, then /sys/fs/cgroup), a path, "
                 "or off")
      ->type_name("PATH")
      ->envname("MESHD_CGROUP_ROOT")
      ->capture_default_str();
  app.add_option("--runtime-root", cfg.runtime_root,
                 "The directory container runtimes' files are read under (var/lib/docker, "
                 "run/containerd, var/lib/containers, var/lib/kubelet) to name containers and pods")
      ->type_name("DIR")
      ->envname("MESHD_RUNTIME_ROOT")
      ->capture_default_str();
  app.add_option("--bpf-attach", cfg.bpf_attach,
                 "Which BPF program type to attach: auto (tp_btf, then raw_tp), tp_btf, raw_tp")
      ->type_name("TYPE")
      ->envname("MESHD_BPF_ATTACH")
      ->check(CLI::IsMember({"auto", "tp_btf", "raw_tp"}))
      ->capture_default_str();
  app.add_option("--ring-buffer-size", ring_size,
                 "Size of the BPF ring buffer (streaming mode), a power of two from 64K to 1G: "
                 "how far meshd may fall behind under connection churn before events are lost "
                 "(about 152 bytes an event, two per connection end). 4M holds about 0.22 s of "
                 "30k connections/s on loopback; the bench's churn filled at most 2.5M of it "
                 "(docs/bench.md). It is resident memory of meshd's: a host with little churn "
                 "can take 1M. meshctl status shows the most it held (ring_high_water_bytes); "
                 "events lost to a full ring are counted, logged and shown there (ring full): "
                 "raise it then. While meshd starts (its start-up snapshot takes a third of a "
                 "second with 50k connections open), and while a sock_diag dump (every 30 s) "
                 "keeps the reader busy, up to 16 times this size of events are held in memory "
                 "instead (held_at_start, held_in_dumps, held_peak_bytes)")
      ->type_name("SIZE")
      ->envname("MESHD_RING_BUFFER_SIZE")
      ->capture_default_str();
  app.add_option("--max-connections", max_connections,
                 "Streaming mode: how many TCP sockets the kernel's socket table holds, from "
                 "connect() or accept to close; both ends of a loopback connection count. Past "
                 "it a connection is still recorded, without its process (lost_sockmap in "
                 "meshctl status). Not preallocated: 16 bytes a slot when empty, about 120 a "
                 "socket in it")
      ->type_name("N")
      ->envname("MESHD_MAX_CONNECTIONS")
      ->capture_default_str();
  app.add_option("--max-listeners", max_listeners,
                 "Streaming mode: how many listening sockets the kernel's listener table holds, "
                 "in every namespace traced. Past it, connections accepted on a new listener "
                 "have no process (lost_listenmap). Not preallocated")
      ->type_name("N")
      ->envname("MESHD_MAX_LISTENERS")
      ->capture_default_str();
  app.add_option("--reconcile-interval", reconcile,
                 "Streaming mode: how often open connections and listeners are checked against "
                 "sock_diag, so a close the probe missed (lost events) is made up, marked "
                 "reconstructed; 0s = never. Short intervals are for tests")
      ->type_name("DURATION")
      ->envname("MESHD_RECONCILE_INTERVAL")
      ->capture_default_str();
  app.add_option("--account-interval", account,
                 "Streaming mode: how often the byte and segment counters of open connections "
                 "are read from sock_diag, so a long-lived connection's traffic lands in the "
                 "minute it moved (polling mode reads them every --probe-interval); 0s = only "
                 "at close, when all of it lands in the close's minute. One dump of every open "
                 "connection each time, shared with --reconcile-interval's: see docs/bench.md "
                 "for the cost at 10k and 50k")
      ->type_name("DURATION")
      ->envname("MESHD_ACCOUNT_INTERVAL")
      ->capture_default_str();
  app.add_option("--look-drain-timeout", drain,
                 "Longest a look (a peer's look question, flows) waits for the probe to take in "
                 "what the kernel saw before it was asked, so that a connection made a moment "
                 "before is in the answer; past it the answer comes anyway and the wait is "
                 "counted (look_drain_timeouts). 0s = do not wait. Keep it under looks' "
                 "--hop-timeout (2s)")
      ->type_name("DURATION")
      ->envname("MESHD_LOOK_DRAIN_TIMEOUT")
      ->capture_default_str();
  app.add_option("--conntrack", cfg.conntrack,
                 "auto: read the kernel's connection tracking (needs CAP_NET_ADMIN), so "
                 "look follows NAT: a Service VIP to its backend, a published port (docker -p) "
                 "to its container, a balancer's front to its backends; if it cannot be read, "
                 "meshd says why once and goes on without translations. off: never read it")
      ->type_name("MODE")
      ->envname("MESHD_CONNTRACK")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  app.add_option("--records", records,
                 "on: every closed connection is kept as a record (meshctl flows lists them) "
                 "besides the per-minute flows that look and map read; off: flows only, for "
                 "hosts with heavy connection churn where per-connection history is not "
                 "wanted: less CPU and disk per connection, and meshctl flows answers that "
                 "this node keeps no records")
      ->type_name("on|off")
      ->envname("MESHD_RECORDS")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--data-dir", cfg.data_dir,
                 "Where meshd keeps its history (RocksDB): closed connections, flows, "
                 "endpoints, node identity")
      ->type_name("DIR")
      ->envname("MESHD_DATA_DIR")
      ->capture_default_str();
  app.add_option("--flush-interval", flush,
                 "How often what was aggregated is written to the store; kill -9 loses at "
                 "most this much, e.g. 500ms, 1s")
      ->type_name("DURATION")
      ->envname("MESHD_FLUSH_INTERVAL")
      ->capture_default_str();
  app.add_option("--retention", retention, "How long records and flows are kept, e.g. 12h, 7d")
      ->type_name("DURATION")
      ->envname("MESHD_RETENTION")
      ->capture_default_str();
  app.add_option("--retention-size", retention_size,
                 "Largest the store may grow before the oldest history goes, e.g. 500M, 2G; "
                 "0 = no limit")
      ->type_name("SIZE")
      ->envname("MESHD_RETENTION_SIZE")
      ->capture_default_str();
  app.add_option("--store-memory", store_memory,
                 "Memory the store (RocksDB) may use: its block cache, with the memtables of "
                 "records not yet flushed charged to it (up to half); at least 4M. More makes "
                 "repeated queries faster and flushes fewer and larger, e.g. 64M")
      ->type_name("SIZE")
      ->envname("MESHD_STORE_MEMORY")
      ->capture_default_str();
  std::string join;
  app.add_option("--bind", cfg.bind, "UDP and TCP address of the mesh (gossip and queries)")
      ->type_name("IP:PORT")
      ->envname("MESHD_BIND")
      ->capture_default_str();
  app.add_option("--advertise", cfg.advertise,
                 "Address peers use to reach this node (default: the --bind address, or this "
                 "host's first non-loopback address when binding 0.0.0.0)")
      ->type_name("IP")
      ->envname("MESHD_ADVERTISE");
  app.add_option("--join", join,
                 "Seeds to join the mesh through, e.g. 10.0.0.5:7946,10.0.0.6:7946; retried "
                 "until one answers. A restarted node also rejoins through the peers it knew")
      ->type_name("HOST:PORT,...")
      ->envname("MESHD_JOIN");
  app.add_option("--cluster-key-file", cfg.cluster_key_file,
                 "Keyring sealing every mesh packet with AES-256-GCM: one base64 32-byte key "
                 "per line, the first encrypts, all decrypt (mode 0600). Turns the mesh on")
      ->type_name("FILE")
      ->envname("MESHD_CLUSTER_KEY_FILE");
  app.add_option("--cluster-label", cfg.cluster_label,
                 "Name of the mesh, bound into every sealed packet: meshes with different "
                 "labels never mix")
      ->type_name("LABEL")
      ->envname("MESHD_CLUSTER_LABEL")
      ->capture_default_str();
  app.add_flag("--insecure", cfg.insecure,
               "Run the mesh without a key: packets unsealed, anyone on the network can join "
               "(trusted lab networks only)")
      ->envname("MESHD_INSECURE");
  app.add_option("--metrics-listen", cfg.metrics_listen,
                 "Serve Prometheus metrics at http://IP:PORT/metrics, e.g. 127.0.0.1:9464 "
                 "(plain HTTP, no authentication: bind where only the scraper reaches); "
                 "off when empty")
      ->type_name("IP:PORT")
      ->envname("MESHD_METRICS_LISTEN");
  app.add_option("--ui-listen", cfg.ui_listen,
                 "Serve the map page and its JSON API at http://IP:PORT/, e.g. 127.0.0.1:7947; "
                 "anywhere but loopback it needs --ui-token-file; off when empty")
      ->type_name("IP:PORT")
      ->envname("MESHD_UI_LISTEN");
  app.add_option("--ui-token-file", cfg.ui_token_file,
                 "File (mode 0600) holding the token the page and its API ask for: one line of "
                 "at least 16 characters, e.g. head -c24 /dev/urandom | base64 > FILE")
      ->type_name("FILE")
      ->envname("MESHD_UI_TOKEN_FILE");
  app.add_option("--log-level", cfg.log_level, "debug, info, warn or error")
      ->type_name("LEVEL")
      ->envname("MESHD_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--log-format", cfg.log_format,
                 "text: one readable line per message on stderr; json: one JSON object per "
                 "line (ts, level, component, msg) for log shippers")
      ->type_name("FORMAT")
      ->envname("MESHD_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  ConfigLayers layers(app,
                      {app.get_help_ptr(), app.get_version_ptr(), config_option, print_option});
  try {
    layers.ParseCommandLine(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    *exit_code = rc == 0 ? 0 : 2;
    return std::nullopt;
  }

  auto usage = [&](const std::string& msg) {
    std::fprintf(stderr, "meshd: %s\nRun with --help for more information.\n", msg.c_str());
    *exit_code = 2;
    return std::nullopt;
  };
  if (Status s = layers.ApplyEnvironment(); !s.ok()) return usage(s.message());
  bool config_found = false;
  if (!config_path.empty()) {
    Result<std::string> text = ReadConfigFile(config_path);
    bool explicit_path = layers.OriginOf("--config").kind != ConfigLayers::Origin::Kind::kDefault;
    if (!text.ok() && (explicit_path || text.status().code() != Status::Code::kNotFound))
      return usage(layers.Where("--config") + text.status().message());
    if (text.ok()) {
      config_found = true;
      Result<std::vector<ConfigEntry>> entries = ParseConfigText(*text, config_path);
      if (!entries.ok()) return usage(entries.status().message());
      if (Status s = layers.ApplyFile(*entries, config_path); !s.ok()) return usage(s.message());
    }
  }
  auto at = [&](std::string_view flag) { return layers.Where(flag); };
  cfg.probe_mode = mode == "streaming" ? ProbeMode::kStreaming
                   : mode == "polling" ? ProbeMode::kPolling
                                       : ProbeMode::kAuto;
  Result<std::chrono::milliseconds> iv = ParseDuration(interval);
  if (!iv.ok()) return usage(at("--probe-interval") + iv.status().message());
  if (iv->count() < 10) return usage(at("--probe-interval") + "must be at least 10ms");
  cfg.probe_interval = *iv;
  Result<std::chrono::milliseconds> fl = ParseDuration(flush);
  if (!fl.ok()) return usage(at("--flush-interval") + fl.status().message());
  if (fl->count() < 10 || fl->count() > 60'000)
    return usage(at("--flush-interval") + "must be between 10ms and 60s");
  cfg.flush_interval = *fl;
  Result<std::chrono::milliseconds> rt = ParseDuration(retention);
  if (!rt.ok()) return usage(at("--retention") + rt.status().message());
  if (rt->count() < 60'000) return usage(at("--retention") + "must be at least 1m");
  cfg.retention = *rt;
  Result<uint64_t> rs = ParseByteSize(retention_size);
  if (!rs.ok()) return usage(at("--retention-size") + rs.status().message());
  if (*rs != 0 && *rs < (16ULL << 20))
    return usage(at("--retention-size") + "must be 0 (no limit) or at least 16M");
  cfg.retention_bytes = *rs;
  cfg.records = records == "on";
  Result<uint64_t> sm = ParseByteSize(store_memory);
  if (!sm.ok()) return usage(at("--store-memory") + sm.status().message());
  if (*sm < kMinStoreMemoryBytes || *sm > (64ULL << 30))
    return usage(at("--store-memory") + "must be from 4M to 64G");
  cfg.store_memory_bytes = *sm;
  Result<uint64_t> ring = ParseByteSize(ring_size);
  if (!ring.ok()) return usage(at("--ring-buffer-size") + ring.status().message());
  if (*ring < (64ULL << 10) || *ring > (1ULL << 30) || (*ring & (*ring - 1)) != 0)
    return usage(at("--ring-buffer-size") + "must be a power of two from 64K to 1G");
  cfg.ring_buffer_bytes = static_cast<uint32_t>(*ring);
  Result<uint32_t> mc = ParseTableSize(max_connections, 16, 1U << 24);
  if (!mc.ok()) return usage(at("--max-connections") + mc.status().message());
  cfg.max_connections = *mc;
  Result<uint32_t> ml = ParseTableSize(max_listeners, 16, 1U << 24);
  if (!ml.ok()) return usage(at("--max-listeners") + ml.status().message());
  cfg.max_listeners = *ml;
  Result<std::chrono::milliseconds> rc = ParseDuration(reconcile);
  if (!rc.ok()) return usage(at("--reconcile-interval") + rc.status().message());
  if (rc->count() != 0 && rc->count() < 100)
    return usage(at("--reconcile-interval") + "must be 0s (never) or at least 100ms");
  cfg.reconcile_interval = *rc;
  Result<std::chrono::milliseconds> ac = ParseDuration(account);
  if (!ac.ok()) return usage(at("--account-interval") + ac.status().message());
  if (ac->count() != 0 && ac->count() < 1000)
    return usage(at("--account-interval") + "must be 0s (only at close) or at least 1s");
  cfg.account_interval = *ac;
  Result<std::chrono::milliseconds> dr = ParseDuration(drain);
  if (!dr.ok()) return usage(at("--look-drain-timeout") + dr.status().message());
  if (dr->count() > 60'000) return usage(at("--look-drain-timeout") + "must be at most 60s");
  cfg.look_drain_timeout = *dr;
  if (cfg.data_dir.empty()) return usage(at("--data-dir") + "must not be empty");
  cfg.join = std::vector<std::string>();
  for (size_t start = 0; start < join.size();) {
    size_t comma = join.find(',', start);
    std::string part =
        join.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!part.empty()) {
      if (Result<Endpoint> seed = Endpoint::Parse(part); !seed.ok() || seed->port == 0)
        return usage(at("--join") + "'" + part +
                     "' is not IP:PORT with a port (e.g. 10.0.0.5:7946)");
      cfg.join.push_back(part);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (!cfg.join.empty() && !cfg.mesh_enabled())
    return usage(at("--join") +
                 "refusing to join a mesh without a cluster key; give --cluster-key-file FILE "
                 "(head -c32 /dev/urandom | base64 > FILE; chmod 600 FILE) or --insecure");
  if (Result<Endpoint> b = Endpoint::Parse(cfg.bind); !b.ok() || b->port == 0)
    return usage(at("--bind") + "'" + cfg.bind +
                 "' is not IP:PORT with a port (e.g. 0.0.0.0:7946)");
  if (!cfg.advertise.empty() && !IpAddr::Parse(cfg.advertise).ok())
    return usage(at("--advertise") + "'" + cfg.advertise + "' is not an IP address");
  if (!cfg.metrics_listen.empty()) {
    Result<Endpoint> m = Endpoint::Parse(cfg.metrics_listen);
    if (!m.ok() || m->port == 0)
      return usage(at("--metrics-listen") + "'" + cfg.metrics_listen +
                   "' is not IP:PORT with a port (e.g. 127.0.0.1:9464 or [::1]:9464)");
  }
  if (!cfg.ui_listen.empty()) {
    Result<Endpoint> u = Endpoint::Parse(cfg.ui_listen);
    if (!u.ok() || u->port == 0)
      return usage(at("--ui-listen") + "'" + cfg.ui_listen +
                   "' is not IP:PORT with a port (e.g. 127.0.0.1:7947 or [::1]:7947)");
    if (cfg.ui_token_file.empty() && !u->addr.is_loopback())
      return usage(at("--ui-listen") + cfg.ui_listen +
                   " is not a loopback address, and without --ui-token-file anyone who reaches "
                   "it would see the map; give --ui-token-file FILE (head -c24 /dev/urandom | "
                   "base64 > FILE; chmod 600 FILE), or listen on 127.0.0.1:PORT");
  }
  if (cfg.cluster_label.empty()) return usage(at("--cluster-label") + "must not be empty");
  if (!ports.empty()) {
    Result<std::vector<uint16_t>> p = ParsePortList(ports, 16);
    if (!p.ok()) return usage(at("--ports") + p.status().message());
    cfg.ports = *p;
  }
  cfg.family = family == "ipv4" ? AF_INET : family == "ipv6" ? AF_INET6 : 0;
  if (Status ns = CheckNetnsList(cfg.netns); !ns.ok()) return usage(at("--netns") + ns.message());
  if (cfg.node_name.empty()) return usage(at("--node-name") + "must not be empty");
  if (Status s = CheckLimits(cfg, layers); !s.ok()) return usage(s.message());
  if (print_config) {
    std::printf(
        "# meshd --print-config: the effective configuration, itself a valid config file.\n"
        "# Precedence: command-line flag > MESHD_* environment > config file > default.\n"
        "# Config file: %s\n%s",
        DescribeConfigFile(config_path, layers, config_found).c_str(), layers.Render().c_str());
    std::fflush(stdout);
    *exit_code = 0;
    return std::nullopt;
  }
  return cfg;
}

Status CheckNetnsList(const std::string& spec) {
  if (spec == "all") return Status::Ok();
  std::vector<std::string> items = SplitNetnsList(spec);
  if (items.size() > FM_MAX_NETNS_FILTER)
    return InvalidArgument("'" + spec + "' lists " + std::to_string(items.size()) +
                           " namespaces; at most " + std::to_string(FM_MAX_NETNS_FILTER) +
                           " (or all)");
  for (const std::string& item : items) {
    if (item == "self" || (!item.empty() && item.front() == '/')) continue;
    uint32_t inode = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), inode);
    if (ec == std::errc() && ptr == item.data() + item.size() && inode != 0) continue;
    if (item == "all")
      return InvalidArgument("'" + spec + "': all stands alone, not in a list");
    return InvalidArgument("'" + item + "' is not self, a namespace inode (see: stat -L -c %i "
                           "/proc/PID/ns/net) or a namespace file path (/run/netns/NAME, "
                           "/proc/PID/ns/net); give all or a comma list of those");
  }
  return Status::Ok();
}

Result<std::vector<NetnsRef>> ResolveNetns(const std::string& spec, const std::string& proc_root) {
  std::vector<NetnsRef> out;
  if (spec == "all") return out;
  FM_RETURN_IF_ERROR(CheckNetnsList(spec).WithContext("--netns"));
  for (const std::string& item : SplitNetnsList(spec)) {
    NetnsRef ref;
    if (item == "self") {
      std::string path = proc_root + "/self/ns/net";
      Result<uint32_t> inode = NetnsInodeOfPath(path);
      if (!inode.ok()) return inode.status().WithContext("--netns: self");
      ref.inode = *inode;
    } else if (item.front() == '/') {
      Result<uint32_t> inode = NetnsInodeOfPath(item);
      if (!inode.ok())
        return Status(inode.status().code(),
                      "--netns: " + inode.status().message() +
                          "; give an existing namespace file (ip netns list shows the names "
                          "under /run/netns) or drop it from the list");
      ref.inode = *inode;
      ref.path = item;
    } else {
      ref.inode = static_cast<uint32_t>(std::stoul(item));
    }
    // The same namespace twice (self and its path) is recorded once.
    if (std::none_of(out.begin(), out.end(), [&](const NetnsRef& r) { return r.inode == ref.inode; }))
      out.push_back(std::move(ref));
  }
  return out;
}

std::vector<std::string> SplitNetnsList(const std::string& spec) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = spec.find(',', start);
    std::string item = spec.substr(start, comma == std::string::npos ? comma : comma - start);
    // Spaces around commas are a typing habit, not part of a path.
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    out.push_back(std::move(item));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

}  // namespace flowmesh
