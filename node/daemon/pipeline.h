// Where every probe event goes: the open-connection table, then the watchers.
// Runs on the probe's thread; issue #3's aggregator and store join here.
#pragma once

#include <atomic>

#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"
#include "node/probe/probe.h"

namespace flowmesh {

class Pipeline final : public EventSink {
 public:
  void OnEvent(const ConnEvent& event) override;

  ConnTable& table() { return table_; }
  EventHub& hub() { return hub_; }
  // Unix ns of the first event from the probe (not the start-up snapshot); 0 = none yet.
  int64_t first_event_ns() const { return first_event_ns_.load(std::memory_order_relaxed); }

 private:
  ConnTable table_;
  EventHub hub_;
  std::atomic<int64_t> first_event_ns_{0};
};

}  // namespace flowmesh
