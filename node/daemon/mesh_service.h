// meshd's membership in the mesh: the mesh protocols on their own thread and
// io_context (so the failure detector never waits on disk or the probe),
// over UDP/TCP sealed with the cluster keyring. It publishes this node's
// endpoint table, remembers known peers in the store so a restarted node
// rejoins by itself, hands other nodes' look queries to the look service and
// their key operations to key rotation, and answers what the control socket asks.
#pragma once

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "node/common/log.h"
#include "node/common/net.h"
#include "node/common/status.h"
#include "node/control/backend.h"
#include "node/mesh/asio_runtime.h"
#include "node/mesh/asio_transport.h"
#include "node/mesh/key_rotation.h"
#include "node/mesh/keyring.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/refusals.h"
#include "node/mesh/sealed_transport.h"
#include "node/metrics/histogram.h"
#include "node/store/store.h"

namespace flowmesh {

struct MeshServiceOptions {
  std::string node_name;
  Endpoint bind;                  // UDP and TCP
  IpAddr advertise;               // what peers use to reach us; unspecified = from bind/interfaces
  std::vector<std::string> join;  // seeds, "host:port"
  std::string key_file;           // "" with insecure = no sealing
  std::string label = "flowmesh";
  bool insecure = false;
  // Answers one look query from another node (look_wire.h bytes in and
  // out). Runs on a query worker thread, never the mesh thread: it reads the
  // store. Unset: this node answers no queries.
  std::function<Result<mesh::Bytes>(std::span<const uint8_t> query)> answer_query;
  // The answer to a query refused because too many are in flight: each
  // question carries `why`, so the asker's tree says it. Runs on the mesh
  // thread (reads no store). Unset: the connection closes without an answer.
  std::function<Result<mesh::Bytes>(std::span<const uint8_t> query, const std::string& why)>
      refuse_query;
  // Where the time from a look query's arrival to its answer is recorded
  // (queueing for the query pool included); may be null.
  metrics::Histogram* query_latency = nullptr;
  // Limits of the mesh port (slots, deadlines, the inbound byte budget).
  mesh::AsioTransportOptions transport;
};

// This node's table as the mesh spreads it.
struct LocalTable {
  std::vector<IpAddr> addresses;
  std::vector<mesh::EndpointSummary> endpoints;
  std::vector<mesh::AliasSummary> aliases;
};

class MeshService {
 public:
  // Binds, loads the keyring and starts joining; `local` is asked every
  // second for this node's table (from the daemon's threads; must be safe).
  static Result<std::unique_ptr<MeshService>> Start(MeshServiceOptions options, Store& store,
                                                    std::function<LocalTable()> local);
  ~MeshService();  // Stop()

  // Graceful leave (bounded), then the thread stops. Idempotent.
  void Stop();

  // Sends one look query to the member at `to` over the sealed mesh; `done`
  // runs once, on the mesh thread, with the answer or an error (timeout,
  // refused, the service stopping). Callable from any thread.
  void Query(const mesh::Address& to, mesh::Bytes query, int64_t timeout_ns,
             mesh::Transport::ExchangeDone done);

  // meshctl keys (mesh::KeyRotation::Run): blocks for at most a few
  // seconds; call it off the mesh thread.
  Result<std::vector<mesh::MemberKeys>> Keys(mesh::KeyOp op, const std::string& key);

  std::vector<mesh::MemberView> Members();
  // Unavailable when the mesh thread does not answer within 2 s: an empty
  // list would make every member's address look like no agent's.
  Result<std::vector<mesh::NodeTable>> Tables(bool with_gone = false);
  mesh::MeshStats Stats();
  // What `meshctl status` shows of the mesh (looks are counted by the caller).
  MeshStatus Summary();
  const std::string& advertised() const { return advertised_; }

 private:
  MeshService() = default;
  // Runs fn on the mesh thread and waits for its result (bounded).
  template <typename T>
  T Ask(std::function<T()> fn, T fallback);
  // Off the mesh thread: reads the local table (locks, /proc) and the
  // store's disk, then hands results to the mesh thread.
  void PublishLoop();
  void SavePeers();
  // On the mesh thread: the source addresses of members, for the transport.
  std::vector<IpAddr> MemberAddresses() const;
  void ServeQuery(mesh::Bytes query, mesh::Transport::ExchangeReply reply);
  // Runs fn(node, done) on the mesh thread, or fails `done` if the node is
  // gone by then (Stop): what every request to another member goes through.
  template <typename Done, typename Fn>
  void OnNode(Done done, Fn fn) {
    asio::post(io_, [this, done = std::move(done), fn = std::move(fn)]() mutable {
      if (node_ == nullptr) return done(Unavailable("the mesh is stopping"));
      fn(*node_, std::move(done));
    });
  }

  MeshServiceOptions options_;
  Store* store_ = nullptr;
  std::function<LocalTable()> local_;
  std::string advertised_;
  asio::io_context io_;
  std::unique_ptr<mesh::AsioRuntime> runtime_;
  std::unique_ptr<mesh::AsioTransport> udp_tcp_;
  std::unique_ptr<mesh::Transport> advertise_as_;
  mesh::Keyring keyring_;
  std::unique_ptr<mesh::SealedTransport> sealed_;
  std::unique_ptr<mesh::MeshNode> node_;
  std::thread thread_;
  std::thread publisher_;
  // Queries from other nodes read the store here, off the mesh thread (and
  // key rotation saves key files).
  asio::thread_pool query_pool_{2};
  std::unique_ptr<mesh::KeyRotation> keys_;
  int queries_in_flight_ = 0;     // mesh thread only
  uint64_t queries_refused_ = 0;  // mesh thread only: refused as busy
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;    // guarded by mu_
  std::string last_table_;   // publisher only: what was published last
  std::string saved_peers_;  // publisher (and Stop, after it): what the store holds
  bool stopped_ = false;
};

// Non-loopback, non-link-local addresses of this host: what the node gossips
// as its own (127.0.0.1 belongs to every host).
std::vector<IpAddr> GossipAddresses();
bool Gossipable(const IpAddr& a);

}  // namespace flowmesh
