// Kernel clocks to wall time. BPF stamps events with CLOCK_MONOTONIC and
// process start with boot time; /proc speaks clock ticks since boot.
#pragma once

#include <cstdint>
#include <string>

namespace flowmesh {

// Nanoseconds since the Unix epoch, now.
int64_t RealtimeNs();
// CLOCK_MONOTONIC, nanoseconds.
int64_t MonotonicNs();
// Converts a CLOCK_MONOTONIC timestamp to Unix-epoch nanoseconds. The offset is
// measured once and refreshed at most once a second, so NTP steps are followed.
int64_t MonotonicToRealtimeNs(uint64_t monotonic_ns);
// The offset MonotonicToRealtimeNs adds (realtime - monotonic), refreshed the
// same way: read once for a batch of events instead of once per event.
int64_t MonotonicToRealtimeOffsetNs();
// task->start_boottime (ns) to /proc/<pid>/stat's starttime (clock ticks),
// the same integer division the kernel does, so both sides agree exactly.
uint64_t BoottimeNsToTicks(uint64_t boottime_ns);

// "2026-11-21T23:45:46.123Z" (UTC, milliseconds).
std::string FormatRfc3339(int64_t unix_ns);
// "23:45:46" in local time, for tables.
std::string FormatClock(int64_t unix_ns);

}  // namespace flowmesh
