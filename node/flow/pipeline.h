// Where every probe event goes: the open-connection table, then the
// aggregator (flows and records for the store), then the watchers. Runs on
// the probe's thread.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "node/flow/aggregator.h"
#include "node/flow/conn_table.h"
#include "node/flow/event_hub.h"
#include "node/probe/probe.h"

namespace flowmesh {

class Pipeline final : public EventSink {
 public:
  void OnEvent(const ConnEvent& event) override;
  // The same for a run of events, taking each lock once per run.
  void OnEvents(std::span<ConnEvent> events) override;
  // Events the table already applied (reconciliation's made-up closes, see
  // ConnTable::CloseMissed): to the aggregator and the watchers only.
  void Forward(const ConnEvent& event);
  // `more` open connections are about to arrive at once (the start-up
  // snapshot's): the table and the aggregator make room for them in one go.
  void Reserve(size_t more);
  // Set once before the probe starts; null = no history (tests).
  void set_aggregator(Aggregator* aggregator) { aggregator_ = aggregator; }
  // meshd's own connections (mesh syncs and queries, on both ends) stay out
  // of the history: otherwise every node would depend on every other in
  // look. watch and top still show them. 0 = keep everything (tests).
  void set_own_pid(uint32_t pid) { own_pid_ = pid; }

  ConnTable& table() { return table_; }
  const ConnTable& table() const { return table_; }
  EventHub& hub() { return hub_; }
  // Unix ns of the first event from the probe (not the start-up snapshot); 0 = none yet.
  int64_t first_event_ns() const { return first_event_ns_.load(std::memory_order_relaxed); }

 private:
  // Whether the history gets this event (see set_own_pid).
  bool ForHistory(const ConnEvent& ev) const { return own_pid_ == 0 || ev.proc.pid != own_pid_; }
  // Notes the first event that came from the probe rather than the seed.
  void NoteFirstEvent(std::span<const ConnEvent> events);

  ConnTable table_;
  Aggregator* aggregator_ = nullptr;
  uint32_t own_pid_ = 0;
  EventHub hub_;
  std::atomic<int64_t> first_event_ns_{0};
  // Scratch for OnEvents (probe thread only): what the table kept, and
  // which of those the aggregator gets.
  std::unique_ptr<bool[]> changed_;
  size_t changed_size_ = 0;
  std::vector<const ConnEvent*> for_aggregator_;
};

}  // namespace flowmesh
