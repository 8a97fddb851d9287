// Text, JSON and dot renderings of a look tree.
#include "cli/format/look_format.h"

#include <cstdio>
#include <map>
#include <string_view>
#include <vector>

#include "cli/format/format.h"
#include "cli/format/json.h"
#include "node/common/clock.h"
#include "node/common/json_string.h"
#include "node/proc/workload.h"

namespace flowmesh {
namespace {

// comm, host and workload names come from other machines' processes and
// containers: no terminal control reaches the operator's screen.
std::string Printable(std::string_view s) { return WithoutTerminalControls(s); }

std::string Address(const LookNode& n) {
  return n.port != 0 ? Endpoint{n.addr, n.port}.ToString() : n.addr.ToString();
}

std::string Joined(const std::vector<Endpoint>& all) {
  std::string s;
  for (const Endpoint& e : all) s += (s.empty() ? "" : ", ") + e.ToString();
  return s;
}

// The Shawk part: address, process (or balancer), host, then what NAT adds:
// what the edge was dialled as, and the node's other fronts.
std::string Label(const LookNode& n) {
  std::string s = Address(n);
  if (n.balancer) {
    s += " balancer";
  } else if (n.process) {
    const ProcessDetails& p = *n.process;
    // The name operators know it by first: the unit or the container.
    if (!p.workload.empty()) s += " " + Printable(WorkloadLabel(p.workload));
    s += " ('" + Printable(p.comm) + "', ";
    s += p.pgid != 0 ? "pgid=" + std::to_string(p.pgid) : "pid=" + std::to_string(p.pid);
    s += ")";
  }
  if (!n.host.empty()) s += " on " + Printable(n.host);
  if (n.via.port != 0) s += " via " + n.via.ToString();
  // A root asked as its published port has that front as `via` already.
  std::vector<Endpoint> others;
  for (const Endpoint& a : n.aliases)
    if (a != n.via) others.push_back(a);
  if (!others.empty()) s += " (also " + Joined(others) + ")";
  return s;
}

void TreeLines(const LookNode& n, int level, bool client, std::string& out) {
  if (level > 0) {
    out.append(static_cast<size_t>(5 * (level - 1)), ' ');
    out += client ? "└<-- " : "└--> ";
  }
  out += Label(n);
  if (n.status != LookStatus::kOk) out += " [" + std::string(LookStatusName(n.status)) + "]";
  // A root that the node has, but with nothing to show: say so, rather
  // than print what looks like an answer.
  if (level == 0 && n.status == LookStatus::kOk && !n.process && n.clients.empty() &&
      n.dependencies.empty())
    out += n.port != 0 ? "  (nothing listens here, and no flows to it in the window)"
                       : "  (no process here connected anywhere in the window)";
  if (n.stats)
    out += "  " + FormatLookConns(*n.stats) + " " +
           FormatLookBytes(n.stats->bytes_tx + n.stats->bytes_rx);
  // Last on the line, so the columns before it read the same with or without.
  if (!n.status_detail.empty()) out += "  (" + Printable(n.status_detail) + ")";
  out += '\n';
  for (const LookNode& k : n.clients) TreeLines(k, level + 1, true, out);
  for (const LookNode& k : n.dependencies) TreeLines(k, level + 1, false, out);
}

// JSON string with escapes; bytes that are not UTF-8 become U+FFFD so the
// output always parses.
std::string Quote(std::string_view s) { return JsonString(s); }

std::string Time(int64_t ns) { return ns == 0 ? "null" : Quote(FormatRfc3339(ns)); }

}  // namespace

std::string LookProcessJson(const ProcessDetails& p) {
  return "{\"comm\": " + Quote(p.comm) + ", \"pid\": " + std::to_string(p.pid) +
         ", \"pgid\": " + std::to_string(p.pgid) + ", \"exe\": " + Quote(p.exe) +
         ", \"workload\": " + WorkloadJson(p.workload) + "}";
}

std::string LookStatsJson(const FlowStats& s) {
  return "{\"connections\": " + std::to_string(s.active()) +
         ", \"opened\": " + std::to_string(s.connections) +
         ", \"bytes_tx\": " + std::to_string(s.bytes_tx) +
         ", \"bytes_rx\": " + std::to_string(s.bytes_rx) +
         ", \"segs_out\": " + std::to_string(s.segs_out) +
         ", \"segs_in\": " + std::to_string(s.segs_in) +
         ", \"retrans\": " + std::to_string(s.retrans) +
         ", \"rtt_us\": " + std::to_string(s.rtt_mean_us()) +
         ", \"first_seen\": " + Time(s.first_seen_ns) +
         ", \"last_seen\": " + Time(s.last_seen_ns) + "}";
}

namespace {

void JsonNode(const LookNode& n, std::string& out) {
  out += "{\"host\": " + (n.host.empty() ? std::string("null") : Quote(n.host));
  out += ", \"addr\": " + Quote(n.addr.ToString());
  out += ", \"port\": " + (n.port ? std::to_string(n.port) : std::string("null"));
  out += ", \"process\": " + (n.process ? LookProcessJson(*n.process) : std::string("null"));
  out += ", \"balancer\": " + std::string(n.balancer ? "true" : "false");
  out += ", \"via\": " + (n.via.port != 0 ? Quote(n.via.ToString()) : std::string("null"));
  out += ", \"aliases\": [";
  for (size_t i = 0; i < n.aliases.size(); i++)
    out += (i ? ", " : "") + Quote(n.aliases[i].ToString());
  out += "]";
  out += ", \"status\": " + Quote(LookStatusName(n.status));
  out += ", \"status_detail\": " +
         (n.status_detail.empty() ? std::string("null") : Quote(n.status_detail));
  if (n.stats) out += ", \"stats\": " + LookStatsJson(*n.stats);
  for (bool clients : {true, false}) {
    out += clients ? ", \"clients\": [" : ", \"dependencies\": [";
    const auto& kids = clients ? n.clients : n.dependencies;
    for (size_t i = 0; i < kids.size(); i++) {
      if (i) out += ", ";
      JsonNode(kids[i], out);
    }
    out += "]";
  }
  out += "}";
}

// One vertex per process on a host, and per balancer front; addresses
// without an agent by address.
std::string DotId(const LookNode& n, GroupBy g) {
  if (n.balancer) return n.host + "/balancer/" + Address(n);
  if (n.process) return n.host + "/" + ProcessGroupKey(*n.process, g);
  return n.host + "/" + Address(n);
}

// Only the label's own line breaks survive; names are made printable first.
std::string DotLabel(const LookNode& n) {
  std::string s;
  if (n.balancer) {
    s = (n.host.empty() ? "" : Printable(n.host) + "\n") + Address(n) + "\nbalancer";
    if (!n.aliases.empty()) s += "\nalso " + Joined(n.aliases);
    return s;
  }
  if (n.process) {
    const ProcessDetails& p = *n.process;
    if (!p.workload.empty()) s = Printable(WorkloadLabel(p.workload)) + "\n";
    s += Printable(p.comm) + (p.pgid ? " (pgid=" + std::to_string(p.pgid) + ")"
                                     : " (pid=" + std::to_string(p.pid) + ")");
    s += "\n" + Address(n);
  } else {
    s = Address(n);
  }
  if (!n.host.empty()) s += "\non " + Printable(n.host);
  if (!n.aliases.empty()) s += "\nalso " + Joined(n.aliases);
  if (n.status != LookStatus::kOk && n.status != LookStatus::kCycle)
    s += "\n[" + std::string(LookStatusName(n.status)) + "]";
  return s;
}

// A vertex's attributes: its label, and a balancer's own shape.
std::string DotVertex(const LookNode& n) {
  return "label=" + DotQuote(DotLabel(n)) + (n.balancer ? ", shape=diamond" : "");
}

void DotWalk(const LookNode& n, GroupBy g, std::map<std::string, std::string>& vertices,
             std::string& edges) {
  std::string id = DotId(n, g);
  // A cycle leaf names a process already drawn; keep the first label.
  vertices.try_emplace(id, DotVertex(n));
  for (bool clients : {true, false}) {
    for (const LookNode& k : clients ? n.clients : n.dependencies) {
      std::string kid = DotId(k, g);
      vertices.try_emplace(kid, DotVertex(k));
      std::string label;
      if (k.stats) {
        label = FormatLookConns(*k.stats) + "\n" +
                FormatLookBytes(k.stats->bytes_tx + k.stats->bytes_rx);
      }
      if (k.via.port != 0) label += (label.empty() ? "via " : "\nvia ") + k.via.ToString();
      // Arrows go the way the calls go: client -> server.
      const std::string& from = clients ? kid : id;
      const std::string& to = clients ? id : kid;
      edges +=
          "  " + DotQuote(from) + " -> " + DotQuote(to) + " [label=" + DotQuote(label) + "];\n";
      DotWalk(k, g, vertices, edges);
    }
  }
}

}  // namespace

std::string DotQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string FormatLookConns(const FlowStats& s) {
  const uint64_t c = s.active();
  std::string out = std::to_string(c) + (c == 1 ? " conn" : " conns");
  if (s.carried != 0) out += " (" + std::to_string(s.connections) + " new)";
  return out;
}

std::string FormatLookBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static constexpr const char* kUnits[] = {"KB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string FormatLookTree(const LookResult& result) {
  std::string out;
  TreeLines(result.root, 0, false, out);
  return out;
}

std::string FormatLookJson(const LookResult& result) {
  const LookQuery& q = result.query;
  std::string out = "{\"query\": {\"target\": " + Quote(q.target.ToString()) +
                    ", \"direction\": " + Quote(LookDirectionName(q.direction)) +
                    ", \"depth\": " + std::to_string(q.depth) +
                    ", \"group_by\": " + Quote(GroupByName(q.group_by)) + "}, \"root\": ";
  JsonNode(result.root, out);
  return out + "}\n";
}

std::string FormatLookDot(const LookResult& result) {
  std::map<std::string, std::string> vertices;
  std::string edges;
  DotWalk(result.root, result.query.group_by, vertices, edges);
  std::string out = "digraph look {\n  rankdir=LR;\n  node [shape=box];\n";
  for (const auto& [id, attributes] : vertices)
    out += "  " + DotQuote(id) + " [" + attributes + "];\n";
  return out + edges + "}\n";
}

}  // namespace flowmesh
