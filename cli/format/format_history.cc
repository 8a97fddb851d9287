// meshctl's renderings of what the store holds: flows and endpoints.
#include <sys/socket.h>

#include <algorithm>
#include <tuple>

#include "cli/format/format.h"
#include "cli/format/format_internal.h"
#include "node/common/clock.h"
#include "node/common/duration.h"

namespace flowmesh {

using namespace format_internal;

std::string HumanBytes(uint64_t bytes) { return format_internal::HumanBytes(bytes); }

std::string FlowsHeader(char time_column) {
  std::string time = time_column == 's'   ? Printf("%-9s ", "TIME(s)")
                     : time_column == 'T' ? Printf("%-8s ", "TIME")
                                          : "";
  return time + Printf("%-7s %-15s %-15s %-5s %-15s %-5s %-3s %8s %8s %9s %7s %8s %s", "PID",
                       "COMM", "LADDR", "LPORT", "RADDR", "RPORT", "DIR", "TX_KB", "RX_KB", "MS",
                       "RETRANS", "RTT_US", "WORKLOAD");
}

std::string FlowsLine(const ConnRecord& r, char time_column, int64_t first_ts_ns,
                      const Workload& workload) {
  std::string time;
  if (time_column == 's')
    time = Printf("%-9.3f ", static_cast<double>(r.ts_ns - first_ts_ns) / 1e9);
  else if (time_column == 'T')
    time = Printf("%-8s ", FormatClock(r.ts_ns).c_str());
  std::string ms =
      r.duration_ns > 0 ? Printf("%.2f", static_cast<double>(r.duration_ns) / 1e6) : "-";
  return time +
         Printf("%-7s %-15s %-15s %-5u %-15s %-5u %-3s %8.2f %8.2f %9s %7u %8u %s",
                Pid(r.proc).c_str(), TerminalSafe(r.proc.comm_view()).c_str(),
                r.key.laddr.ToString().c_str(), r.key.lport, r.key.raddr.ToString().c_str(),
                r.key.rport, std::string(DirectionShort(r.direction)).c_str(),
                static_cast<double>(r.counters.bytes_tx) / 1024.0,
                static_cast<double>(r.counters.bytes_rx) / 1024.0, ms.c_str(), r.counters.retrans,
                r.counters.rtt_us, WorkloadColumn(workload).c_str()) +
         // Past the last column, so the columns scripts read stay where they are.
         (r.reconstructed ? " [reconstructed]" : "");
}

std::string FlowsJson(const ConnRecord& r, const Workload& workload) {
  JsonObject o;
  o.Str("ts", FormatRfc3339(r.ts_ns));
  AddProcess(o, r.proc);
  AddKey(o, r.key);
  o.Str("direction", DirectionName(r.direction));
  AddCounters(o, r.counters);
  if (r.duration_ns > 0)
    o.Fixed("duration_ms", static_cast<double>(r.duration_ns) / 1e6, 3);
  else
    o.Null("duration_ms");
  o.Uint("netns", r.key.netns);
  o.Bool("reconstructed", r.reconstructed);
  o.Raw("workload", WorkloadJson(workload));
  return std::move(o).Finish();
}

std::string EndpointsHeader(bool with_node) {
  return (with_node ? Printf("%-16s ", "NODE") : std::string()) +
         Printf("%-22s %-7s %-7s %-15s %-10s %s  %s", "ENDPOINT", "PID", "PGID", "COMM", "NETNS",
                "EXE", "WORKLOAD");
}

namespace {

std::string Targets(const EndpointView& e) {
  std::string s;
  for (const Endpoint& t : e.targets) s += (s.empty() ? "" : ", ") + t.ToString();
  return s;
}

const char* Kind(const EndpointView& e) {
  return !e.alias() ? "listen" : e.balancer ? "balancer" : "published";
}

}  // namespace

std::string EndpointsLine(const EndpointView& e, bool with_node) {
  Endpoint ep{e.endpoint.addr, e.endpoint.port};
  std::string node = with_node ? Printf("%-16s ", TerminalSafe(e.node).c_str()) : std::string();
  // A NAT front has no columns of its own past ENDPOINT: what it reaches,
  // whose, and which kind.
  if (e.alias()) {
    std::string owner =
        e.process.pid ? " ('" + TerminalSafe(e.process.comm) + "', pid=" +
                            std::to_string(e.process.pid) + ")"
                      : "";
    return node + Printf("%-22s -> %s%s %s", ep.ToString().c_str(), Targets(e).c_str(),
                         owner.c_str(), Kind(e));
  }
  return node + Printf("%-22s %-7s %-7s %-15s %-10s %s  %s", ep.ToString().c_str(),
                       e.process.pid ? std::to_string(e.process.pid).c_str() : "-",
                       e.process.pgid ? std::to_string(e.process.pgid).c_str() : "-",
                       TerminalSafe(e.process.comm).c_str(),
                       // Gossiped endpoints do not carry their namespace.
                       e.endpoint.netns ? std::to_string(e.endpoint.netns).c_str() : "-",
                       TerminalSafe(e.process.exe).c_str(),
                       WorkloadColumn(e.process.workload).c_str());
}

void SortEndpoints(std::vector<EndpointView>* all) {
  std::sort(all->begin(), all->end(), [](const EndpointView& a, const EndpointView& b) {
    bool a_alias = a.alias(), b_alias = b.alias();
    return std::tie(a.node, a_alias, a.endpoint.port, a.endpoint.addr, a.endpoint.netns) <
           std::tie(b.node, b_alias, b.endpoint.port, b.endpoint.addr, b.endpoint.netns);
  });
}

std::string EndpointsJson(const std::vector<EndpointView>& all, bool with_node) {
  std::string out = "[";
  for (const EndpointView& e : all) {
    JsonObject o;
    if (with_node) o.Str("node", e.node);
    o.Str("family", FamilyName(e.endpoint.addr.family))
        .Str("addr", e.endpoint.addr.ToString())
        .Uint("port", e.endpoint.port)
        .Str("kind", Kind(e));
    if (e.endpoint.netns != 0)
      o.Uint("netns", e.endpoint.netns);
    else
      o.Null("netns");
    if (e.process.pid) {
      o.Uint("pid", e.process.pid)
          .Uint("pgid", e.process.pgid)
          .Str("comm", e.process.comm)
          .Str("exe", e.process.exe);
    } else {
      o.Null("pid").Null("pgid").Null("comm").Null("exe");
    }
    o.Raw("workload", WorkloadJson(e.process.workload));
    if (e.endpoint.since_ns > 0)
      o.Str("since", FormatRfc3339(e.endpoint.since_ns));
    else
      o.Null("since");
    std::string targets = "[";
    for (const Endpoint& t : e.targets)
      targets += (targets.size() > 1 ? "," : "") + JsonString(t.ToString());
    o.Raw("targets", targets + "]");
    if (out.size() > 1) out += ",";
    out += std::move(o).Finish();
  }
  return out + "]";
}

std::string PeersHeader() {
  return Printf("%-16s %-22s %-8s %11s %9s  %s", "NAME", "ADDRESS", "STATE", "INCARNATION",
                "ENDPOINTS", "LAST CHANGE");
}

std::string PeersLine(const PeerView& p, int64_t now_ns) {
  std::string change = "-";
  if (p.state_change_ns > 0)
    change = FormatDuration(std::chrono::milliseconds(
                 std::max<int64_t>(0, now_ns - p.state_change_ns) / 1'000'000)) +
             " ago";
  return Printf("%-16s %-22s %-8s %11u %9llu  %s", TerminalSafe(p.name).c_str(),
                TerminalSafe(p.addr).c_str(), TerminalSafe(p.state).c_str(), p.incarnation,
                static_cast<unsigned long long>(p.endpoints), change.c_str());
}

void SortPeers(std::vector<PeerView>* peers) {
  std::sort(peers->begin(), peers->end(),
            [](const PeerView& a, const PeerView& b) { return a.name < b.name; });
}

std::string PeersJson(const std::vector<PeerView>& peers) {
  std::string out = "[";
  for (const PeerView& p : peers) {
    JsonObject o;
    o.Str("name", p.name)
        .Str("addr", p.addr)
        .Str("state", p.state)
        .Uint("incarnation", p.incarnation)
        .Uint("endpoints", p.endpoints)
        .Uint("generation", p.generation);
    if (p.state_change_ns > 0)
      o.Str("last_change", FormatRfc3339(p.state_change_ns));
    else
      o.Null("last_change");
    if (out.size() > 1) out += ",";
    out += std::move(o).Finish();
  }
  return out + "]";
}

}  // namespace flowmesh
