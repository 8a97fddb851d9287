// meshctl look: the dependency tree around one endpoint.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/format/look_format.h"
#include "node/common/clock.h"
#include "node/look/look_query_text.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddLookCommand(CLI::App& app, LookOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "look", "show who calls an endpoint and what it calls: the dependency tree");
  cmd->footer(
      "The walk crosses the mesh: the node that owns each address answers for it, every node\n"
      "of one level is asked at once, and a node that does not answer within --hop-timeout\n"
      "becomes an [unreachable] leaf while the rest of the tree still comes back.\n"
      "With IP alone (no port) the root is that host, and the tree starts from its\n"
      "processes that connected anywhere, going downward.\n"
      "The root is the process listening on IP:PORT. '└<--' lines are its clients (who\n"
      "connected to it), '└-->' lines its dependencies (what it connected to); clients keep\n"
      "going upward and dependencies downward, to --depth. A leaf marked [no-agent] is an\n"
      "address no meshd owns, [unreachable] a node that did not answer (why ends the line),\n"
      "[cycle] a process already on its own path (the calls went round), [depth-limit] where\n"
      "--depth stopped the walk, [unconfirmed] a host whose meshd has no process with a\n"
      "matching flow or listener (the other side's counts are kept), [unsynced] an address\n"
      "no table claims while a member's table is still on its way. A process two branches\n"
      "share (two apps, one redis) shows under each.\n"
      "A node is a group of one host's processes: with --group-by workload (the default) the\n"
      "systemd unit or container they run in, named first on the line (nginx.service,\n"
      "container web (docker 3f2a1c4d5e6f), pod shop/pay-7d9c/api (...)), so a unit's old and\n"
      "new processes across a restart are one node; a process with no unit or container is\n"
      "grouped by its process group. --group-by pgid groups by process group only (nginx's\n"
      "master and workers), pid shows each process alone. The process shown for a group is\n"
      "its leader; for a workload, the leader of its latest started process.\n"
      "A window holds every connection that was open at some moment in it: opened before\n"
      "it, closed after it, or still open (a pool opened at deploy time shows in every\n"
      "window since). 'N conns SIZE' on a line is those connections and the payload bytes\n"
      "they moved in the window; '(K new)' follows when some of them opened before it.\n"
      "Flows are kept per minute: a window takes in the whole minutes it touches.\n"
      "--since/--until take a duration before now (15m, 2h, 7d), an RFC 3339 time or 'now'.\n"
      "--format json prints one object: {\"query\": ..., \"root\": NODE} as in DESIGN.md;\n"
      "a node's process has \"workload\": {\"kind\", \"runtime\", \"id\", \"name\", \"unit\",\n"
      "\"user_unit\", \"pod\", \"cgroup\"} (pod: {\"uid\", \"name\", \"namespace\", \"qos\"} or\n"
      "null), or null when it runs in no unit or container;\n"
      "a node's stats have connections (open in the window), opened (opened in it), and the\n"
      "bytes and segments moved in it (bytes_tx, bytes_rx, segs_out, segs_in).");
  cmd->add_option("target", o->target,
                  "the endpoint, e.g. 10.213.0.2:80 or [::1]:8080; or a host's address alone")
      ->type_name("IP[:PORT]")
      ->required();
  cmd->add_option("--depth", o->depth, "how many hops to walk each way")
      ->type_name("N")
      ->check(CLI::Range(1, kMaxLookDepth))
      ->capture_default_str();
  cmd->add_option("--direction", o->direction, "in: clients only, out: dependencies only, both")
      ->type_name("DIR")
      ->check(CLI::IsMember({"in", "out", "both"}))
      ->capture_default_str();
  cmd->add_option("--group-by", o->group_by,
                  "what one node of the tree is: workload (unit or container, else pgid), "
                  "pgid or pid")
      ->type_name("GROUPING")
      ->check(CLI::IsMember({"workload", "pgid", "pid"}))
      ->capture_default_str();
  cmd->add_option("--since", o->since, "start of the window")
      ->type_name("WHEN")
      ->capture_default_str();
  cmd->add_option("--until", o->until, "end of the window")
      ->type_name("WHEN")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "tree (text), json or dot (Graphviz)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"tree", "json", "dot"}))
      ->capture_default_str();
  cmd->add_option("--hop-timeout", o->hop_timeout,
                  "how long one node may take to answer before it is an [unreachable] leaf")
      ->type_name("DURATION")
      ->capture_default_str();
  cmd->add_option("--timeout", o->timeout,
                  "deadline for the whole walk; nodes not asked by then are [unreachable]")
      ->type_name("DURATION")
      ->capture_default_str();
  return cmd;
}

static_assert(kMaxLookDepth == kMaxLookQueryDepth, "the flag and the parser bound --depth alike");

int RunLook(const GlobalOptions& g, const LookOptions& o) {
  // The same parser as /api/look's, so both ask the same question.
  LookQueryText text{o.target,  std::to_string(o.depth), o.direction,   o.group_by,
                     o.since,   o.until,                 o.hop_timeout, o.timeout};
  Result<LookQuery> query = ParseLookQueryText(text, RealtimeNs());
  if (!query.ok()) return Fail(kExitUsage, query.status().message());
  const std::chrono::milliseconds timeout(query->timeout_ns / 1'000'000);

  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  // meshd answers by the deadline; the margin covers its local work.
  Result<LookNode> root = client->Look(*query, timeout + std::chrono::seconds(5));
  if (!root.ok()) return Fail(kExitFailure, root.status().message());
  LookResult result{*query, std::move(root).value()};
  std::string format = g.json ? "json" : o.format;
  std::string out = format == "json"  ? FormatLookJson(result)
                    : format == "dot" ? FormatLookDot(result)
                                      : FormatLookTree(result);
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (out.empty() || out.back() != '\n') std::fputc('\n', stdout);
  return kExitOk;
}

}  // namespace flowmesh::cli
