// The interface every probe implements (after pixie's collectors: Init,
// TransferData, Stop), and what it needs to know before it starts.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/status.h"
#include "node/probe/event.h"
#include "node/probe/probe_stats.h"

namespace flowmesh {

// Receives every event a probe produces, on the probe's thread.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnEvent(const ConnEvent& event) = 0;
  // A run of consecutive events, in order; the sink may change them (the
  // probe reuses the storage afterwards). A streaming probe delivers what one
  // poll drained this way, so the sink can take its locks once per run.
  virtual void OnEvents(std::span<ConnEvent> events) {
    for (const ConnEvent& e : events) OnEvent(e);
  }
};

// A network namespace, by inode, and how to enter it.
struct NetnsRef {
  uint32_t inode = 0;
  uint32_t pid = 0;  // the lowest pid living in it (0: not looked up)
  std::string path;  // what setns opens: "<proc_root>/<pid>/ns/net", a bind mount such as
                     // /run/netns/NAME, or "" (our own, or find a process in it)
};

// What to record. Fixed before the probe starts (BPF: .rodata before load).
struct ProbeFilter {
  std::vector<NetnsRef> netns;  // network namespaces, distinct inodes; empty = all
  uint16_t family = 0;          // AF_INET, AF_INET6; 0 = both
  std::vector<uint16_t> ports;  // local or remote port in this list; empty = all

  bool Matches(const ConnKey& key) const;
  bool RecordsNetns(uint32_t inode) const;
};

class Probe {
 public:
  virtual ~Probe() = default;
  // "streaming" or "polling".
  virtual std::string_view Mode() const = 0;
  // Loads, attaches or opens whatever the probe needs. Errors name the fix.
  virtual Status Init() = 0;
  // Waits up to timeout_ms for activity and delivers what arrived to `sink`.
  // Returns how many events were delivered.
  virtual Result<int> TransferData(EventSink& sink, int timeout_ms) = 0;
  // Any thread: asks for a collection now. A TransferData waiting now stops
  // waiting, or the next one does not wait, and collects what the kernel
  // holds (streaming: drains the ring buffer; polling: polls). Returns a
  // ticket: once WakesServed() reaches it, a collection that began after
  // this call has been delivered to the sink. Wakes that arrive together
  // share one collection.
  virtual uint64_t Wake() = 0;
  // The probe thread, after TransferData: the latest ticket whose collection
  // has been delivered.
  virtual uint64_t WakesServed() const = 0;
  // Detaches; TransferData is not called after this.
  virtual void Stop() = 0;
  virtual ProbeStats Stats() const = 0;
};

}  // namespace flowmesh
