// What meshd exposes on --metrics-listen: the figures `meshctl status` shows,
// as Prometheus metrics, plus the look latency histograms and the queries'
// waits for the probe to drain.
#pragma once

#include <string>

#include "node/control/backend.h"
#include "node/daemon/drain_barrier.h"
#include "node/look/look_service.h"

namespace flowmesh {

// The whole scrape, in the text exposition format.
std::string RenderMetrics(const NodeStatus& status, const LookLatency& looks,
                          const DrainBarrier& drains);

}  // namespace flowmesh
