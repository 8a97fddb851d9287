// LookService's map: the scatter to every live member with bounded
// concurrency, this node's part read meanwhile, the merge, the cut and the
// compare; and this node's part answered for other members.
#include <algorithm>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/look_service.h"
#include "node/look/map_compare.h"
#include "node/look/map_wire.h"

namespace flowmesh {
namespace {

std::string Seconds(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%gs", static_cast<double>(ns) / 1e9);
  return buf;
}

// The reason's index in the map's counters: look's, then no_map.
size_t MapReason(const Status& why, bool live) {
  if (!live) return static_cast<size_t>(Unanswered::kMemberGone);
  if (why.message().rfind(kNoMapError, 0) == 0) return kUnansweredReasons;
  return static_cast<size_t>(UnansweredOf(why));
}

}  // namespace

Result<MapResult> LookService::RunMap(const MapQuery& query) {
  const int64_t start_ns = MonotonicNs();
  const int64_t deadline = start_ns + query.timeout_ns;
  MapResult result;
  result.query = query;
  // With a baseline, each window has half the time: the second must not find
  // the deadline gone.
  const int64_t first_deadline = query.baseline ? start_ns + query.timeout_ns / 2 : deadline;
  FM_ASSIGN_OR_RETURN(MapGraph now, GatherMap(query.window, query, first_deadline));
  std::optional<MapGraph> baseline;
  if (query.baseline) {
    FM_ASSIGN_OR_RETURN(baseline, GatherMap(*query.baseline, query, deadline));
  }
  maps_.fetch_add(1, std::memory_order_relaxed);
  result.graph = CutMap(now, query.host, query.workload, query.depth);
  latency_.map.ObserveNs(MonotonicNs() - start_ns);
  if (std::string miss = CutMiss(now, result.graph, query.host, query.workload); !miss.empty())
    return NotFound(miss);
  if (baseline) {
    result.baseline = CutMap(*baseline, query.host, query.workload, query.depth);
    result.changes = CompareMaps(*result.baseline, result.graph, query.change_factor);
  }
  return result;
}

Result<MapGraph> LookService::GatherMap(const TimeWindow& w, const MapQuery& query,
                                        int64_t deadline_ns) {
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
    QueryLimits limits{static_cast<size_t>(std::max(query.concurrency, 1)), left, &latency};
    QueryReplies replies =
        options_.scatter(std::move(queries), std::min(query.hop_timeout_ns, left), here, limits);
    for (size_t k = 0; k < asked.size(); k++) {
      const LookMember& m = members[asked[k]];
      MemberAnswer a{m.name};
      const int64_t t0 = MonotonicNs();
      const auto& r = k < replies.size() ? replies[k] : std::nullopt;
      if (!r.has_value()) {
        a.map = Unavailable("no answer from " + m.name + " in " + Seconds(query.hop_timeout_ns));
      } else if (!r->ok()) {
        a.map = r->status();
      } else {
        a.bytes = (*r)->size();
        a.map = DecodeMapAnswer(**r);
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
