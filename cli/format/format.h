// What meshctl prints, as pure functions over plain structs so every column
// and JSON field is unit tested: watch lines, the top table with its rates,
// and status. Text is for people (control characters neutralised); JSON is
// one compact object or array per line for scripts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "node/common/status.h"
#include "node/control/control_types.h"
#include "node/flow/flow.h"
#include "node/flow/open_connection.h"
#include "node/probe/event.h"

namespace flowmesh {

// A process may name itself with terminal escapes; text output shows '?'
// for every control character, and "-" for an empty string.
std::string TerminalSafe(std::string_view s);
// `s` with every byte a terminal could act on replaced by '?': C0 controls,
// DEL, C1 controls (U+0080..U+009F; 0x9b alone is CSI on some terminals) and
// bytes that are not valid UTF-8. Valid UTF-8 text is kept as it is.
std::string WithoutTerminalControls(std::string_view s);
// "ipv4", "ipv6", "unknown".
std::string_view FamilyName(uint16_t family);
// The DIR column: "out" (active: this host connected), "in" (passive:
// accepted), "-" (unknown or a listener).
std::string_view DirectionShort(Direction d);

// The WORKLOAD column of watch, top, flows and endpoints: WorkloadLabel,
// or "-". It is the last column (after what scripts read by position),
// since a label has spaces: "container web (docker 3f2a1c4d5e6f)".
std::string WorkloadColumn(const Workload& w);

// ---- watch: columns after tcplife/tcpconnect ----
std::string WatchHeader();
std::string WatchLine(const ConnEvent& e, const Workload& workload = {});
// The DESIGN.md flows fields plus "event", "source" and "workload"
// (WorkloadJson: an object, or null).
std::string WatchJson(const ConnEvent& e, const Workload& workload = {});

// ---- top ----
struct TopRow {
  OpenConnection conn;
  Workload workload;  // its process's, as meshd resolved it
  // Bytes per second since the previous refresh; none the first time a
  // connection is seen (there is nothing to compare with).
  std::optional<double> tx_rate;
  std::optional<double> rx_rate;
};

// Remembers the previous refresh's counters to turn them into rates. Rates
// use the counters' own timestamps (updated_ns), so a refresh that brought no
// new measurement keeps the last rate instead of showing a false zero.
class RateTracker {
 public:
  // `workloads`, parallel to `conns`, may be empty (none known).
  std::vector<TopRow> Update(std::vector<OpenConnection> conns,
                             const std::vector<Workload>& workloads = {});

 private:
  struct Sample {
    uint64_t tx = 0;
    uint64_t rx = 0;
    int64_t at_ns = 0;
    std::optional<double> tx_rate, rx_rate;
  };
  std::unordered_map<ConnKey, Sample, ConnKeyHash> prev_;
};

enum class TopSort { kBytes, kRx, kTx, kPid, kRtt };
Result<TopSort> ParseTopSort(std::string_view name);
std::string_view TopSortName(TopSort s);
// bytes/rx/tx/rtt: largest first; pid: smallest first. Ties by 4-tuple, so
// rows do not jump around between refreshes.
void SortTopRows(std::vector<TopRow>* rows, TopSort by);

std::string TopTitle(size_t shown, size_t total, TopSort by, int64_t now_ns);
std::string TopHeader();
std::string TopLine(const TopRow& r);
std::string TopRowJson(const TopRow& r);
std::string TopJson(const std::vector<TopRow>& rows);  // one array

// ---- flows: closed connections from the store, tcplife's columns ----
// time_column: 0 none, 's' seconds since the first record (tcplife -t),
// 'T' wall-clock HH:MM:SS (tcplife -T).
std::string FlowsHeader(char time_column);
std::string FlowsLine(const ConnRecord& r, char time_column, int64_t first_ts_ns,
                      const Workload& workload = {});
// DESIGN.md's flows fields: ts, pid, comm, family, laddr, lport, raddr,
// rport, direction, tx_bytes, rx_bytes, segs_out, segs_in, retrans, rtt_us,
// rttvar_us, duration_ms, netns, reconstructed, workload.
std::string FlowsJson(const ConnRecord& r, const Workload& workload = {});

// ---- endpoints ----
// with_node: a NODE column / "node" field first (endpoints --all).
std::string EndpointsHeader(bool with_node = false);
std::string EndpointsLine(const EndpointView& e, bool with_node = false);
std::string EndpointsJson(const std::vector<EndpointView>& all, bool with_node = false);
// The order meshctl endpoints and /api/endpoints list them in: by node,
// listeners before fronts, then port, address, namespace.
void SortEndpoints(std::vector<EndpointView>* all);

// ---- peers ----
std::string PeersHeader();
std::string PeersLine(const PeerView& p, int64_t now_ns);
// DESIGN.md: an array of {"name", "addr", "state", "incarnation", "endpoints"},
// plus generation and last_change.
std::string PeersJson(const std::vector<PeerView>& peers);
// By name: meshctl peers' and /api/peers' order.
void SortPeers(std::vector<PeerView>* peers);

// "512 B", "3.4 KB", "12.0 MB".
std::string HumanBytes(uint64_t bytes);

// ---- status ----
std::string StatusText(const NodeStatus& s, int64_t now_ns);
std::string StatusJson(const NodeStatus& s, int64_t now_ns);

}  // namespace flowmesh
