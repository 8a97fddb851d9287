// meshctl's text and JSON renderings.
#include "cli/format/format.h"

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <tuple>

#include "cli/format/format_internal.h"
#include "cli/format/json.h"
#include "cli/format/look_format.h"
#include "node/common/clock.h"
#include "node/common/duration.h"

namespace flowmesh {
namespace format_internal {

std::string Printf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out(static_cast<size_t>(n > 0 ? n : 0) + 1, '\0');
  std::vsnprintf(out.data(), out.size(), fmt, ap2);
  va_end(ap2);
  out.pop_back();
  return out;
}

std::string Pid(const ProcessRef& p) { return p.known() ? std::to_string(p.pid) : "-"; }

// A listener has no remote address; JSON shows the family's wildcard (what
// sock_diag reports) so the field keeps its type.
std::string RemoteAddr(const ConnKey& k) {
  if (k.raddr.family != 0) return k.raddr.ToString();
  return k.family() == AF_INET6 ? "::" : "0.0.0.0";
}

// One spelling of sizes for every meshctl view.
std::string HumanBytes(uint64_t bytes) { return FormatLookBytes(bytes); }

void AddProcess(JsonObject& o, const ProcessRef& p) {
  if (p.known()) {
    o.Uint("pid", p.pid).Str("comm", p.comm_view());
  } else {
    o.Null("pid").Null("comm");
  }
}

void AddKey(JsonObject& o, const ConnKey& k) {
  o.Str("family", FamilyName(k.family()))
      .Str("laddr", k.laddr.ToString())
      .Uint("lport", k.lport)
      .Str("raddr", RemoteAddr(k))
      .Uint("rport", k.rport);
}

void AddCounters(JsonObject& o, const TcpCounters& c) {
  o.Uint("tx_bytes", c.bytes_tx)
      .Uint("rx_bytes", c.bytes_rx)
      .Uint("segs_out", c.segs_out)
      .Uint("segs_in", c.segs_in)
      .Uint("retrans", c.retrans)
      .Uint("rtt_us", c.rtt_us)
      .Uint("rttvar_us", c.rttvar_us);
}

}  // namespace format_internal

using namespace format_internal;

namespace {

bool IsListenKind(EventKind k) { return k == EventKind::kListen || k == EventKind::kUnlisten; }

std::string UpperKind(EventKind k) {
  std::string s(KindName(k));
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return s;
}

std::string Rate(const std::optional<double>& bytes_per_s) {
  return bytes_per_s ? Printf("%.1f", *bytes_per_s / 1024.0) : "-";
}

void AddRate(JsonObject& o, std::string_view key, const std::optional<double>& r) {
  if (r)
    o.Fixed(key, *r, 1);
  else
    o.Null(key);
}

}  // namespace

