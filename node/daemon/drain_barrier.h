// The read barrier of queries: a look (or a scan of the store) waits until
// the probe has collected and handed on what the kernel saw before the
// question arrived, so a connection made a moment ago is in the answer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "node/common/log.h"
#include "node/metrics/histogram.h"

namespace flowmesh {

struct DrainStats {
  uint64_t waits = 0;     // queries that waited for a probe round
  uint64_t timeouts = 0;  // of those, answered after the bound without it
};

class DrainBarrier {
 public:
  enum class Outcome {
    kDrained,   // a round whose collection began after the question is done
    kTimedOut,  // the bound passed first; counted and logged
    kNoProbe,   // no probe thread runs (start-up, shutdown): nothing to wait for
  };

  explicit DrainBarrier(int64_t timeout_ns);

  // The probe thread, before its first round: `wake` is Probe::Wake (asks
  // for a collection now, returns its ticket).
  void Open(std::function<uint64_t()> wake);
  // The probe thread, after each round (collection, kernel check, tick):
  // the tickets up to `served` (Probe::WakesServed) are answered.
  void RoundDone(uint64_t served);
  // The probe thread, when it stops: waiters return kNoProbe at once.
  void Close();

  // Any thread: wakes the probe and waits for the round. Questions waiting
  // together share one round.
  Outcome Wait();

  DrainStats stats() const;
  // How long queries waited, to measure what the barrier costs.
  const metrics::Histogram& waited() const { return waited_; }

 private:
  const int64_t timeout_ns_;
  mutable std::mutex mu_;
  std::condition_variable done_;
  std::function<uint64_t()> wake_;  // set while the probe thread runs
  uint64_t served_ = 0;
  DrainStats stats_;
  log::RateLimit timeout_log_{60'000'000'000};
  metrics::Histogram waited_;
};

}  // namespace flowmesh
