// MeshNode: packets in and out, gossip loop, start, leave. Push-pull and join
// are in mesh_sync.cc, the read-only views in mesh_views.cc.
#include "node/mesh/mesh_node.h"

#include "node/common/log.h"
#include "node/mesh/wire.h"

namespace flowmesh::mesh {

MeshNode::MeshNode(Runtime& runtime, Transport& transport, MeshConfig config)
    : runtime_(runtime),
      transport_(transport),
      config_(std::move(config)),
      interner_(config_.interner ? config_.interner : std::make_shared<Interner>()),
      queue_(config_.max_queued_broadcasts),
      membership_(runtime, *interner_, config_, static_cast<MembershipIo&>(*this)) {
  TableSyncIo& io = *this;
  tables_ = std::make_unique<TableSync>(runtime, *interner_, config_, io,
                                        interner_->Intern(config_.name), [this](uint32_t name) {
                                          const Member* m = membership_.members().Find(name);
                                          return m == nullptr ? uint64_t{0} : m->generation;
                                        });
}

MeshNode::~MeshNode() { transport_.SetHandlers(nullptr, nullptr); }

void MeshNode::Begin(const std::vector<AliveMsg>* preload) {
  started_ = true;
  transport_.SetHandlers(
      [this](const Address& from, std::span<const uint8_t> bytes) { OnPacket(from, bytes); },
      [this](const Address& from, std::span<const uint8_t> bytes, Transport::ExchangeReply reply) {
        OnExchange(from, bytes, std::move(reply));
      });
  membership_.Start(transport_.LocalAddress());
  if (preload != nullptr) {
    // Everyone already knows about everyone: nothing to announce.
    queue_.Invalidate(membership_.self(), BroadcastQueue::Topic::kMember);
    membership_.Preload(*preload);
  }
  // Random phases, so that nodes started together do not gossip in step.
  auto phase = [this](int64_t interval) {
    return static_cast<int64_t>(runtime_.Random() % static_cast<uint64_t>(interval));
  };
  runtime_.After(phase(config_.gossip_interval_ns), life_.Guard([this] { GossipTick(); }));
  int64_t pp = PushPullInterval(config_.push_pull_interval_ns, membership_.NumLive());
  runtime_.After(phase(pp), life_.Guard([this] { PushPullTick(); }));
  runtime_.After(phase(60 * kSecond), life_.Guard([this] { GcTick(); }));
}

void MeshNode::Start(std::vector<Address> seeds) {
  if (started_) return;
  Begin(nullptr);
  for (Address& s : seeds)
    if (s != transport_.LocalAddress()) seeds_.push_back(std::move(s));
  if (seeds_.empty()) {
    joined_ = true;
  } else {
    TryJoin(0);
  }
}

void MeshNode::StartConverged(const std::vector<AliveMsg>& members) {
  if (started_) return;
  Begin(&members);
  joined_ = true;
}

void MeshNode::Leave(std::function<void()> done) {
  if (!started_ || stopped_) {
    if (done) runtime_.After(0, std::move(done));
    return;
  }
  membership_.Leave(life_.Guard([this, done = std::move(done)] {
    Shutdown();
    if (done) done();
  }));
}

void MeshNode::Shutdown() {
  stopped_ = true;
  membership_.Stop();
  transport_.SetHandlers(nullptr, nullptr);
}

void MeshNode::SetLocalTable(std::vector<IpAddr> addresses,
                             std::vector<EndpointSummary> endpoints,
                             std::vector<AliasSummary> aliases) {
  tables_->SetLocal(config_.generation, addresses, endpoints, aliases);
}

void MeshNode::Send(const Address& to, PrimaryMsg primary, std::optional<GossipMsg> extra) {
  if (stopped_) return;
  std::vector<std::shared_ptr<const BroadcastQueue::Item>> taken;
  std::vector<const EncodedGossip*> gossip;
  EncodedGossip extra_encoded;
  if (extra) {
    extra_encoded = EncodeGossip(*extra);
    gossip.push_back(&extra_encoded);
  }
  if (!queue_.empty()) {
    size_t used = EstimatePrimaryBytes(primary) + (extra ? extra_encoded.packed_bytes : 0);
    if (used < kPacketBudgetBytes) {
      taken = queue_.Take(kPacketBudgetBytes - used, Limit());
      for (const auto& item : taken) gossip.push_back(&item->gossip);
    }
  }
  Result<Bytes> bytes = EncodePacket(primary, gossip);
  // The estimates overshot: shed piggybacked gossip until it fits.
  while (!bytes.ok() && gossip.size() > (extra ? 1u : 0u)) {
    gossip.pop_back();
    bytes = EncodePacket(primary, gossip);
  }
  if (!bytes.ok()) {
    stats_.encode_failures++;
    FM_LOG(Warn, "mesh") << "cannot encode a packet to " << to << ": " << bytes.status().ToString();
    return;
  }
  stats_.packets_out++;
  stats_.bytes_out += bytes->size();
  stats_.gossip_sent += gossip.size();
  transport_.SendPacket(to, std::move(bytes).value());
}

void MeshNode::Broadcast(uint32_t subject, GossipMsg gossip, std::function<void()> on_done) {
  std::function<void()> done;
  if (on_done) {
    // The queue calls back from inside Take; run it outside.
    done = [this, on_done = std::move(on_done)] { runtime_.After(0, life_.Guard(on_done)); };
  }
  queue_.Queue(subject, BroadcastQueue::Topic::kMember, EncodeGossip(gossip), std::move(done));
}

void MeshNode::BroadcastTable(uint32_t owner, GossipMsg notice) {
  queue_.Queue(owner, BroadcastQueue::Topic::kTable, EncodeGossip(notice));
}

void MeshNode::MemberGeneration(uint32_t name, uint64_t generation) {
  if (tables_) tables_->MemberGeneration(name, generation);
}

void MeshNode::OnPacket(const Address& from, std::span<const uint8_t> bytes) {
  if (stopped_) return;
  stats_.packets_in++;
  stats_.bytes_in += bytes.size();
  Result<PacketMsg> packet = DecodePacket(bytes);
  if (!packet.ok()) return DropMalformed(from, "a packet", packet.status());
  Dispatch(from, packet.value());
}

void MeshNode::DropMalformed(const Address& from, std::string_view what, const Status& why) {
  DropMalformed(from, what, why, CheckOf(why));
}

void MeshNode::DropMalformed(const Address& from, std::string_view what, const Status& why,
                             WireCheck check) {
  stats_.malformed++;
  stats_.malformed_by_check[static_cast<size_t>(check)]++;
  // It passed the seal, so a member of this mesh sent it: another version of
  // meshd, or a bug. Worth a line, but not one per packet.
  uint64_t held = 0;
  if (!malformed_log_.Allow(runtime_.NowNs(), &held)) return;
  FM_LOG(Warn, "mesh") << config_.name << " dropped " << what << " from " << from
                       << " that failed the check '" << WireCheckName(check)
                       << "': " << why.message()
                       << (held > 0 ? "; and " + std::to_string(held) +
                                          " more malformed messages since the last such line"
                                    : std::string());
}

void MeshNode::Dispatch(const Address& from, PacketMsg& packet) {
  // Gossip first: a refutation queued for a suspicion that came with a ping
  // then rides back on the ack.
  stats_.gossip_received += packet.gossip.size();
  for (const GossipMsg& g : packet.gossip) {
    if (auto* a = std::get_if<AliveMsg>(&g))
      membership_.HandleAlive(*a);
    else if (auto* s = std::get_if<SuspectMsg>(&g))
      membership_.HandleSuspect(*s);
    else if (auto* d = std::get_if<DeadMsg>(&g))
      membership_.HandleDead(*d);
    else
      tables_->HandleNotice(from, std::get<TableDeltaMsg>(g));
  }
  std::visit(
      [&](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, PingMsg>) membership_.HandlePing(from, m);
        if constexpr (std::is_same_v<T, AckMsg>) membership_.HandleAck(m);
        if constexpr (std::is_same_v<T, NackMsg>) membership_.HandleNack(m);
        if constexpr (std::is_same_v<T, PingReqMsg>) membership_.HandlePingReq(from, m);
        if constexpr (std::is_same_v<T, TableRequestMsg>) tables_->HandleRequest(from, m);
        if constexpr (std::is_same_v<T, TableReplyMsg>) tables_->HandleReply(from, m);
      },
      packet.primary);
}

void MeshNode::GossipTick() {
  if (stopped_) return;
  runtime_.After(config_.gossip_interval_ns, life_.Guard([this] { GossipTick(); }));
  if (queue_.empty()) return;
  for (const Member* target : membership_.GossipTargets(config_.gossip_nodes)) {
    if (queue_.empty()) break;
    Send(interner_->Get(target->addr), std::monostate{}, std::nullopt);
  }
}

void MeshNode::GcTick() {
  if (stopped_) return;
  tables_->CollectGarbage();
  runtime_.After(60 * kSecond, life_.Guard([this] { GcTick(); }));
}

}  // namespace flowmesh::mesh
