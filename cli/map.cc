// meshctl map: the whole mesh's service-level graph, and what changed since
// another window.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/format/map_format.h"
#include "node/common/clock.h"
#include "node/control/control_client.h"

namespace flowmesh::cli {

CLI::App* AddMapCommand(CLI::App& app, MapOptions* o) {
  CLI::App* cmd = app.add_subcommand(
      "map", "show the whole mesh's dependency graph: what talks to what, and what changed");
  cmd->footer(
      "meshd asks every live member in parallel (up to 64 at a time, each within 2s) for its\n"
      "part: the workloads on that host, who connected to them and where they connected, in\n"
      "the window. It merges the answers into one graph. A node is a workload on a host (its\n"
      "systemd unit or container; with --group-by pgid or pid, a process group or a\n"
      "process), a balancer's front (a VIP a member's NAT spreads over backends), or an\n"
      "external address no member claims. The same connections seen from both ends are one\n"
      "edge. A member that does not answer by --timeout is listed with why, and its nodes\n"
      "(what it announced) are marked [unreachable]; the rest of the map still prints.\n"
      "[unconfirmed] is a client host with meshd where no process has a matching flow,\n"
      "[unsynced] an address no table claims while a member's table is on its way.\n"
      "\n"
      "The text lists each host's workloads, each with its clients ('<--') and its\n"
      "dependencies ('-->'): the peer, the server endpoint, 'via VIP:PORT' when a NAT\n"
      "translated what was dialled, and the connections and bytes in the window.\n"
      "\n"
      "Changes: --compare-to OFFSET also draws the map of the same window OFFSET earlier\n"
      "and lists the edges that appeared, disappeared, or whose connections or bytes (per\n"
      "window length) changed by more than --change-factor either way:\n"
      "  meshctl map --since 1h --compare-to 24h   this last hour against the same hour\n"
      "                                            yesterday ('what changed since the deploy')\n"
      "  meshctl map --since 2026-12-07T09:00:00Z --until 2026-12-07T10:00:00Z \\\n"
      "      --baseline-since 2026-12-06T09:00:00Z --baseline-until 2026-12-06T10:00:00Z\n"
      "Cutting: --host web-1 keeps web-1's nodes, --workload nginx the nodes whose label,\n"
      "unit, container, pod or endpoint contains 'nginx', and --depth N the nodes up to N\n"
      "edges away from those, either way:\n"
      "  meshctl map --workload nginx --depth 2 --format dot | dot -Tsvg > map.svg\n"
      "--format json prints one object, the same bytes as the web page's GET /api/map\n"
      "(docs/api.md; schema: docs/api.schema.json). --since/--until take a duration\n"
      "before now (15m, 2h, 7d), an RFC 3339 time or 'now'.");
  cmd->add_option("--since", o->text.since, "start of the window, e.g. 1h, 30m or an RFC 3339 time")
      ->type_name("WHEN")
      ->capture_default_str();
  cmd->add_option("--until", o->text.until, "end of the window (default: now), e.g. 10m")
      ->type_name("WHEN");
  cmd->add_option("--compare-to", o->text.compare_to,
                  "also compare with the same window this long before, e.g. 24h: yesterday's")
      ->type_name("OFFSET");
  cmd->add_option("--baseline-since", o->text.baseline_since,
                  "compare with the window from here instead (with --baseline-until)")
      ->type_name("WHEN");
  cmd->add_option("--baseline-until", o->text.baseline_until,
                  "end of that baseline window (default: now)")
      ->type_name("WHEN");
  cmd->add_option("--change-factor", o->text.change_factor,
                  "an edge changed when its traffic grew or shrank more than this, e.g. 3 "
                  "(default 2)")
      ->type_name("FACTOR");
  cmd->add_option("--group-by", o->text.group_by,
                  "what one node is: workload (unit or container, else pgid), pgid or pid")
      ->type_name("GROUPING")
      ->check(CLI::IsMember({"workload", "pgid", "pid"}));
  cmd->add_option("--host", o->text.host, "only around this member's nodes, e.g. web-1")
      ->type_name("NAME");
  cmd->add_option("--workload", o->text.workload,
                  "only around nodes whose names or endpoints contain this, e.g. nginx")
      ->type_name("TEXT");
  cmd->add_option("--depth", o->text.depth,
                  "with --host or --workload: how many edges away to keep, 0 to 64 (default 1)")
      ->type_name("N");
  cmd->add_option("--timeout", o->text.timeout,
                  "deadline for the whole map, baseline included, e.g. 10s (default 5s, at most "
                  "60s); members not "
                  "answered by then are listed as such")
      ->type_name("DURATION");
  cmd->add_option("--format", o->format, "text, json or dot (Graphviz), e.g. dot")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"text", "json", "dot"}))
      ->capture_default_str();
  return cmd;
}

int RunMap(const GlobalOptions& g, const MapOptions& o) {
  Result<MapQuery> query = ParseMapQueryText(o.text, RealtimeNs());
  if (!query.ok()) return Fail(kExitUsage, query.status().message());

  Result<ControlClient> client = ControlClient::Connect(g.socket);
  if (!client.ok()) return Fail(kExitFailure, client.status().message());
  // meshd answers by the map's deadline; the margin covers its merge and
  // the reply, so a slow mesh shows as members that did not answer.
  const auto timeout =
      std::chrono::milliseconds(query->timeout_ns / 1'000'000) + std::chrono::seconds(5);
  Result<MapResult> map = client->Map(*query, timeout);
  if (!map.ok()) return Fail(kExitFailure, map.status().message());
  const std::string format = g.json ? "json" : o.format;
  std::string out = format == "json"  ? FormatMapJson(*map)
                    : format == "dot" ? FormatMapDot(*map)
                                      : FormatMapText(*map);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return kExitOk;
}

}  // namespace flowmesh::cli
