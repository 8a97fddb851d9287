// Pipeline: table update and fan-out for each event.
#include "node/flow/pipeline.h"

#include "node/common/clock.h"

namespace flowmesh {

void Pipeline::NoteFirstEvent(std::span<const ConnEvent> events) {
  if (first_event_ns_.load(std::memory_order_relaxed) != 0) return;
  for (const ConnEvent& ev : events)
    if (ev.source != EventSource::kSeed) {
      first_event_ns_.store(RealtimeNs(), std::memory_order_relaxed);
      return;
    }
}

void Pipeline::OnEvent(const ConnEvent& event) {
  NoteFirstEvent({&event, 1});
  ConnEvent ev = event;
  if (!table_.Apply(ev)) return;
  Forward(ev);
}

void Pipeline::Reserve(size_t more) {
  table_.Reserve(more);
  if (aggregator_) aggregator_->Reserve(more);
}

void Pipeline::Forward(const ConnEvent& ev) {
  if (aggregator_ != nullptr && ForHistory(ev)) aggregator_->Add(ev);
  // Live counter refreshes are for `top`, not news for watchers.
  if (ev.kind == EventKind::kUpdate) return;
  hub_.Publish(ev);
}

void Pipeline::OnEvents(std::span<ConnEvent> events) {
  if (events.empty()) return;
  NoteFirstEvent(events);
  if (changed_size_ < events.size()) {
    changed_ = std::make_unique<bool[]>(events.size());
    changed_size_ = events.size();
  }
  table_.ApplyAll(events, changed_.get());
  if (aggregator_ != nullptr) {
    for_aggregator_.clear();
    for (size_t i = 0; i < events.size(); ++i)
      if (changed_[i] && ForHistory(events[i]))
        for_aggregator_.push_back(&events[i]);
    aggregator_->Add(for_aggregator_);
  }
  for (size_t i = 0; i < events.size(); ++i)
    if (changed_[i] && events[i].kind != EventKind::kUpdate) hub_.Publish(events[i]);
}

}  // namespace flowmesh
