// MeshService: the mesh's thread, transports and keyring inside meshd.
#include "node/daemon/mesh_service.h"

#include <algorithm>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/common/sched.h"
#include "node/look/local_directory.h"
#include "node/mesh/refusals.h"

namespace flowmesh {
namespace {

constexpr std::string_view kPeersMetaKey = "mesh.peers";
constexpr auto kAskTimeout = std::chrono::seconds(2);
constexpr auto kLeaveTimeout = std::chrono::seconds(3);
constexpr int kSavePeersEvery = 30;  // publisher ticks (seconds)
// Look queries answered at once; more are refused (the asker shows an
// `unreachable` leaf) rather than queued behind a slow store.
constexpr int kMaxQueriesInFlight = 16;

// The address peers reach us at, when the socket is bound to a wildcard.
class AdvertiseAs final : public mesh::Transport {
 public:
  AdvertiseAs(mesh::Transport& inner, mesh::Address advertised)
      : inner_(inner), advertised_(std::move(advertised)) {}
  const mesh::Address& LocalAddress() const override { return advertised_; }
  void SetHandlers(PacketHandler p, ExchangeHandler e) override {
    inner_.SetHandlers(std::move(p), std::move(e));
  }
  void SendPacket(const mesh::Address& to, mesh::Bytes packet) override {
    inner_.SendPacket(to, std::move(packet));
  }
  void Exchange(const mesh::Address& to, mesh::Bytes request, int64_t timeout_ns,
                ExchangeDone done) override {
    inner_.Exchange(to, std::move(request), timeout_ns, std::move(done));
  }
  size_t MaxPacketBytes() const override { return inner_.MaxPacketBytes(); }
  void SetAdmission(size_t head_bytes, Admission admit) override {
    inner_.SetAdmission(head_bytes, std::move(admit));
  }

