// Pipeline: table update and fan-out for each event.
#include "node/daemon/pipeline.h"

#include "node/common/clock.h"

namespace flowmesh {

void Pipeline::OnEvent(const ConnEvent& event) {
  if (event.source != EventSource::kSeed && first_event_ns_.load(std::memory_order_relaxed) == 0)
    first_event_ns_.store(RealtimeNs(), std::memory_order_relaxed);
  ConnEvent ev = event;
  if (!table_.Apply(ev)) return;
  if (aggregator_ != nullptr && (own_pid_ == 0 || ev.proc.pid != own_pid_)) aggregator_->Add(ev);
  // Live counter refreshes are for `top`, not news for watchers.
  if (ev.kind == EventKind::kUpdate) return;
  hub_.Publish(ev);
}

}  // namespace flowmesh
