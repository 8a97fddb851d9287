// LookService: the walks run from this node and the questions answered for others.
#include "node/look/look_service.h"

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/look_wire.h"
#include "node/look/map_wire.h"

namespace flowmesh {

LookService::LookService(const Store& store, LookServiceOptions options)
    : store_(store), options_(std::move(options)) {}

Result<LookResult> LookService::Run(const LookQuery& query) {
  int64_t start_ns = MonotonicNs();
  Result<LookResult> result = Walk(query);
  latency_.meshctl.ObserveNs(MonotonicNs() - start_ns);
  return result;
}

Result<LookResult> LookService::Walk(const LookQuery& query) {
  if (options_.flush) options_.flush();
  LocalDirectory local(store_, options_.node_name, LocalAddresses(), options_.live_endpoints);
  local.querier().set_aliases(AliasSnapshot());
  local.set_deadline(MonotonicNs() + query.timeout_ns);
  if (!options_.members) return Look(query, local);
  FM_ASSIGN_OR_RETURN(std::vector<LookMember> members, options_.members());
  RemoteDirectory directory(local, std::move(members), options_.scatter, query.hop_timeout_ns,
                            MonotonicNs() + query.timeout_ns);
  LookResult result = Look(query, directory);
  const RemoteLookStats& st = directory.stats();
  FM_LOG(Debug, "look") << query.target.ToString() << ": " << st.round_trips << " round trips, "
                        << st.questions << " questions, " << st.failed << " unanswered";
  looks_.fetch_add(1, std::memory_order_relaxed);
  round_trips_.fetch_add(st.round_trips, std::memory_order_relaxed);
  for (size_t r = 0; r < kUnansweredReasons; r++)
    unanswered_[r].fetch_add(st.unanswered[r], std::memory_order_relaxed);
  return result;
}

AliasSource LookService::AliasSnapshot() const {
  // Read once per walk or batch: each read takes the aggregator's lock,
  // which the probe thread holds while it applies events.
  if (!options_.aliases) return {};
  auto snapshot = std::make_shared<const std::vector<NatAlias>>(options_.aliases());
  return [snapshot] { return *snapshot; };
}

std::vector<Refusal> LookService::unanswered() const {
  static constexpr const char* kHelp[kUnansweredReasons] = {
      "member queries of looks run here not answered within the per-hop timeout",
      "member queries refused by a member with too many look queries in flight",
      "member queries that failed: connection refused or reset, a malformed answer, or the "
      "member's store could not read",
      "members not asked because they are dead or left",
      "members not asked because the look's overall deadline had passed",
  };
  std::vector<Refusal> out;
  for (size_t r = 0; r < kUnansweredReasons; r++)
    out.push_back({std::string(UnansweredName(static_cast<Unanswered>(r))),
                   unanswered_[r].load(std::memory_order_relaxed), kHelp[r]});
  return out;
}

Result<std::vector<uint8_t>> LookService::Refuse(std::span<const uint8_t> bytes,
                                                 const std::string& why) {
  Result<std::optional<MapAsk>> map = DecodeMapQuery(bytes);
  if (map.ok() && map->has_value()) return EncodeMapAnswer(Result<MemberMap>(Unavailable(why)));
  FM_ASSIGN_OR_RETURN(QueryBatch batch, DecodeQuery(bytes));
  std::vector<LookAnswer> answers(batch.questions.size());
  for (LookAnswer& a : answers) a.status = Unavailable(why);
  return EncodeAnswers(answers);
}

Result<std::vector<uint8_t>> LookService::Answer(std::span<const uint8_t> bytes) {
  // A look query fails here too when malformed; DecodeQuery says so as before.
  Result<std::optional<MapAsk>> map = DecodeMapQuery(bytes);
  if (map.ok() && map->has_value()) return AnswerMap((*map)->window, (*map)->group_by);
  FM_ASSIGN_OR_RETURN(QueryBatch batch, DecodeQuery(bytes));
  if (options_.flush) options_.flush();
  LocalQuerier here(store_, options_.live_endpoints);
  here.set_aliases(AliasSnapshot());
  std::vector<LookAnswer> answers;
  answers.reserve(batch.questions.size());
  // The asker's deadline is not on the wire: past a whole default look's,
  // nobody with the defaults waits any more, and the rest are answered so.
  const int64_t deadline = MonotonicNs() + LookQuery{}.timeout_ns;
  for (LookQuestion& q : batch.questions) {
    q.node = NodeRef{options_.node_name, &here};
    answers.push_back(AskBefore(q, batch.window, deadline));
  }
  return EncodeAnswers(answers);
}

}  // namespace flowmesh
