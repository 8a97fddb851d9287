// What meshd exposes on --metrics-listen: the figures `meshctl status` shows,
// as Prometheus metrics, plus the look latency histograms.
#pragma once

#include <string>

#include "node/control/backend.h"
#include "node/metrics/histogram.h"

namespace flowmesh {

// Look latencies, observed where looks are answered (no lock on either path).
struct LookLatency {
  // Look questions answered for other nodes, from arrival to answer.
  metrics::Histogram peer{metrics::Histogram::LatencyBuckets()};
  // `meshctl look` walks run from this node, mesh round trips included.
  metrics::Histogram meshctl{metrics::Histogram::LatencyBuckets()};
};

// The whole scrape, in the text exposition format.
std::string RenderMetrics(const NodeStatus& status, const LookLatency& looks);

}  // namespace flowmesh