std::string WithoutTerminalControls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      out += (u < 0x20 || u == 0x7f) ? '?' : static_cast<char>(u);
      i++;
      continue;
    }
    // A UTF-8 sequence: its length from the lead byte, every continuation
    // byte 10xxxxxx, no overlong or surrogate forms, and not a C1 control.
    size_t len = u >= 0xc2 && u <= 0xdf ? 2 : u >= 0xe0 && u <= 0xef ? 3 : u >= 0xf0 && u <= 0xf4 ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = len == 2 ? u & 0x1f : len == 3 ? u & 0x0f : u & 0x07;
    for (size_t k = 1; ok && k < len; k++) {
      const unsigned char c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3f);
    }
    ok = ok && !(len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
         !(len == 4 && (cp < 0x10000 || cp > 0x10ffff)) && !(cp >= 0x80 && cp <= 0x9f);
    if (!ok) {
      out += '?';
      i++;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string TerminalSafe(std::string_view s) {
  if (s.empty()) return "-";
  return WithoutTerminalControls(s);
}

std::string_view FamilyName(uint16_t family) {
  return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "unknown";
}

std::string_view DirectionShort(Direction d) {
  switch (d) {
    case Direction::kActive: return "out";
    case Direction::kPassive: return "in";
    case Direction::kUnknown: return "-";
    case Direction::kForwarded: return "fwd";
  }
  return "-";
}

std::string WorkloadColumn(const Workload& w) {
  return w.empty() ? "-" : TerminalSafe(WorkloadLabel(w));
}

std::string WatchHeader() {
  return Printf("%-8s %-8s %-7s %-15s %-2s %-15s %-5s %-15s %-5s %8s %8s %9s %-3s %s", "TIME", "EV",
                "PID", "COMM", "IP", "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS",
                "DIR", "WORKLOAD");
}

std::string WatchLine(const ConnEvent& e, const Workload& workload) {
  const bool listen = IsListenKind(e.kind);
  std::string ms = e.kind == EventKind::kClose && e.duration_ns > 0
                       ? Printf("%.2f", static_cast<double>(e.duration_ns) / 1e6)
                       : "-";
  // KB with two decimals, as tcplife prints them: a small request is not 0.
  return Printf("%-8s %-8s %-7s %-15s %-2s %-15s %-5u %-15s %-5s %8.2f %8.2f %9s %-3s %s",
                FormatClock(e.ts_ns).c_str(), UpperKind(e.kind).c_str(), Pid(e.proc).c_str(),
                TerminalSafe(e.proc.comm_view()).c_str(), e.key.family() == AF_INET6 ? "6" : "4",
                e.key.laddr.ToString().c_str(), e.key.lport,
                listen ? "*" : e.key.raddr.ToString().c_str(),
                listen ? "*" : std::to_string(e.key.rport).c_str(),
                static_cast<double>(e.counters.bytes_tx) / 1024.0,
                static_cast<double>(e.counters.bytes_rx) / 1024.0, ms.c_str(),
                std::string(listen ? "-" : DirectionShort(e.direction)).c_str(),
                WorkloadColumn(workload).c_str());
}

std::string WatchJson(const ConnEvent& e, const Workload& workload) {
  JsonObject o;
  o.Str("ts", FormatRfc3339(e.ts_ns)).Str("event", KindName(e.kind));
  AddProcess(o, e.proc);
  AddKey(o, e.key);
  o.Str("direction", DirectionName(e.direction));
  AddCounters(o, e.counters);
  // Only a CLOSE whose open was seen has a duration; null says "not known".
  if (e.kind == EventKind::kClose && e.duration_ns > 0)
    o.Fixed("duration_ms", static_cast<double>(e.duration_ns) / 1e6, 3);
  else
    o.Null("duration_ms");
  o.Uint("netns", e.key.netns).Str("source", SourceName(e.source));
  o.Raw("workload", WorkloadJson(workload));
  return std::move(o).Finish();
}

std::vector<TopRow> RateTracker::Update(std::vector<OpenConnection> conns,
                                        const std::vector<Workload>& workloads) {
  std::unordered_map<ConnKey, Sample, ConnKeyHash> next;
  std::vector<TopRow> rows;
  rows.reserve(conns.size());
  for (size_t i = 0; i < conns.size(); i++) {
    OpenConnection& c = conns[i];
    Sample s{c.counters.bytes_tx, c.counters.bytes_rx, c.updated_ns, std::nullopt, std::nullopt};
    auto it = prev_.find(c.key);
    // Counters that went backwards are a new connection on a reused 4-tuple.
    if (it != prev_.end() && s.tx >= it->second.tx && s.rx >= it->second.rx) {
      const Sample& p = it->second;
      if (s.at_ns > p.at_ns) {
        double dt = static_cast<double>(s.at_ns - p.at_ns) / 1e9;
        s.tx_rate = static_cast<double>(s.tx - p.tx) / dt;
        s.rx_rate = static_cast<double>(s.rx - p.rx) / dt;
      } else {
        s.tx_rate = p.tx_rate;
        s.rx_rate = p.rx_rate;
      }
    }
    next.emplace(c.key, s);
    rows.push_back(TopRow{std::move(c), i < workloads.size() ? workloads[i] : Workload{}, s.tx_rate,
                          s.rx_rate});
  }
  prev_ = std::move(next);
  return rows;
}

Result<TopSort> ParseTopSort(std::string_view name) {
  if (name == "bytes") return TopSort::kBytes;
  if (name == "rx") return TopSort::kRx;
  if (name == "tx") return TopSort::kTx;
  if (name == "pid") return TopSort::kPid;
  if (name == "rtt") return TopSort::kRtt;
  return InvalidArgument("'" + std::string(name) + "' is not a sort key (bytes, rx, tx, pid, rtt)");
}

std::string_view TopSortName(TopSort s) {
  switch (s) {
    case TopSort::kBytes: return "bytes";
    case TopSort::kRx: return "rx";
    case TopSort::kTx: return "tx";
    case TopSort::kPid: return "pid";
    case TopSort::kRtt: return "rtt";
  }
  return "?";
}

void SortTopRows(std::vector<TopRow>* rows, TopSort by) {
  auto metric = [by](const TopRow& r) -> uint64_t {
    const TcpCounters& c = r.conn.counters;
    switch (by) {
      case TopSort::kBytes: return c.bytes_tx + c.bytes_rx;
      case TopSort::kRx: return c.bytes_rx;
      case TopSort::kTx: return c.bytes_tx;
      case TopSort::kRtt: return c.rtt_us;
      case TopSort::kPid: return UINT64_MAX - r.conn.proc.pid;  // smallest pid first
    }
    return 0;
  };
  auto tuple = [](const TopRow& r) {
    const ConnKey& k = r.conn.key;
    return std::tie(k.laddr, k.lport, k.raddr, k.rport, k.netns);
  };
  std::stable_sort(rows->begin(), rows->end(), [&](const TopRow& a, const TopRow& b) {
    uint64_t ma = metric(a), mb = metric(b);
    if (ma != mb) return ma > mb;
    return tuple(a) < tuple(b);
  });
}

std::string TopTitle(size_t shown, size_t total, TopSort by, int64_t now_ns) {
  std::string s = FormatClock(now_ns) + "  " + std::to_string(total) + " open connection" +
                  (total == 1 ? "" : "s");
  if (shown < total) s += " (top " + std::to_string(shown) + ")";
  return s + ", sorted by " + std::string(TopSortName(by));
}

std::string TopHeader() {
  return Printf("%-7s %-15s %-15s %-5s %-15s %-5s %-3s %8s %8s %8s %8s %8s %8s %7s %7s %s", "PID",
                "COMM", "LADDR", "LPORT", "RADDR", "RPORT", "DIR", "TX_KB", "RX_KB", "TX_KB/s",
                "RX_KB/s", "SEGS_OUT", "SEGS_IN", "RETRANS", "RTT_US", "WORKLOAD");
}

std::string TopLine(const TopRow& r) {
  const OpenConnection& c = r.conn;
  return Printf("%-7s %-15s %-15s %-5u %-15s %-5u %-3s %8.2f %8.2f %8s %8s %8u %8u %7u %7u %s",
                Pid(c.proc).c_str(), TerminalSafe(c.proc.comm_view()).c_str(),
                c.key.laddr.ToString().c_str(), c.key.lport, c.key.raddr.ToString().c_str(),
                c.key.rport, std::string(DirectionShort(c.direction)).c_str(),
                static_cast<double>(c.counters.bytes_tx) / 1024.0,
                static_cast<double>(c.counters.bytes_rx) / 1024.0, Rate(r.tx_rate).c_str(),
                Rate(r.rx_rate).c_str(), c.counters.segs_out, c.counters.segs_in,
                c.counters.retrans, c.counters.rtt_us, WorkloadColumn(r.workload).c_str());
}

std::string TopRowJson(const TopRow& r) {
  const OpenConnection& c = r.conn;
  JsonObject o;
  AddProcess(o, c.proc);
  AddKey(o, c.key);
  o.Str("direction", DirectionName(c.direction));
  AddCounters(o, c.counters);
  AddRate(o, "tx_bytes_per_s", r.tx_rate);
  AddRate(o, "rx_bytes_per_s", r.rx_rate);
  o.Str("opened", FormatRfc3339(c.opened_ns))
      .Str("updated", FormatRfc3339(c.updated_ns))
      .Uint("netns", c.key.netns)
      .Str("source", SourceName(c.source));
  o.Raw("workload", WorkloadJson(r.workload));
  return std::move(o).Finish();
}

std::string TopJson(const std::vector<TopRow>& rows) {
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); i++) {
    if (i > 0) out.push_back(',');
    out += TopRowJson(rows[i]);
  }
  return out + "]";
}

