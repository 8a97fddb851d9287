// meshd's look: `meshctl look` walks run from this node (over the mesh's
// members when it is in one), and the look queries other nodes' walks send
// here, answered from this node's store. Counts what it does, for status and
// metrics.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "node/common/refusal.h"
#include "node/common/status.h"
#include "node/look/local_directory.h"
#include "node/look/look.h"
#include "node/look/map_merge.h"
#include "node/look/map_types.h"
#include "node/look/remote_directory.h"
#include "node/metrics/histogram.h"
#include "node/store/store.h"

namespace flowmesh {

// Look latencies, observed where looks are answered (no lock on either path).
struct LookLatency {
  // Look questions answered for other nodes, from arrival to answer.
  metrics::Histogram peer{metrics::Histogram::LatencyBuckets()};
  // `meshctl look` walks run from this node, mesh round trips included.
  metrics::Histogram meshctl{metrics::Histogram::LatencyBuckets()};
  // `meshctl map` (and /api/map) run from this node, every member's answer included.
  metrics::Histogram map{metrics::Histogram::LatencyBuckets()};
};

// Why a map's member query came back without a map: look's reasons, and a
// member whose meshd predates map.
constexpr size_t kMapUnansweredReasons = kUnansweredReasons + 1;

struct LookServiceOptions {
  std::string node_name;
  // The live listening sockets (the store's endpoints are the fallback).
  ListenerSource live_endpoints;
  // The NAT aliases this node translates (none: only the store says).
  AliasSource aliases;
  // Queries read the store: what was aggregated goes there first.
  std::function<void()> flush;
  // The mesh's members (dead and departed ones too: their addresses show as
  // unreachable rather than unknown) and how to ask them. Unset: this node
  // is not in a mesh and walks alone.
  // An error (the mesh did not hand them over) fails the look with it.
  std::function<Result<std::vector<LookMember>>()> members;
  QueryScatter scatter;
  // The members' answers one map reads (kMaxMapAnswerBytes; tests: less).
  uint64_t map_answer_budget = kMaxMapAnswerBytes;
};

class LookService {
 public:
  LookService(const Store& store, LookServiceOptions options);

  // `meshctl look`: the walk, timed into latency().meshctl.
  Result<LookResult> Run(const LookQuery& query);
  // `meshctl map` (map_service.cc): every live member's part of the map (this
  // node's read here), at most query.concurrency (<= kMaxMapMemberQueries)
  // queries out at once, merged, cut, and compared with the baseline
  // window's; timed into latency().map. At most kMaxMapsRunning at once
  // from any caller; one more waits kMapSlotWaitNs, then is refused
  // (ResourceExhausted, counted in maps_refused()).
  Result<MapResult> RunMap(const MapQuery& query);
  // Another node's look or map query (look_wire.h, map_wire.h bytes),
  // answered from this node's store; its answer's bytes. A look query reads
  // as it always did. Runs on any thread.
  Result<std::vector<uint8_t>> Answer(std::span<const uint8_t> query);
  // A query this node will not answer (too many in flight): an answer whose
  // every question carries `why`, so the asker shows the reason rather than
  // a closed connection. Reads no store; runs on any thread.
  Result<std::vector<uint8_t>> Refuse(std::span<const uint8_t> query, const std::string& why);

  uint64_t looks() const { return looks_.load(std::memory_order_relaxed); }
  uint64_t maps() const { return maps_.load(std::memory_order_relaxed); }
  uint64_t maps_refused() const { return maps_refused_.load(std::memory_order_relaxed); }
  // Member queries of maps run here that came back without a map, by reason
  // (look's, then no_map), zeros included.
  std::vector<Refusal> map_unanswered() const;
  uint64_t round_trips() const { return round_trips_.load(std::memory_order_relaxed); }
  // Member queries of the walks run here that came back without answers, by
  // reason (Unanswered), zeros included: each made `unreachable` nodes.
  std::vector<Refusal> unanswered() const;
  LookLatency& latency() { return latency_; }
  const LookLatency& latency() const { return latency_; }

 private:
  // The aliases as they are now, for one walk or one batch of questions.
  AliasSource AliasSnapshot() const;
  Result<LookResult> Walk(const LookQuery& query);
  // The map of one window from every member, before the cut; members'
  // answers past `budget` wire bytes are not read.
  Result<MapGraph> GatherMap(const TimeWindow& w, const MapQuery& query, int64_t deadline_ns,
                             uint64_t budget);
  Result<std::vector<uint8_t>> AnswerMap(const TimeWindow& w, GroupBy group_by);

  const Store& store_;
  LookServiceOptions options_;
  std::atomic<uint64_t> looks_{0};        // mesh-wide looks run from here
  std::atomic<uint64_t> round_trips_{0};  // and the queries they sent
  std::array<std::atomic<uint64_t>, kUnansweredReasons> unanswered_{};
  std::atomic<uint64_t> maps_{0};  // maps run from here
  // Maps gathering now, whichever entry point asked (RunMap's bound).
  std::mutex map_slots_mu_;
  std::condition_variable map_slot_freed_;
  int maps_running_ = 0;
  std::atomic<uint64_t> maps_refused_{0};
  std::array<std::atomic<uint64_t>, kMapUnansweredReasons> map_unanswered_{};
  LookLatency latency_;
};

}  // namespace flowmesh
