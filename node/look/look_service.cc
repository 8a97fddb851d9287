// LookService: the walks run from this node and the questions answered for others.
#include "node/look/look_service.h"

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/look_wire.h"

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
  if (!options_.members) return Look(query, local);
  RemoteDirectory directory(local, options_.members(), options_.scatter, query.hop_timeout_ns,
                            MonotonicNs() + query.timeout_ns);
  LookResult result = Look(query, directory);
  const RemoteLookStats& st = directory.stats();
  FM_LOG(Debug, "look") << query.target.ToString() << ": " << st.round_trips << " round trips, "
                        << st.questions << " questions, " << st.failed << " unanswered";
  looks_.fetch_add(1, std::memory_order_relaxed);
  round_trips_.fetch_add(st.round_trips, std::memory_order_relaxed);
  return result;
}

Result<std::vector<uint8_t>> LookService::Answer(std::span<const uint8_t> bytes) {
  FM_ASSIGN_OR_RETURN(QueryBatch batch, DecodeQuery(bytes));
  if (options_.flush) options_.flush();
  LocalQuerier here(store_, options_.live_endpoints);
  std::vector<LookAnswer> answers;
  answers.reserve(batch.questions.size());
  for (LookQuestion& q : batch.questions) {
    q.node = NodeRef{options_.node_name, &here};
    answers.push_back(AskOne(q, batch.window));
  }
  return EncodeAnswers(answers);
}

}  // namespace flowmesh
