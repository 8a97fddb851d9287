// LookService's map: the scatter to every live member with bounded
// concurrency, this node's part read meanwhile, the merge, the cut and the
// compare; and this node's part answered for other members.
#include <algorithm>
#include <chrono>

#include "node/common/clock.h"
#include "node/common/duration.h"
#include "node/common/log.h"
#include "node/look/look_service.h"
#include "node/look/map_compare.h"
#include "node/look/map_wire.h"

namespace flowmesh {
namespace {

// The reason's index in the map's counters: look's, then no_map.
size_t MapReason(const Status& why, bool live) {
  if (!live) return static_cast<size_t>(Unanswered::kMemberGone);
  if (why.message().rfind(kNoMapError, 0) == 0) return kUnansweredReasons;
  return static_cast<size_t>(UnansweredOf(why));
}

}  // namespace

Result<MapResult> LookService::RunMap(const MapQuery& asked) {
  const int64_t start_ns = MonotonicNs();
  {
    // One bound for meshctl and the page together: each entry point's own
    // limit let 2 + 2 maps x 64 queries fill the transport's 256 exchanges.
    std::unique_lock lock(map_slots_mu_);
    const auto wait = std::chrono::nanoseconds(std::min(kMapSlotWaitNs, asked.timeout_ns));
    if (!map_slot_freed_.wait_for(lock, wait, [&] { return maps_running_ < kMaxMapsRunning; })) {
      maps_refused_.fetch_add(1, std::memory_order_relaxed);
      return Status{
          Status::Code::kResourceExhausted,
          std::to_string(kMaxMapsRunning) + " maps are already being drawn from " +
              options_.node_name + " and none finished within " +
              FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(wait)) +
              "; try again when one is done"};
    }
    maps_running_++;
  }
  struct Release {
    LookService* self;
    ~Release() {
      {
        std::lock_guard lock(self->map_slots_mu_);
        self->maps_running_--;
      }
      self->map_slot_freed_.notify_one();
    }
  } release{this};
  MapQuery query = asked;
  query.concurrency = std::clamp(query.concurrency, 1, kMaxMapMemberQueries);
  const int64_t deadline = start_ns + query.timeout_ns;
  MapResult result;
  result.query = query;
  // With a baseline, each window has half the time: the second must not find
  // the deadline gone.
  const int64_t first_deadline = query.baseline ? start_ns + query.timeout_ns / 2 : deadline;
  const uint64_t budget =
      query.baseline ? options_.map_answer_budget / 2 : options_.map_answer_budget;
  FM_ASSIGN_OR_RETURN(MapGraph now, GatherMap(query.window, query, first_deadline, budget));
  std::optional<MapGraph> baseline;
  if (query.baseline) {
    FM_ASSIGN_OR_RETURN(baseline, GatherMap(*query.baseline, query, deadline, budget));
  }
  maps_.fetch_add(1, std::memory_order_relaxed);
  result.graph = CutMap(now, query.host, query.workload, query.depth);
  latency_.map.ObserveNs(MonotonicNs() - start_ns);
  if (baseline) {
    // Compared whole, then cut to what either window's cut kept: a workload
    // gone since the baseline is still what --workload names, and an edge
    // beyond this window's cut is not "disappeared" while it exists.
    result.baseline = CutMap(*baseline, query.host, query.workload, query.depth);
    result.changes = ChangesWithin(CompareMaps(*baseline, now, query.change_factor), result.graph,
                                   *result.baseline);
  }
  const MapGraph& kept =
      result.graph.nodes.empty() && result.baseline ? *result.baseline : result.graph;
  if (std::string miss = CutMiss(now, kept, query.host, query.workload); !miss.empty())
    return NotFound(miss);
  return result;
}

