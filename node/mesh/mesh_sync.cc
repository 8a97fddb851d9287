// MeshNode over reliable exchanges: join, periodic push-pull full state
// sync with table digests and deltas, and the fallback ping.
#include "node/common/log.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/wire.h"

namespace flowmesh::mesh {

bool MeshNode::Shareable(uint32_t owner) const {
  const Member* m = membership_.members().Find(owner);
  return m != nullptr && m->live();
}

PushPullMsg MeshNode::LocalState(bool join, const std::vector<MemberEntryMsg>* peer) const {
  PushPullMsg out;
  out.join = join;
  out.members = membership_.Snapshot();
  tables_->FillDigests(out.members);
  if (peer != nullptr)
    out.tables = tables_->DeltasFor(
        *peer, [this](uint32_t o) { return Shareable(o); }, config_.table_sync_budget_bytes);
  return out;
}

void MeshNode::MergeRemote(const PushPullMsg& remote) {
  membership_.Merge(remote.members);
  tables_->ApplyBulk(remote.tables);
}

void MeshNode::PushMissingTables(const Address& to, const std::vector<MemberEntryMsg>& peer) {
  std::vector<TableDeltaMsg> deltas = tables_->DeltasFor(
      peer, [this](uint32_t o) { return Shareable(o); }, config_.table_sync_budget_bytes);
  if (deltas.empty()) return;
  Result<Bytes> request = EncodeExchangeRequest(TablePushMsg{std::move(deltas)});
  if (!request.ok()) {
    stats_.encode_failures++;
    return;
  }
  stats_.exchanges_out++;
  stats_.bytes_out += request->size();
  transport_.Exchange(to, std::move(request).value(), config_.exchange_timeout_ns,
                      life_.Guard([this](Result<Bytes> response) {
                        if (!response.ok()) stats_.exchanges_failed++;
                      }));
}

void MeshNode::OnExchange(const Address& from, std::span<const uint8_t> bytes,
                          Transport::ExchangeReply reply) {
  if (stopped_) return reply(Unavailable("leaving"));
  stats_.exchanges_in++;
  stats_.bytes_in += bytes.size();
  Result<ExchangeRequestMsg> request = DecodeExchangeRequest(bytes);
  if (!request.ok()) {
    DropMalformed(from, "an exchange request", request.status());
    return reply(request.status());
  }
  if (auto* q = std::get_if<QueryMsg>(&request.value())) {
    if (!query_handler_) return reply(Unavailable("this node answers no queries"));
    stats_.queries_in++;
    return query_handler_(from, std::move(q->payload),
                          ReplyLater<Bytes>(std::move(reply), [](Bytes answer) {
                            return ExchangeResponseMsg(QueryMsg{std::move(answer)});
                          }));
  }
  if (auto* k = std::get_if<KeyRequestMsg>(&request.value())) {
    if (!key_handler_) return reply(Unavailable("this node takes no key operations"));
    stats_.queries_in++;
    return key_handler_(from, std::move(*k),
                        ReplyLater<KeyResponseMsg>(std::move(reply), [](KeyResponseMsg answer) {
                          return ExchangeResponseMsg(std::move(answer));
                        }));
  }
  reply(Answer(from, request.value()));
}

Result<Bytes> MeshNode::Answer(const Address& from, ExchangeRequestMsg& request) {
  ExchangeResponseMsg response = DoneMsg{};
  if (auto* pp = std::get_if<PushPullMsg>(&request)) {
    // Answer with what we knew before their news (memberlist does the same),
    // including the table rows their digests show they miss.
    response = LocalState(false, &pp->members);
    MergeRemote(*pp);
  } else if (auto* ping = std::get_if<PingMsg>(&request)) {
    if (!membership_.HandleFallbackPing(*ping)) return Unavailable("ping for another node");
    response = AckMsg{ping->seq};
  } else {
    tables_->ApplyBulk(std::get<TablePushMsg>(request).deltas);
  }
  Result<Bytes> out = EncodeExchangeResponse(response);
  if (!out.ok()) {
    stats_.encode_failures++;
    return out.status();
  }
  stats_.bytes_out += out->size();
  return out;
}

template <typename Reply>
std::function<void(Result<Reply>)> MeshNode::ReplyLater(
    Transport::ExchangeReply reply, ExchangeResponseMsg (*wrap)(Reply)) {
  // The answer may come later, from another thread's work posted back to
  // ours: only the life guard knows whether this node still exists then.
  return [this, alive = life_.Token(), reply = std::move(reply), wrap](Result<Reply> answer) {
    if (!alive.lock()) return reply(Unavailable("mesh node stopped"));
    if (!answer.ok()) return reply(answer.status());
    Result<Bytes> out = EncodeExchangeResponse(wrap(std::move(*answer)));
    if (!out.ok()) {
      stats_.encode_failures++;
      return reply(out.status());
    }
    stats_.bytes_out += out->size();
    reply(std::move(out));
  };
}

void MeshNode::Ask(const Address& to, const ExchangeRequestMsg& request, int64_t timeout_ns,
                   std::function<void(Result<ExchangeResponseMsg>)> done) {
  Result<Bytes> bytes = EncodeExchangeRequest(request);
  if (!bytes.ok()) {
    stats_.encode_failures++;
    return done(bytes.status());
  }
  stats_.exchanges_out++;
  stats_.queries_out++;
  stats_.bytes_out += bytes->size();
  transport_.Exchange(
      to, std::move(bytes).value(), timeout_ns,
      [this, alive = life_.Token(), to, done = std::move(done)](Result<Bytes> response) {
        if (!alive.lock()) return done(Unavailable("mesh node stopped"));
        if (!response.ok()) {
          stats_.exchanges_failed++;
          return done(response.status());
        }
        stats_.bytes_in += response->size();
        Result<ExchangeResponseMsg> decoded = DecodeExchangeResponse(*response);
        if (!decoded.ok()) {
          DropMalformed(to, "the answer to a query", decoded.status());
          return done(decoded.status().WithContext("query to " + to));
        }
        done(std::move(decoded));
      });
}

// An answer of the wrong kind is counted as malformed, as the decoder's own
// failures are.
template <typename Reply>
std::function<void(Result<ExchangeResponseMsg>)> MeshNode::Expect(
    const Address& to, std::function<void(Result<Reply>)> done) {
  // Runs inside Ask's guarded callback, so `this` is alive here.
  return [this, to, done = std::move(done)](Result<ExchangeResponseMsg> response) {
    if (!response.ok()) return done(response.status());
    auto* answer = std::get_if<Reply>(&response.value());
    if (answer == nullptr) {
      Status wrong = InvalidArgument("query to " + to + ": the answer is not a query answer");
      DropMalformed(to, "the answer to a query", wrong, WireCheck::kUnexpectedKind);
      return done(wrong);
    }
    done(std::move(*answer));
  };
}

void MeshNode::Query(const Address& to, Bytes query, int64_t timeout_ns,
                     Transport::ExchangeDone done) {
  Ask(to, QueryMsg{std::move(query)}, timeout_ns,
      Expect<QueryMsg>(to, [done = std::move(done)](Result<QueryMsg> answer) {
        if (!answer.ok()) return done(answer.status());
        done(std::move(answer->payload));
      }));
}

void MeshNode::AskKeys(const Address& to, KeyRequestMsg request, int64_t timeout_ns,
                       std::function<void(Result<KeyResponseMsg>)> done) {
  Ask(to, std::move(request), timeout_ns, Expect<KeyResponseMsg>(to, std::move(done)));
}

void MeshNode::FallbackPing(const Address& to, PingMsg ping, int64_t timeout_ns,
                            std::function<void(bool)> done) {
  Result<Bytes> request = EncodeExchangeRequest(ping);
  if (!request.ok()) return;
  stats_.exchanges_out++;
  stats_.bytes_out += request->size();
  uint32_t seq = ping.seq;
  transport_.Exchange(to, std::move(request).value(), timeout_ns,
                      life_.Guard([this, to, seq, done = std::move(done)](Result<Bytes> response) {
                        if (!response.ok()) {
                          stats_.exchanges_failed++;
                          return done(false);
                        }
                        stats_.bytes_in += response->size();
                        Result<ExchangeResponseMsg> r = DecodeExchangeResponse(*response);
                        auto* ack = r.ok() ? std::get_if<AckMsg>(&r.value()) : nullptr;
                        if (!r.ok())
                          DropMalformed(to, "the answer to a fallback ping", r.status());
                        else if (ack == nullptr)
                          DropMalformed(to, "the answer to a fallback ping",
                                        InvalidArgument("the answer is not an ack"),
                                        WireCheck::kUnexpectedKind);
                        done(ack != nullptr && ack->seq == seq);
                      }));
}

void MeshNode::PushPullTick() {
  if (stopped_) return;
  int64_t interval = PushPullInterval(config_.push_pull_interval_ns, membership_.NumLive());
  runtime_.After(interval, life_.Guard([this] { PushPullTick(); }));
  const Member* peer = membership_.RandomLiveMember();
  if (peer == nullptr) return;
  Address to = interner_->Get(peer->addr);
  Result<Bytes> request = EncodeExchangeRequest(LocalState(false, nullptr));
  if (!request.ok()) {
    stats_.encode_failures++;
    return;
  }
  stats_.push_pulls++;
  stats_.exchanges_out++;
  stats_.bytes_out += request->size();
  transport_.Exchange(to, std::move(request).value(), config_.exchange_timeout_ns,
                      life_.Guard([this, to](Result<Bytes> response) {
                        if (!response.ok()) {
                          stats_.exchanges_failed++;
                          return;
                        }
                        stats_.bytes_in += response->size();
                        Result<ExchangeResponseMsg> r = DecodeExchangeResponse(*response);
                        auto* pp = r.ok() ? std::get_if<PushPullMsg>(&r.value()) : nullptr;
                        if (!r.ok())
                          return DropMalformed(to, "the answer to a push-pull", r.status());
                        if (pp == nullptr)
                          return DropMalformed(to, "the answer to a push-pull",
                                               InvalidArgument("the answer is not a push-pull"),
                                               WireCheck::kUnexpectedKind);
                        MergeRemote(*pp);
                        PushMissingTables(to, pp->members);
                      }));
}

void MeshNode::TryJoin(int attempt) {
  if (stopped_ || joined_) return;
  Result<Bytes> request = EncodeExchangeRequest(LocalState(true, nullptr));
  if (!request.ok()) {
    stats_.encode_failures++;
    return;
  }
  // Every seed is asked; the attempt failed when all have answered badly.
  auto pending = std::make_shared<size_t>(seeds_.size());
  for (const Address& seed : seeds_) {
    stats_.join_attempts++;
    stats_.exchanges_out++;
    stats_.bytes_out += request->size();
    transport_.Exchange(
        seed, request.value(), config_.exchange_timeout_ns,
        life_.Guard([this, seed, attempt, pending](Result<Bytes> response) {
          Result<ExchangeResponseMsg> r = response.ok()
                                              ? DecodeExchangeResponse(*response)
                                              : Result<ExchangeResponseMsg>(response.status());
          auto* pp = r.ok() ? std::get_if<PushPullMsg>(&r.value()) : nullptr;
          if (pp != nullptr) {
            stats_.bytes_in += response->size();
            MergeRemote(*pp);
            PushMissingTables(seed, pp->members);
            if (!joined_)
              FM_LOG(Info, "mesh") << config_.name << " joined the mesh through " << seed;
            joined_ = true;
          } else if (response.ok()) {
            // The seed answered, but not with its state: a malformed answer.
            stats_.bytes_in += response->size();
            if (!r.ok())
              DropMalformed(seed, "the answer to a join", r.status());
            else
              DropMalformed(seed, "the answer to a join",
                            InvalidArgument("the answer is not a push-pull"),
                            WireCheck::kUnexpectedKind);
          } else {
            stats_.exchanges_failed++;
          }
          if (--*pending > 0 || joined_) return;
          int64_t delay = config_.join_retry_first_ns << std::min(attempt, 20);
          delay = std::min(delay, config_.join_retry_max_ns);
          FM_LOG(Warn, "mesh") << config_.name << " could not join through any of " << seeds_.size()
                               << " seeds (last: " << r.status().ToString() << "); retrying in "
                               << delay / kMs << " ms";
          runtime_.After(delay, life_.Guard([this, attempt] { TryJoin(attempt + 1); }));
        }));
  }
}

}  // namespace flowmesh::mesh
