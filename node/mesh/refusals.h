// Every drop and refusal of the mesh transports in one list by reason, for
// `meshctl status` and /metrics, and the rate-limited log line each reason
// gets. The reasons are stable labels: dashboards and alerts key on them.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/mesh/asio_transport.h"
#include "node/mesh/sealed_transport.h"

namespace flowmesh::mesh {

struct Refusal {
  std::string reason;  // snake_case, e.g. "preauth_per_source"
  uint64_t count = 0;
  std::string help;  // one line, for a metric's HELP and status
};

// Always the same reasons in the same order, zeros included, so a metric
// exists before its first refusal.
std::vector<Refusal> Refusals(const AsioTransportStats& transport, const SealStats& seal);

// One log line per reason at most every `interval_ns`, carrying how many
// were refused since the previous line: a flood from one address must not
// flood the log, and must not go unseen either.
class RefusalLog {
 public:
  explicit RefusalLog(int64_t interval_ns = 10'000'000'000) : interval_ns_(interval_ns) {}
  // `what` says what was refused and why, e.g. "connection from 10.0.0.9:
  // 8 unauthenticated connections from this address (limit 8)".
  void Note(const char* reason, int64_t now_ns, const std::string& what);

 private:
  struct Reason {
    int64_t last_ns = 0;
    bool logged = false;
    uint64_t unlogged = 0;
  };
  int64_t interval_ns_;
  std::unordered_map<std::string, Reason> reasons_;
};

}  // namespace flowmesh::mesh
