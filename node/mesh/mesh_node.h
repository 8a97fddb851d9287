// One member of the mesh: what meshd uses. It wires membership (SWIM with
// Lifeguard) and endpoint tables (Scuttlebutt) to a Runtime and a Transport:
// decodes packets and exchanges (counting and dropping malformed ones),
// piggybacks queued gossip on every packet, gossips to a few peers every
// gossip interval, runs push-pull full syncs, joins through seeds with
// back-off and leaves gracefully. Everything runs on the runtime's thread.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "node/common/log.h"
#include "node/common/net.h"
#include "node/mesh/broadcast_queue.h"
#include "node/mesh/config.h"
#include "node/mesh/endpoint_table.h"
#include "node/mesh/lifetime.h"
#include "node/mesh/membership.h"
#include "node/mesh/table_sync.h"
#include "node/mesh/transport.h"
#include "node/mesh/wire.h"

namespace flowmesh::mesh {

struct NodeTable {
  std::string name;
  std::string node_id;
  uint64_t generation = 0;
  Address address;
  std::vector<IpAddr> addresses;
  std::vector<EndpointSummary> endpoints;
  std::vector<AliasSummary> aliases;
  MemberState state = MemberState::kAlive;
  // Its table of this life has arrived (an empty one counts): false right
  // after a member joins, until its first table reaches this node.
  bool table_known = false;
};

struct MemberView {
  std::string name;
  Address address;
  MemberState state = MemberState::kAlive;
  uint32_t incarnation = 0;
  int64_t state_change_ns = 0;
  std::string node_id;
  uint64_t generation = 0;
  size_t endpoints = 0;
};

// A member that flapped, as this node saw it (see flapping.h).
struct MemberFlapView {
  std::string name;
  uint64_t flaps = 0;         // suspect -> alive returns
  uint64_t false_deaths = 0;  // held dead, then alive in the same life
};

struct MeshStats {
  uint64_t packets_in = 0;
  uint64_t packets_out = 0;
  uint64_t bytes_in = 0;  // packets and exchanges
  uint64_t bytes_out = 0;
  uint64_t exchanges_in = 0;
  uint64_t exchanges_out = 0;
  uint64_t exchanges_failed = 0;
  uint64_t malformed = 0;  // packets, exchanges and answers that opened but did not decode
  std::array<uint64_t, kWireChecks> malformed_by_check{};  // ... by WireCheck
  uint64_t encode_failures = 0;
  uint64_t gossip_sent = 0;  // messages piggybacked
  uint64_t gossip_received = 0;
  uint64_t push_pulls = 0;
  uint64_t queries_in = 0;  // look queries answered for others
  uint64_t queries_out = 0;
  uint64_t join_attempts = 0;
  size_t queued_broadcasts = 0;
  int awareness = 0;
  size_t alive = 0, suspect = 0, dead = 0, left = 0;
  MembershipStats membership;
  TableSyncStats tables;
  std::vector<MemberFlapView> flapping;  // most first, at most kMaxFlappingShown
};

// Members listed in MeshStats::flapping: enough to name the culprits, few
// enough for a status line and a metrics scrape in a large mesh.
constexpr size_t kMaxFlappingShown = 32;

class MeshNode : private MembershipIo, private TableSyncIo {
 public:
  MeshNode(Runtime& runtime, Transport& transport, MeshConfig config);
  ~MeshNode() override;
  MeshNode(const MeshNode&) = delete;
  MeshNode& operator=(const MeshNode&) = delete;

  // Starts the protocols and joins through `seeds` (retrying with back-off
  // until one answers); no seeds: this node starts a mesh of its own.
  void Start(std::vector<Address> seeds);
  // Simulations and bench/ only: starts as a member of a mesh that long ago
  // converged on `members` (all alive, this node among them), without the
  // N^2 gossip of N simultaneous joins, so that steady-state behaviour of
  // 10,000 nodes can be measured.
  void StartConverged(const std::vector<AliveMsg>& members);
  // Tells the mesh this node leaves, then stops; done runs after that.
  void Leave(std::function<void()> done);
  bool joined() const { return joined_; }

  // This node's addresses and listening endpoints (replaces the previous).
  void SetLocalTable(std::vector<IpAddr> addresses, std::vector<EndpointSummary> endpoints,
                     std::vector<AliasSummary> aliases = {});

  std::vector<MemberView> Members() const;
  // Tables of live members (alive or suspect), this node's included; with
  // `with_gone`, also what is still held of dead and departed members (look
  // shows their addresses as unreachable rather than unknown).
  std::vector<NodeTable> Tables(bool with_gone = false) const;
  MeshStats Stats() const;
  // Addresses of live peers, to persist for a later rejoin.
  std::vector<Address> KnownPeers() const;

