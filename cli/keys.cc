// meshctl keys: rotate the cluster key across the running mesh, without a
// moment when two members cannot read each other: install the new key
// everywhere, use it everywhere, then remove the old one everywhere.
#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/format/json.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {
namespace {

std::string NodeKeysJson(const std::vector<NodeKeys>& nodes) {
  std::string out = "[";
  for (const NodeKeys& n : nodes) {
    std::string keys = "[";
    for (const KeyState& k : n.keys) {
      if (keys.size() > 1) keys += ",";
      JsonObject key;
      key.Str("fingerprint", k.fingerprint).Bool("primary", k.primary);
      keys += std::move(key).Finish();
    }
    keys += "]";
    JsonObject o;
    o.Str("node", n.node);
    if (n.error.empty())
      o.Null("error");
    else
      o.Str("error", n.error);
    if (out.size() > 1) out += ",";
    o.Raw("keys", keys);
    out += std::move(o).Finish();
  }
  return out + "]";
}

}  // namespace

CLI::App* AddKeysCommand(CLI::App& app, KeysOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "keys", "list or rotate the cluster keys on every live member of the mesh");
  cmd->footer(
      "Every member applies the operation and rewrites its --cluster-key-file, so the change\n"
      "survives restarts. To rotate without downtime:\n"
      "  meshctl keys install $(head -c32 /dev/urandom | base64)   # every member can read it\n"
      "  meshctl keys use FINGERPRINT                              # every member seals with it\n"
      "  meshctl keys remove OLD-FINGERPRINT                       # nobody reads the old one\n"
      "KEY is a base64 key (32 bytes) or, for use and remove, a fingerprint prefix (at least 4\n"
      "hex digits) of a key this node has, as `keys list` shows them. A member that did not\n"
      "answer is listed with its error; repeat the operation when it is back (each step is\n"
      "idempotent).");
  cmd->require_subcommand(1);
  struct Op {
    const char* name;
    const char* help;
    KeyOp op;
    bool takes_key;
  };
  static const Op ops[] = {
      {"list", "the keys each member holds, and which one it seals with", KeyOp::kList, false},
      {"install", "add a key every member can read (not yet seal with)", KeyOp::kInstall, true},
      {"use", "make an installed key the one every member seals with", KeyOp::kUse, true},
      {"remove", "remove a key (not the one in use) from every member", KeyOp::kRemove, true},
  };
  for (const Op& op : ops) {
    CLI::App* sub = cmd->add_subcommand(op.name, op.help);
    sub->callback([o, op] { o->op = op.op; });
    if (op.takes_key)
      sub->add_option("key", o->key, "base64 key, or a fingerprint prefix (use, remove)")
          ->type_name("KEY")
          ->required();
  }
  cmd->add_option("--timeout", o->timeout, "give up waiting for meshd after this long")
      ->type_name("DURATION")
      ->capture_default_str();
  return cmd;
}

int RunKeys(const GlobalOptions& g, const KeysOptions& o) {
  Result<std::chrono::milliseconds> timeout = PositiveDuration("--timeout", o.timeout);
  if (!timeout.ok()) return Fail(kExitUsage, timeout.status().message());
  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  Result<std::vector<NodeKeys>> nodes = client->Keys(o.op, o.key, *timeout);
  if (!nodes.ok()) return Fail(kExitFailure, nodes.status().message());
  size_t failed = 0;
  for (const NodeKeys& n : *nodes) failed += !n.error.empty();
  if (g.json) {
    std::printf("%s\n", NodeKeysJson(*nodes).c_str());
    return failed == 0 ? kExitOk : kExitFailure;
  }
  // One line per key: on how many members it is installed, and primary.
  struct Count {
    size_t installed = 0, primary = 0;
  };
  std::map<std::string, Count> by_key;
  for (const NodeKeys& n : *nodes)
    for (const KeyState& k : n.error.empty() ? n.keys : std::vector<KeyState>{}) {
      by_key[k.fingerprint].installed++;
      by_key[k.fingerprint].primary += k.primary;
    }
  size_t done = nodes->size() - failed;
  if (done > 0) {
    std::printf("%-12s %-10s %s\n", "FINGERPRINT", "INSTALLED", "PRIMARY ON");
    for (const auto& [fp, c] : by_key)
      std::printf("%-12s %-10s %zu\n", fp.c_str(),
                  (std::to_string(c.installed) + "/" + std::to_string(done)).c_str(), c.primary);
  }
  for (const NodeKeys& n : *nodes)
    if (!n.error.empty()) std::printf("%s: %s\n", n.node.c_str(), n.error.c_str());
  std::printf("done on %zu of %zu members%s\n", done, nodes->size(),
              failed == 0 ? "" : "; fix what the others said and repeat (each step is idempotent)");
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace flowmesh::cli
