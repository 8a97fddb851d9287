// Summing flow stats and hashing flow keys (the types are in flow.h).
#include "node/flow/flow.h"

#include <algorithm>

namespace flowmesh {

void FlowStats::Merge(const FlowStats& o) {
  connections += o.connections;
  closed += o.closed;
  bytes_tx += o.bytes_tx;
  bytes_rx += o.bytes_rx;
  segs_out += o.segs_out;
  segs_in += o.segs_in;
  retrans += o.retrans;
  rtt_sum_us += o.rtt_sum_us;
  rtt_samples += o.rtt_samples;
  rtt_max_us = std::max(rtt_max_us, o.rtt_max_us);
  // 0 means "unset", so it must not win the minimum.
  if (o.first_seen_ns != 0 && (first_seen_ns == 0 || o.first_seen_ns < first_seen_ns))
    first_seen_ns = o.first_seen_ns;
  last_seen_ns = std::max(last_seen_ns, o.last_seen_ns);
  if (o.carried_from_ns == carried_from_ns) {
    carried += o.carried;
  } else if (o.carried_from_ns != 0 &&
             (carried_from_ns == 0 || o.carried_from_ns < carried_from_ns)) {
    // An earlier bucket of the same flow: the connections it carried are
    // the ones still open in the later bucket, or closed since.
    carried = o.carried;
    carried_from_ns = o.carried_from_ns;
  }
}

size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  IpAddrHash h;
  uint64_t v = h(k.laddr) * 31 + h(k.raddr);
  v = v * 0x9e3779b97f4a7c15ULL + ((uint64_t{k.lport} << 16) | k.rport);
  v = v * 0x9e3779b97f4a7c15ULL + ((uint64_t{k.pid} << 32) | k.netns);
  v = v * 0x9e3779b97f4a7c15ULL + k.start_ticks;
  if (k.translated()) v = (v * 0x9e3779b97f4a7c15ULL + h(k.xaddr)) * 31 + k.xport;
  return v ^ static_cast<uint64_t>(k.direction);
}

}  // namespace flowmesh