Result<MapGraph> LookService::GatherMap(const TimeWindow& w, const MapQuery& query,
                                        int64_t deadline_ns, uint64_t budget) {
  if (options_.flush) options_.flush();
  std::vector<LookMember> members;
  if (options_.members) {
    FM_ASSIGN_OR_RETURN(members, options_.members());
  }
  if (std::none_of(members.begin(), members.end(),
                   [&](const LookMember& m) { return m.name == options_.node_name; })) {
    LookMember self;
    self.name = options_.node_name;
    self.state = "alive";
    self.addresses = LocalAddresses();
    members.push_back(std::move(self));
  }

  Result<std::vector<uint8_t>> ask = EncodeMapQuery(w, query.group_by);
  if (!ask.ok()) return ask.status();
  std::vector<MemberAnswer> answers;
  std::vector<size_t> asked;  // members[] of each query
  std::vector<MemberQuery> queries;
  for (size_t i = 0; i < members.size(); i++) {
    const LookMember& m = members[i];
    if (m.name == options_.node_name) continue;
    if (!m.live) {
      answers.push_back({m.name, Unavailable(m.state + ": not asked")});
      map_unanswered_[MapReason(Status::Ok(), false)].fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    asked.push_back(i);
    queries.push_back({m.address, *ask});
  }

  MemberAnswer mine{options_.node_name};
  auto here = [&] {
    const int64_t t0 = MonotonicNs();
    LocalQuerier local(store_, options_.live_endpoints);
    local.set_aliases(AliasSnapshot());
    mine.map = local.Map(w, query.group_by);
    mine.latency_ns = MonotonicNs() - t0;
  };
  const int64_t left = deadline_ns - MonotonicNs();
  if (queries.empty() || !options_.scatter || left <= 0) {
    here();
    for (size_t i : asked)
      answers.push_back({members[i].name, Unavailable(left <= 0 ? "the map's deadline has passed"
                                                                : "no way to ask members")});
  } else {
    std::vector<int64_t> latency;
    QueryLimits limits{static_cast<size_t>(query.concurrency), left, &latency};
    const int64_t hop_ns = std::min(query.hop_timeout_ns, left);
    QueryReplies replies = options_.scatter(std::move(queries), hop_ns, here, limits);
    uint64_t spent = 0;  // answers read, in wire bytes
    replies.resize(std::max(replies.size(), asked.size()));
    for (size_t k = 0; k < asked.size(); k++) {
      const LookMember& m = members[asked[k]];
      MemberAnswer a{m.name};
      const int64_t t0 = MonotonicNs();
      auto& r = replies[k];
      if (r.has_value() && r->ok() && spent + (*r)->size() > budget) {
        // Decoded, an answer is larger still: past the budget, one is
        // dropped unread rather than have 1,000 large ones take the node.
        a.bytes = (*r)->size();
        a.map = MemberMap{.truncated = true};
        a.unread = "its answer of " + std::to_string(a.bytes) + " bytes was not read: the map's " +
                   std::to_string(budget) + " bytes for members' answers were spent; cut " +
                   "the map with --host, --workload or a shorter --since";
        r.reset();
      } else if (!r.has_value()) {
        // The transport times each query out itself and says so; an empty
        // slot is a query whose completion never came back at all.
        a.map = Unavailable("no answer from " + m.name +
                            ": its query never completed (not answered, not timed " +
                            "out, not failed) within the scatter's " +
                            FormatDuration(std::chrono::milliseconds(hop_ns / 1'000'000)) +
                            " and its grace second");
      } else if (!r->ok()) {
        a.map = r->status();
      } else {
        a.bytes = (*r)->size();
        spent += a.bytes;
        a.map = DecodeMapAnswer(**r);
        r.reset();  // its bytes are no longer needed
      }
      a.latency_ns = (k < latency.size() ? latency[k] : 0) + (MonotonicNs() - t0);
      if (!a.map.ok()) {
        map_unanswered_[MapReason(a.map.status(), true)].fetch_add(1, std::memory_order_relaxed);
        FM_LOG(Info, "map") << "member " << m.name << " sent no map: " << a.map.status().message();
      }
      answers.push_back(std::move(a));
    }
  }
  if (!mine.map.ok())
    FM_LOG(Warn, "map") << "cannot read this node's part of the map: "
                        << mine.map.status().message();
  answers.push_back(std::move(mine));
  return MergeMap(members, answers, query.group_by, w);
}

Result<std::vector<uint8_t>> LookService::AnswerMap(const TimeWindow& w, GroupBy group_by) {
  if (options_.flush) options_.flush();
  LocalQuerier here(store_, options_.live_endpoints);
  here.set_aliases(AliasSnapshot());
  return EncodeMapAnswer(here.Map(w, group_by));
}

std::vector<Refusal> LookService::map_unanswered() const {
  static constexpr const char* kHelp[kMapUnansweredReasons] = {
      "member queries of maps run here not answered within the per-hop timeout",
      "member queries refused by a member with too many queries in flight",
      "member queries that failed: connection refused or reset, a malformed answer, or the "
      "member's store could not read",
      "members not asked because they are dead or left",
      "members not asked because the map's overall deadline had passed",
      "members whose meshd predates map (they answered an empty look)",
  };
  std::vector<Refusal> out;
  for (size_t r = 0; r < kMapUnansweredReasons; r++)
    out.push_back({r < kUnansweredReasons ? std::string(UnansweredName(static_cast<Unanswered>(r)))
                                          : std::string("no_map"),
                   map_unanswered_[r].load(std::memory_order_relaxed), kHelp[r]});
  return out;
}

}  // namespace flowmesh