  // Queries of the layer above (look) ride the mesh's sealed exchanges, so
  // they need no port, key or connection handling of their own. The handler
  // runs on the runtime's thread and may answer later (reply on that thread);
  // the mesh neither reads nor interprets the bytes.
  using QueryHandler =
      std::function<void(const Address& from, Bytes query, Transport::ExchangeReply reply)>;
  void SetQueryHandler(QueryHandler handler) { query_handler_ = std::move(handler); }
  // Sends one query to the member at `to`; `done` runs once, on the runtime's
  // thread, with the answer's bytes or an error (timeout, refused, no handler).
  void Query(const Address& to, Bytes query, int64_t timeout_ns, Transport::ExchangeDone done);

  // Key operations (key_rotation.h) ride the same exchanges, typed: the
  // handler runs on the runtime's thread and may answer later on it.
  using KeyHandler = std::function<void(const Address& from, KeyRequestMsg request,
                                        std::function<void(Result<KeyResponseMsg>)> reply)>;
  void SetKeyHandler(KeyHandler handler) { key_handler_ = std::move(handler); }
  // Sends one key operation to the member at `to`; `done` runs once, on the
  // runtime's thread, with its keyring after it or an error.
  void AskKeys(const Address& to, KeyRequestMsg request, int64_t timeout_ns,
               std::function<void(Result<KeyResponseMsg>)> done);

  // Called on every change of a member's state as this node sees it.
  using StateObserver = std::function<void(const std::string& member, MemberState state)>;
  void SetObserver(StateObserver observer) { observer_ = std::move(observer); }

  // Cheap probes of the state, for tests and bench/.
  size_t NumAlive() const;
  std::optional<MemberState> StateOf(const std::string& name) const;
  // What this node holds of `owner`'s table (zeros: nothing).
  TableDigest TableDigestOf(const std::string& owner) const;
  const MeshConfig& config() const { return config_; }

 private:
  // MembershipIo
  void Send(const Address& to, PrimaryMsg primary, std::optional<GossipMsg> extra) override;
  void FallbackPing(const Address& to, PingMsg ping, int64_t timeout_ns,
                    std::function<void(bool)> done) override;
  void Broadcast(uint32_t subject, GossipMsg gossip, std::function<void()> on_done) override;
  void MemberGeneration(uint32_t name, uint64_t generation) override;
  void StateChanged(uint32_t name, MemberState state) override {
    if (observer_) observer_(interner_->Get(name), state);
  }
  // TableSyncIo
  void SendTables(const Address& to, PrimaryMsg primary) override {
    Send(to, std::move(primary), {});
  }
  void BroadcastTable(uint32_t owner, GossipMsg notice) override;

  void Begin(const std::vector<AliveMsg>* preload);
  void OnPacket(const Address& from, std::span<const uint8_t> bytes);
  void OnExchange(const Address& from, std::span<const uint8_t> bytes,
                  Transport::ExchangeReply reply);
  Result<Bytes> Answer(const Address& from, ExchangeRequestMsg& request);
  // The reply of a handler of the layer above, encoded when it comes.
  template <typename Reply>
  std::function<void(Result<Reply>)> ReplyLater(Transport::ExchangeReply reply,
                                                 ExchangeResponseMsg (*wrap)(Reply));
  // A query or key exchange to `to`: counted, sent, its answer decoded.
  void Ask(const Address& to, const ExchangeRequestMsg& request, int64_t timeout_ns,
           std::function<void(Result<ExchangeResponseMsg>)> done);
  template <typename Reply>
  std::function<void(Result<ExchangeResponseMsg>)> Expect(
      const Address& to, std::function<void(Result<Reply>)> done);
  void Dispatch(const Address& from, PacketMsg& packet);
  // Counts a message that opened but failed a check, by the check, and logs
  // which (at most one line per 10 s, with how many others were held back).
  void DropMalformed(const Address& from, std::string_view what, const Status& why);
  void DropMalformed(const Address& from, std::string_view what, const Status& why,
                     WireCheck check);

  void GossipTick();
  void PushPullTick();
  void GcTick();
  void TryJoin(int attempt);
  PushPullMsg LocalState(bool join, const std::vector<MemberEntryMsg>* peer) const;
  void MergeRemote(const PushPullMsg& remote);
  void PushMissingTables(const Address& to, const std::vector<MemberEntryMsg>& peer);
  bool Shareable(uint32_t owner) const;
  void Shutdown();
  int Limit() const { return RetransmitLimit(config_.retransmit_mult, membership_.NumLive()); }

  Runtime& runtime_;
  Transport& transport_;
  MeshConfig config_;
  std::shared_ptr<Interner> interner_;
  BroadcastQueue queue_;
  Membership membership_;
  std::unique_ptr<TableSync> tables_;
  std::vector<Address> seeds_;
  bool started_ = false;
  bool stopped_ = false;
  bool joined_ = false;
  StateObserver observer_;
  QueryHandler query_handler_;
  KeyHandler key_handler_;
  mutable MeshStats stats_;
  log::RateLimit malformed_log_{10 * kSecond};
  Lifetime life_;
};

}  // namespace flowmesh::mesh
