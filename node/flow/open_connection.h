// A connection open right now and the open-connection table's counters, as
// meshctl top and status see them: plain data, apart from the table itself
// (conn_table.h).
#pragma once

#include <cstdint>

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
  // ConnTable::Sequence() of the last report of it (OPEN or UPDATE).
  uint64_t seen_seq = 0;
};

struct ConnTableStats {
  uint64_t open = 0;
  uint64_t listeners = 0;
  uint64_t opens = 0;               // OPEN events applied
  uint64_t closes = 0;              // CLOSE events applied
  uint64_t close_without_open = 0;  // CLOSE of a connection never seen open
  uint64_t close_unattributed = 0;  // ... and whose process stayed unknown
  // Reconciliation: closes and unlistens the probe missed, made up here
  // because sock_diag no longer showed the socket.
  uint64_t reconstructed_closes = 0;
  uint64_t reconstructed_unlistens = 0;
  // The real CLOSE after all, for a connection already closed by
  // reconciliation (its event was late, not lost): dropped.
  uint64_t late_closes_dropped = 0;
};

}  // namespace flowmesh