namespace {

// How often members were suspected and came back; then who flapped most.
std::string MeshFlappingText(const MeshStatus& m) {
  auto plural = [](uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  std::string out =
      Printf("%-12s %s\n", "flapping",
             (plural(m.suspicions_raised, "suspicion", "suspicions") + " raised here, " +
              std::to_string(m.suspicions_received) + " received about others; " +
              plural(m.flaps, "alive<->suspect flap", "alive<->suspect flaps") + ", " +
              plural(m.false_deaths, "false death", "false deaths"))
                 .c_str());
  out += Printf("%-12s this node refuted %s of itself (incarnation raised %s)\n", "",
                plural(m.refutations, "suspicion", "suspicions").c_str(),
                plural(m.incarnation_bumps, "time", "times").c_str());
  size_t shown = 0;
  for (const MemberFlapping& f : m.flapping) {
    if (shown++ == 5) {
      out += Printf("%-12s ... and %zu more (meshctl status --json lists them)\n", "",
                    m.flapping.size() - 5);
      break;
    }
    out += Printf("%-12s %s: %s, %s\n", "", TerminalSafe(f.name).c_str(),
                  plural(f.flaps, "flap", "flaps").c_str(),
                  plural(f.false_deaths, "false death", "false deaths").c_str());
  }
  return out;
}

// The drops and refusals that happened, one per line with what they mean.
std::string MeshRefusalsText(const MeshStatus& m) {
  std::string out;
  for (const Refusal& r : m.refusals) {
    if (r.count == 0) continue;
    out += Printf("%-12s %-28s %8llu  %s\n", out.empty() ? "refused" : "",
                  TerminalSafe(r.reason).c_str(), static_cast<unsigned long long>(r.count),
                  TerminalSafe(r.help).c_str());
  }
  return out.empty() ? Printf("%-12s %s\n", "refused", "nothing") : out;
}

}  // namespace

std::string StatusText(const NodeStatus& s, int64_t now_ns) {
  using std::chrono::milliseconds;
  auto row = [](const char* label, const std::string& value) {
    return Printf("%-12s %s\n", label, value.c_str());
  };
  std::string out;
  out += row("node", TerminalSafe(s.node_name) + " (meshd " + s.version + ", pid " +
                         std::to_string(s.pid) + ")");
  out += row("uptime", FormatDuration(milliseconds((now_ns - s.started_ns) / 1'000'000)) +
                           " (since " + FormatRfc3339(s.started_ns) + ")");
  out += row("probe", TerminalSafe(s.probe_mode) +
                          (s.probe_reason.empty() ? "" : ": " + TerminalSafe(s.probe_reason)));
  out += row("netns", TerminalSafe(s.netns));
  if (!s.conntrack.empty()) out += row("conntrack", TerminalSafe(s.conntrack));
  if (!s.workloads.empty()) out += row("workloads", TerminalSafe(s.workloads));
  if (!s.ui.empty()) out += row("ui", TerminalSafe(s.ui));
  std::string events = std::to_string(s.probe.events);
  if (s.first_event_ns > 0)
    events += " (first " +
              FormatDuration(milliseconds((s.first_event_ns - s.started_ns) / 1'000'000)) +
              " after start)";
  else
    events += " (none yet)";
  out += row("events", events);
  out += row("lost", std::to_string(s.probe.lost) + (s.probe.lost > 0 ? "  <- see detail" : ""));
  out += row("malformed", std::to_string(s.probe.malformed));
  out += format_internal::BpfMapsText(s.probe);
  out += row("connections", std::to_string(s.table.open) + " open, " +
                                std::to_string(s.table.listeners) + " listeners; " +
                                std::to_string(s.table.opens) + " opened, " +
                                std::to_string(s.table.closes) + " closed since start");
  if (s.table.reconstructed_closes > 0 || s.table.reconstructed_unlistens > 0)
    out += row("reconciled", std::to_string(s.table.reconstructed_closes) + " closes and " +
                                 std::to_string(s.table.reconstructed_unlistens) +
                                 " unlistens the probe missed, made up from sock_diag");
  out += row("watchers", std::to_string(s.watchers));
  const StoreStatus& st = s.store;
  if (!st.stats.dir.empty()) {
    out += row("store", TerminalSafe(st.stats.dir) + ": " +
                            format_internal::HumanBytes(st.stats.disk_bytes) + ", " +
                            std::to_string(st.stats.records) + " records" +
                            (st.records_off ? std::string(" (--records off: flows only)")
                                            : std::string()) +
                            (st.stats.oldest_ns > 0 ? " since " + FormatRfc3339(st.stats.oldest_ns)
                                                    : std::string()));
    out += row("", std::to_string(st.flushes) + " flushes, " + std::to_string(st.pending_records) +
                       " records pending, " + std::to_string(st.stats.expired_records) +
                       " expired by retention");
    if (st.stats.write_errors > 0 || st.dropped_records > 0)
      out += row("store errors", std::to_string(st.stats.write_errors) + " failed writes, " +
                                     std::to_string(st.dropped_records) + " records dropped" +
                                     (st.stats.last_error.empty()
                                          ? std::string(" (writing again now)")
                                          : "; last: " + TerminalSafe(st.stats.last_error)));
  }
  const MeshStatus& m = s.mesh;
  if (m.enabled) {
    out += row("mesh", TerminalSafe(m.address) + ", " +
                           (m.sealed ? "sealed, " + std::to_string(m.keys) +
                                           (m.keys == 1 ? " key" : " keys")
                                     : std::string("UNSEALED (--insecure)")));
    out += row("peers", std::to_string(m.alive) + " alive, " + std::to_string(m.suspect) +
                            " suspect, " + std::to_string(m.dead) + " dead, " +
                            std::to_string(m.left) + " left");
    out +=
        row("", format_internal::HumanBytes(m.bytes_in) + " in, " +
                    format_internal::HumanBytes(m.bytes_out) + " out, " +
                    std::to_string(m.malformed) + " dropped (malformed, unsealable or replayed)");
    out += row("look", std::to_string(m.looks) + " run here (" +
                           std::to_string(m.look_round_trips) + " queries sent), " +
                           std::to_string(m.queries_in) + " queries answered for others");
    std::string unanswered;
    for (const Refusal& r : m.look_unanswered)
      if (r.count > 0)
        unanswered += (unanswered.empty() ? "" : ", ") + std::to_string(r.count) + " " +
                      TerminalSafe(r.reason);
    if (!unanswered.empty()) out += row("", "unanswered (unreachable nodes): " + unanswered);
    std::string map_unanswered;
    for (const Refusal& r : m.map_unanswered)
      if (r.count > 0)
        map_unanswered += (map_unanswered.empty() ? "" : ", ") + std::to_string(r.count) + " " +
                          TerminalSafe(r.reason);
    out += row("map", std::to_string(m.maps) + " run here" +
                          (map_unanswered.empty() ? "" : "; members without a map: " + map_unanswered));
    out += MeshFlappingText(m);
    out += MeshRefusalsText(m);
  } else {
    out += row("mesh", "off (no --cluster-key-file)");
  }
  out += "detail\n";
  std::vector<std::pair<std::string, uint64_t>> detail = s.probe.detail;
  if (s.probe.polls > 0) detail.emplace_back("polls", s.probe.polls);
  detail.emplace_back("close_without_open", s.table.close_without_open);
  detail.emplace_back("close_unattributed", s.table.close_unattributed);
  detail.emplace_back("reconstructed_closes", s.table.reconstructed_closes);
  detail.emplace_back("reconstructed_unlistens", s.table.reconstructed_unlistens);
  detail.emplace_back("late_closes_dropped", s.table.late_closes_dropped);
  if (!st.stats.dir.empty()) {
    detail.emplace_back("store_flow_deltas", st.flows);
    detail.emplace_back("duplicate_reports_ignored", st.duplicates);
  }
  for (const auto& [name, value] : detail)
    out += Printf("  %-26s %llu\n", TerminalSafe(name).c_str(),
                  static_cast<unsigned long long>(value));
  return out;
}

std::string StatusJson(const NodeStatus& s, int64_t now_ns) {
  JsonObject detail;
  for (const auto& [name, value] : s.probe.detail) detail.Uint(name, value);
  JsonObject o;
  o.Str("node", s.node_name)
      .Str("version", s.version)
      .Uint("pid", s.pid)
      .Str("started", FormatRfc3339(s.started_ns))
      .Int("uptime_s", (now_ns - s.started_ns) / 1'000'000'000)
      .Str("probe_mode", s.probe_mode)
      .Str("probe_reason", s.probe_reason)
      .Str("conntrack", s.conntrack)
      .Str("workloads", s.workloads)
      .Str("ui", s.ui)
      .Str("netns", s.netns)
      .Uint("events", s.probe.events)
      .Uint("lost", s.probe.lost)
      .Uint("malformed", s.probe.malformed)
      .Uint("polls", s.probe.polls)
      .Uint("open_connections", s.table.open)
      .Uint("listeners", s.table.listeners)
      .Uint("opens", s.table.opens)
      .Uint("closes", s.table.closes)
      .Uint("close_without_open", s.table.close_without_open)
      .Uint("close_unattributed", s.table.close_unattributed)
      .Uint("reconstructed_closes", s.table.reconstructed_closes)
      .Uint("reconstructed_unlistens", s.table.reconstructed_unlistens)
      .Uint("late_closes_dropped", s.table.late_closes_dropped)
      .Uint("watchers", s.watchers);
  if (s.first_event_ns > 0)
    o.Fixed("first_event_after_ms", static_cast<double>(s.first_event_ns - s.started_ns) / 1e6, 3);
  else
    o.Null("first_event_after_ms");
  o.Raw("detail", std::move(detail).Finish());
  o.Raw("bpf_maps", format_internal::BpfMapsJson(s.probe));
  const StoreStatus& st = s.store;
  if (st.stats.dir.empty()) {
    o.Null("store");
  } else {
    JsonObject store;
    store.Str("dir", st.stats.dir)
        .Uint("disk_bytes", st.stats.disk_bytes)
        .Uint("records", st.stats.records)
        .Bool("records_kept", !st.records_off);
    if (st.stats.oldest_ns > 0)
      store.Str("oldest", FormatRfc3339(st.stats.oldest_ns));
    else
      store.Null("oldest");
    store.Uint("flushes", st.flushes)
        .Uint("pending_records", st.pending_records)
        .Uint("dropped_records", st.dropped_records)
        .Uint("write_errors", st.stats.write_errors)
        .Str("last_error", st.stats.last_error)
        .Uint("expired_records", st.stats.expired_records)
        .Uint("flow_deltas", st.flows)
        .Uint("duplicates_ignored", st.duplicates);
    o.Raw("store", std::move(store).Finish());
  }
  const MeshStatus& m = s.mesh;
  if (!m.enabled) {
    o.Null("mesh");
  } else {
    JsonObject mesh;
    mesh.Str("address", m.address)
        .Bool("sealed", m.sealed)
        .Uint("keys", m.keys)
        .Uint("alive", m.alive)
        .Uint("suspect", m.suspect)
        .Uint("dead", m.dead)
        .Uint("left", m.left)
        .Uint("bytes_in", m.bytes_in)
        .Uint("bytes_out", m.bytes_out)
        .Uint("malformed", m.malformed)
        .Uint("queries_in", m.queries_in)
        .Uint("looks", m.looks)
        .Uint("look_round_trips", m.look_round_trips);
    JsonObject refusals;
    for (const Refusal& r : m.refusals) refusals.Uint(r.reason, r.count);
    mesh.Raw("refusals", std::move(refusals).Finish());
    JsonObject unanswered;
    for (const Refusal& r : m.look_unanswered) unanswered.Uint(r.reason, r.count);
    mesh.Raw("look_unanswered", std::move(unanswered).Finish());
    mesh.Uint("maps", m.maps);
    JsonObject map_unanswered;
    for (const Refusal& r : m.map_unanswered) map_unanswered.Uint(r.reason, r.count);
    mesh.Raw("map_unanswered", std::move(map_unanswered).Finish());
    std::string members = "[";
    for (const MemberFlapping& f : m.flapping) {
      if (members.size() > 1) members += ",";
      JsonObject member;
      member.Str("name", f.name).Uint("flaps", f.flaps).Uint("false_deaths", f.false_deaths);
      members += std::move(member).Finish();
    }
    JsonObject flapping;
    flapping.Uint("suspicions_raised", m.suspicions_raised)
        .Uint("suspicions_received", m.suspicions_received)
        .Uint("refutations", m.refutations)
        .Uint("incarnation_bumps", m.incarnation_bumps)
        .Uint("false_deaths", m.false_deaths)
        .Uint("flaps", m.flaps)
        .Raw("members", members + "]");
    mesh.Raw("flapping", std::move(flapping).Finish());
    o.Raw("mesh", std::move(mesh).Finish());
  }
  return std::move(o).Finish();
}

}  // namespace flowmesh
