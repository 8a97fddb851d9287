// Scheduling policy and names of meshd's threads.
#pragma once

#include <string_view>

namespace flowmesh {

// Switches the calling thread to SCHED_BATCH: a normal share of the CPU, but
// no wake-up preemption. For threads whose work is throughput work with a
// buffer in front of it (the probe thread behind the ring buffer, the flusher
// behind its pending batch): woken by every burst of events, they would
// otherwise preempt the very programs they watch. Leaves a policy other than
// SCHED_OTHER (one the operator chose, e.g. systemd's CPUSchedulingPolicy=)
// alone. Returns whether the thread now runs SCHED_BATCH.
bool SetThreadBatchPolicy(std::string_view thread_name);

// Back from SCHED_BATCH to SCHED_OTHER, for a thread that must run as soon
// as it is woken but was started by a batch thread (a new thread inherits
// the policy): the probe's ring-hold thread, started from the probe thread.
// Leaves any other policy alone.
void SetThreadNormalPolicy(std::string_view thread_name);

// Names the calling thread (at most 15 bytes are kept), so top -H, perf and
// /proc/PID/task/*/comm tell meshd's threads apart.
void SetThreadName(const char* name);

}  // namespace flowmesh
