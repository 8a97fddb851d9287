// What a probe counts, as meshd reports it (meshctl status, metrics): plain
// data, apart from the probes themselves.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace flowmesh {

// A BPF map the streaming probe created, with the kernel memory it holds.
struct BpfMapUsage {
  std::string name;            // "events", "socks", "listeners", "bss", "rodata"
  uint64_t memlock_bytes = 0;  // the kernel's own figure (fdinfo memlock:); in use, for
                               // maps that are not preallocated
  uint64_t max_entries = 0;    // capacity (bytes, for the ring buffer)
};

// Counters a probe keeps; read from any thread.
struct ProbeStats {
  uint64_t events = 0;     // delivered to the sink
  uint64_t lost = 0;       // known to be missed: the sum of lost_causes
  uint64_t malformed = 0;  // records that did not decode; dropped
  uint64_t polls = 0;      // sock_diag dumps done
  std::vector<std::pair<std::string, uint64_t>> detail;  // per-cause breakdown
  // What `lost` is made of, by cause ("ring_buffer_full", "recursion"); each
  // is also in detail under its own name. Not sent to meshctl, which reads
  // detail; metrics label the lost counter with these.
  std::vector<std::pair<std::string, uint64_t>> lost_causes;
  // The streaming probe's maps (empty in polling mode): what it costs the
  // kernel, which RSS does not show.
  std::vector<BpfMapUsage> bpf_maps;
};

}  // namespace flowmesh
