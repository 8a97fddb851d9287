// The connections and listeners open right now on this node, kept current by
// the probe's events. It is where a CLOSE from BPF for a connection that was
// open before meshd started gets its process back (from the start-up
// sock_diag snapshot), and what `meshctl top` shows.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "node/probe/event.h"

namespace flowmesh {

struct OpenConnection {
  ConnKey key;
  Direction direction = Direction::kUnknown;
  EventSource source = EventSource::kKernel;  // who reported the open
  ProcessRef proc;
  TcpCounters counters;   // as of updated_ns
  int64_t opened_ns = 0;  // when the open was seen (start-up for seeded ones)
  int64_t updated_ns = 0;
};

struct Listener {
  ConnKey key;  // netns, laddr, lport
  ProcessRef proc;
  int64_t since_ns = 0;
};

struct ConnTableStats {
  uint64_t open = 0;
  uint64_t listeners = 0;
  uint64_t opens = 0;               // OPEN events applied
  uint64_t closes = 0;              // CLOSE events applied
  uint64_t close_without_open = 0;  // CLOSE of a connection never seen open
  uint64_t close_unattributed = 0;  // ... and whose process stayed unknown
};

class ConnTable {
 public:
  // Applies one event. A CLOSE (or UNLISTEN) that lacks the process or
  // direction gets them from the open record, so what leaves here is as
  // complete as anything this node knew, with payload byte counts (see
  // PayloadCounters). Returns false for an event that carried nothing new
  // (an UPDATE for a connection not in the table).
  bool Apply(ConnEvent& event);
  // Apply for each event of a run, under one lock; changed[i] is what Apply
  // would have returned for events[i] (changed must hold events.size()).
  void ApplyAll(std::span<ConnEvent> events, bool* changed);

  std::vector<OpenConnection> Connections() const;
  std::vector<Listener> Listeners() const;
  ConnTableStats Stats() const;

 private:
  bool ApplyLocked(ConnEvent& event);

  mutable std::mutex mu_;
  std::unordered_map<ConnKey, OpenConnection, ConnKeyHash> open_;
  std::unordered_map<ConnKey, Listener, ConnKeyHash> listeners_;
  ConnTableStats stats_;
};

}  // namespace flowmesh