 private:
  mesh::Transport& inner_;
  mesh::Address advertised_;
};

std::vector<std::string> SplitCommas(std::string_view s) {
  std::vector<std::string> out;
  std::stringstream in{std::string(s)};
  for (std::string part; std::getline(in, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

std::string TableFingerprint(const LocalTable& t) {
  std::string out;
  for (const IpAddr& a : t.addresses) out += a.ToString() + ",";
  out += "|";
  for (const mesh::EndpointSummary& e : t.endpoints)
    out += Endpoint{e.addr, e.port}.ToString() + "/" + std::to_string(e.pid) + "/" + e.comm + "/" +
           WorkloadGroupKey(e.workload) + ",";
  out += "|";
  for (const mesh::AliasSummary& a : t.aliases)
    out += a.front.ToString() + ">" + a.target.ToString() + (a.balancer ? "/b/" : "/p/") +
           std::to_string(a.pid) + "/" + a.comm + ",";
  return out;
}

}  // namespace

bool Gossipable(const IpAddr& a) {
  if (a.is_loopback() || a.is_unspecified()) return false;
  // fe80::/10 is meaningless off the link it was seen on.
  return a.is_v4() || a.bytes[0] != 0xfe || (a.bytes[1] & 0xc0) != 0x80;
}

std::vector<IpAddr> GossipAddresses() {
  std::vector<IpAddr> out;
  for (const IpAddr& a : LocalAddresses())
    if (Gossipable(a)) out.push_back(a);
  return out;
}

Result<std::unique_ptr<MeshService>> MeshService::Start(MeshServiceOptions options, Store& store,
                                                        std::function<LocalTable()> local) {
  std::unique_ptr<MeshService> svc(new MeshService());
  svc->options_ = std::move(options);
  svc->store_ = &store;
  svc->local_ = std::move(local);

  IpAddr advertise = svc->options_.advertise;
  if (advertise.family == 0 || advertise.is_unspecified()) {
    if (!svc->options_.bind.addr.is_unspecified()) {
      advertise = svc->options_.bind.addr;
    } else {
      std::vector<IpAddr> mine = GossipAddresses();
      std::stable_partition(mine.begin(), mine.end(), [](const IpAddr& a) { return a.is_v4(); });
      if (mine.empty())
        return InvalidArgument(
            "cannot tell which address peers should use to reach this node (no non-loopback "
            "address); give --advertise IP or --bind IP:PORT");
      advertise = mine.front();
    }
  }
  svc->advertised_ = Endpoint{advertise, svc->options_.bind.port}.ToString();

  if (!svc->options_.key_file.empty()) {
    FM_ASSIGN_OR_RETURN(svc->keyring_, mesh::LoadKeyringFile(svc->options_.key_file));
  } else if (!svc->options_.insecure) {
    return InvalidArgument(
        "refusing to join a mesh without a cluster key: give --cluster-key-file FILE (create "
        "one with: head -c32 /dev/urandom | base64 > FILE; chmod 600 FILE), or --insecure to "
        "run the mesh unsealed on a trusted network");
  }

  svc->runtime_ = std::make_unique<mesh::AsioRuntime>(svc->io_);
  FM_ASSIGN_OR_RETURN(svc->udp_tcp_, mesh::AsioTransport::Bind(svc->io_, svc->options_.bind,
                                                               svc->options_.transport));
  svc->advertise_as_ = std::make_unique<AdvertiseAs>(*svc->udp_tcp_, svc->advertised_);
  if (svc->options_.insecure && svc->options_.key_file.empty()) {
    svc->sealed_ = std::make_unique<mesh::SealedTransport>(*svc->advertise_as_);
  } else {
    mesh::SealOptions so;
    so.label = svc->options_.label;
    svc->sealed_ = std::make_unique<mesh::SealedTransport>(*svc->advertise_as_, svc->keyring_, so);
  }

  mesh::MeshConfig config;
  config.name = svc->options_.node_name;
  config.node_id = store.meta().node_id;
  config.generation = store.meta().generation;
  svc->node_ = std::make_unique<mesh::MeshNode>(*svc->runtime_, *svc->sealed_, config);
  {
    MeshService* raw = svc.get();
    svc->node_->SetQueryHandler(
        [raw](const mesh::Address&, mesh::Bytes query, mesh::Transport::ExchangeReply reply) {
          raw->ServeQuery(std::move(query), std::move(reply));
        });
    mesh::KeyRotationOptions ko{raw->options_.node_name, raw->options_.key_file,
                                raw->sealed_->insecure()};
    raw->keys_ = std::make_unique<mesh::KeyRotation>(
        std::move(ko), raw->keyring_, raw->io_, raw->query_pool_, [raw] { return raw->Members(); },
        [raw](const mesh::Address& to, mesh::KeyRequestMsg request, int64_t timeout_ns,
              std::function<void(Result<mesh::KeyResponseMsg>)> done) {
          raw->OnNode(std::move(done), [to, request = std::move(request), timeout_ns](
                                           mesh::MeshNode& node, auto done) mutable {
            node.AskKeys(to, std::move(request), timeout_ns, std::move(done));
          });
        });
    svc->node_->SetKeyHandler([raw](const mesh::Address&, mesh::KeyRequestMsg request,
                                    std::function<void(Result<mesh::KeyResponseMsg>)> reply) {
      raw->keys_->Serve(request, std::move(reply));
    });
  }

  std::vector<std::string> seeds;
  for (const std::string& j : svc->options_.join) seeds.push_back(j);
  Result<std::optional<std::string>> saved = store.GetMeta(std::string(kPeersMetaKey));
  if (saved.ok() && saved->has_value())
    for (std::string& p : SplitCommas(**saved))
      if (std::find(seeds.begin(), seeds.end(), p) == seeds.end()) seeds.push_back(std::move(p));
  svc->node_->Start(seeds);
  FM_LOG(Info, "mesh") << "node " << config.name << " (generation " << config.generation << ") on "
                       << svc->options_.bind.ToString() << ", advertised as " << svc->advertised_
                       << ", "
                       << (svc->sealed_->insecure()
                               ? "UNSEALED (--insecure)"
                               : "sealed with " + std::to_string(svc->keyring_.size()) +
                                     " key(s), label '" + svc->options_.label + "'")
                       << "; joining through " << seeds.size() << " seed(s)";

  MeshService* raw = svc.get();
  raw->thread_ = std::thread([raw] {
    SetThreadName("mesh-io");
    auto guard = asio::make_work_guard(raw->io_);
    raw->io_.run();
  });
  raw->publisher_ = std::thread([raw] { raw->PublishLoop(); });
  return svc;
}

MeshService::~MeshService() { Stop(); }

template <typename T>
T MeshService::Ask(std::function<T()> fn, T fallback) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> result = promise->get_future();
  asio::post(io_, [fn = std::move(fn), promise] { promise->set_value(fn()); });
  if (result.wait_for(kAskTimeout) != std::future_status::ready) return fallback;
  return result.get();
}

void MeshService::ServeQuery(mesh::Bytes query, mesh::Transport::ExchangeReply reply) {
  if (!options_.answer_query) return reply(Unavailable("this node answers no look queries"));
  if (queries_in_flight_ >= kMaxQueriesInFlight) {
    queries_refused_++;
    std::string why = "refused: " + options_.node_name + " is busy with " +
                      std::to_string(queries_in_flight_) + " look queries in flight";
    if (options_.refuse_query) return reply(options_.refuse_query(query, why));
    return reply(Unavailable(why));
  }
  queries_in_flight_++;
  int64_t arrived_ns = MonotonicNs();
  asio::post(query_pool_, [this, arrived_ns, query = std::move(query),
                           reply = std::move(reply)]() mutable {
    Result<mesh::Bytes> answer = options_.answer_query(query);
    if (options_.query_latency) options_.query_latency->ObserveNs(MonotonicNs() - arrived_ns);
    asio::post(io_, [this, answer = std::move(answer), reply = std::move(reply)]() mutable {
      queries_in_flight_--;
      reply(std::move(answer));
    });
  });
}

Result<std::vector<mesh::MemberKeys>> MeshService::Keys(mesh::KeyOp op, const std::string& key) {
  return keys_->Run(op, key);
}

void MeshService::Query(const mesh::Address& to, mesh::Bytes query, int64_t timeout_ns,
                        mesh::Transport::ExchangeDone done) {
  OnNode(std::move(done), [to, query = std::move(query), timeout_ns](mesh::MeshNode& node,
                                                                     auto done) mutable {
    node.Query(to, std::move(query), timeout_ns, std::move(done));
  });
}

void MeshService::PublishLoop() {
  SetThreadName("mesh-publish");
  std::unique_lock lock(mu_);
  for (int tick = 0; !stopping_; tick++) {
    lock.unlock();
    LocalTable table = local_();
    std::string fp = TableFingerprint(table);
    if (fp != last_table_) {
      last_table_ = std::move(fp);
      asio::post(io_, [this, table = std::move(table)]() mutable {
        node_->SetLocalTable(std::move(table.addresses), std::move(table.endpoints),
                             std::move(table.aliases));
      });
    }
    // Members come first for the mesh port's unauthenticated slots; a second
    // late is fine, they need those slots only under attack.
    asio::post(io_, [this] { udp_tcp_->SetKnownPeers(MemberAddresses()); });
    // Often enough that a node killed soon after joining still rejoins.
    if (tick < kSavePeersEvery ? tick % 2 == 1 : tick % kSavePeersEvery == 0) SavePeers();
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

std::vector<IpAddr> MeshService::MemberAddresses() const {
  std::vector<IpAddr> out;
  // Dead members too: one coming back must get in to rejoin. Not this node:
  // its address may be a stranger's too (a shared or NATed one).
  for (const mesh::MemberView& m : node_->Members())
    if (m.state != mesh::MemberState::kLeft && m.name != options_.node_name)
      if (Result<Endpoint> ep = Endpoint::Parse(m.address); ep.ok()) out.push_back(ep->addr);
  return out;
}

void MeshService::SavePeers() {
  std::vector<mesh::Address> peers =
      Ask<std::vector<mesh::Address>>([this] { return node_->KnownPeers(); }, {});
  if (peers.empty()) return;
  std::sort(peers.begin(), peers.end());
  std::string joined;
  for (const mesh::Address& p : peers) joined += (joined.empty() ? "" : ",") + p;
  if (joined == saved_peers_) return;
  saved_peers_ = joined;
  Status s = store_->PutMeta(std::string(kPeersMetaKey), joined);
  if (!s.ok()) FM_LOG(Warn, "mesh") << "cannot remember the known peers: " << s.message();
}

void MeshService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // Start failed before the mesh ran (no port, no keyring): there is nobody
  // to leave and no thread to ask; waiting for a leave would only delay the
  // error by seconds.
  if (!thread_.joinable()) {
    node_.reset();
    sealed_.reset();
    advertise_as_.reset();
    udp_tcp_.reset();
    runtime_.reset();
    return;
  }
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (publisher_.joinable()) publisher_.join();
  SavePeers();
  auto left = std::make_shared<std::promise<void>>();
  std::future<void> done = left->get_future();
  asio::post(io_, [this, left] { node_->Leave([left] { left->set_value(); }); });
  if (done.wait_for(kLeaveTimeout) != std::future_status::ready)
    FM_LOG(Warn, "mesh") << "leave was not acknowledged within 3s; peers will notice by probing";
  // Queries being answered finish (they read the store, which outlives us);
  // queued ones are dropped, and so are their answers with the io_context.
  query_pool_.stop();
  query_pool_.join();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  // The io_context no longer runs: take the protocol down before its transports.
  node_.reset();
  sealed_.reset();
  advertise_as_.reset();
  udp_tcp_.reset();
  runtime_.reset();
}

std::vector<mesh::MemberView> MeshService::Members() {
  return Ask<std::vector<mesh::MemberView>>([this] { return node_->Members(); }, {});
}

Result<std::vector<mesh::NodeTable>> MeshService::Tables(bool with_gone) {
  using Got = std::optional<std::vector<mesh::NodeTable>>;
  Got got = Ask<Got>([this, with_gone] { return Got(node_->Tables(with_gone)); }, {});
  if (!got)
    return Unavailable("the mesh thread did not hand over the members' tables within " +
                       std::to_string(kAskTimeout.count()) + " s (meshd overloaded?); try again");
  return std::move(*got);
}

MeshStatus MeshService::Summary() {
  // What status shows if the mesh thread does not answer in time.
  MeshStatus unanswered;
  unanswered.enabled = true;
  unanswered.address = advertised_;
  return Ask<MeshStatus>(
      [this] {
        mesh::MeshStats st = node_->Stats();
        const mesh::SealStats& seal = sealed_->stats();
        MeshStatus m;
        m.enabled = true;
        m.address = advertised_;
        m.sealed = !sealed_->insecure();
        m.keys = static_cast<uint32_t>(keyring_.size());
        m.alive = st.alive;
        m.suspect = st.suspect;
        m.dead = st.dead;
        m.left = st.left;
        m.bytes_in = st.bytes_in;
        m.bytes_out = st.bytes_out;
        m.malformed = st.malformed + seal.open_failed + seal.malformed + seal.replayed +
                      seal.before_floor + seal.too_old + seal.too_new;
        m.queries_in = st.queries_in;
        m.refusals = mesh::Refusals(udp_tcp_->stats(), seal);
        for (Refusal& r : mesh::Refusals(st)) m.refusals.push_back(std::move(r));
        m.refusals.push_back({"look_busy", queries_refused_,
                              "look queries from other members refused because " +
                                  std::to_string(kMaxQueriesInFlight) +
                                  " were already being answered; each asker shows an "
                                  "unreachable node saying so"});
        m.refusals.push_back({"key_op_misaddressed", keys_->misaddressed(),
                              "key operations addressed to another member (a replay of "
                              "another member's traffic), refused; the keyring is unchanged"});
        const mesh::FlapStats& f = st.membership.flaps;
        m.suspicions_raised = f.suspicions_raised;
        m.suspicions_received = f.suspicions_received;
        m.refutations = f.refutations;
        m.incarnation_bumps = f.incarnation_bumps;
        m.false_deaths = f.false_deaths;
        m.flaps = f.flaps;
        for (const mesh::MemberFlapView& v : st.flapping)
          m.flapping.push_back({v.name, v.flaps, v.false_deaths});
        return m;
      },
      unanswered);
}

mesh::MeshStats MeshService::Stats() {
  return Ask<mesh::MeshStats>([this] { return node_->Stats(); }, {});
}

}  // namespace flowmesh
