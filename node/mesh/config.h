// What a mesh node is and how it times its protocols. The defaults are
// memberlist's DefaultLANConfig; tests and bench/ shorten nothing, they run
// on a virtual clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "node/mesh/interner.h"

namespace flowmesh::mesh {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;

struct MeshConfig {
  std::string name;         // unique in the mesh; the member's key
  std::string node_id;      // stable id of the host's meshd (its data dir)
  uint64_t generation = 1;  // higher on every restart; replaces the old member

  // SWIM / Lifeguard.
  int64_t probe_interval_ns = 1 * kSecond;
  int64_t probe_timeout_ns = 500 * kMs;
  int indirect_checks = 3;
  bool tcp_fallback_ping = true;  // also try the reliable exchange after a failed UDP probe
  int suspicion_mult = 4;
  int suspicion_max_timeout_mult = 6;
  int awareness_max_multiplier = 8;  // score 0..7
  int retransmit_mult = 4;
  int64_t gossip_interval_ns = 200 * kMs;
  int gossip_nodes = 3;
  int64_t gossip_to_the_dead_ns = 30 * kSecond;
  int64_t push_pull_interval_ns = 30 * kSecond;  // scaled up with N (PushPullInterval)
  int64_t exchange_timeout_ns = 10 * kSecond;
  size_t max_queued_broadcasts = 8192;
  // Dead and left members stay listed (peers shows them) this long.
  int64_t dead_reap_ns = 3600 * kSecond;

  // Join retries back off from the first to the last delay.
  int64_t join_retry_first_ns = 1 * kSecond;
  int64_t join_retry_max_ns = 30 * kSecond;
  // Leave waits at most this long for its news to be sent.
  int64_t leave_timeout_ns = 5 * kSecond;

  // Endpoint tables.
  int64_t tombstone_ttl_ns = 3600 * kSecond;
  size_t table_notice_max_bytes = 600;          // larger changes are announced digest-only
  size_t table_sync_budget_bytes = 512 * 1024;  // deltas per push-pull answer
  int64_t table_pull_retry_ns = 500 * kMs;

  // Names, addresses and ids are interned here; share one between the nodes
  // of a simulation. Null: the node makes its own.
  std::shared_ptr<Interner> interner;
};

// memberlist's pushPullScale: above 32 members the interval grows by one
// base interval per doubling, so full syncs stay rare in large meshes.
int64_t PushPullInterval(int64_t base_ns, size_t n);

}  // namespace flowmesh::mesh
