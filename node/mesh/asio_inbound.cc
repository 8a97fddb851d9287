// Who gets an inbound slot before proving the key, and how many frame bytes
// all connections together may hold: the mesh port faces the whole LAN.
#include <algorithm>

#include "node/common/clock.h"
#include "node/mesh/asio_transport_core.h"

namespace flowmesh::mesh {

bool AsioTransport::Core::MayConnect(const IpAddr& ip, const Address& peer) {
  const bool member = members.contains(ip);
  const bool inbound_full = inbound >= options.max_inbound_connections;
  const bool preauth_full = preauth.size() >= options.max_preauth_connections;
  if (inbound_full || preauth_full) {
    // A member takes the place of the oldest stranger still unproven; the
    // stranger loses a connection it could not have used for much anyway.
    auto stranger = std::find_if(preauth.begin(), preauth.end(), [&](const auto& entry) {
      return !members.contains(entry.second.ip);
    });
    if (member && stranger != preauth.end()) {
      uint64_t id = stranger->first;
      IpAddr evicted = stranger->second.ip;
      std::shared_ptr<AsioConnection> conn = stranger->second.conn.lock();
      stats.preauth_evicted++;
      Refuse("preauth_evicted", "an unauthenticated connection from " + evicted.ToString() +
                                    ", closed to let member " + peer + " in");
      if (conn) conn->Abort();  // leaves the slot and the preauth set
      LeavePreauth(id);
      return true;
    }
    if (inbound_full) {
      stats.connections_rejected++;
      Refuse("inbound_full", "a connection from " + peer + ": all " +
                                 std::to_string(options.max_inbound_connections) +
                                 " inbound slots are taken");
    } else {
      stats.preauth_full++;
      Refuse("preauth_full", "a connection from " + peer + ": all " +
                                 std::to_string(options.max_preauth_connections) +
                                 " unauthenticated slots are taken and it is not a known member");
    }
    return false;
  }
  if (!member) {
    auto it = preauth_by_ip.find(ip);
    if (it != preauth_by_ip.end() && it->second >= options.max_preauth_per_source) {
      stats.preauth_per_source++;
      Refuse("preauth_per_source", "a connection from " + peer + ": its address already has " +
                                       std::to_string(it->second) +
                                       " unauthenticated connections (the limit)");
      return false;
    }
  }
  return true;
}

void AsioTransport::Core::EnterPreauth(uint64_t id, const IpAddr& ip,
                                       std::weak_ptr<AsioConnection> conn) {
  preauth.emplace(id, Preauth{ip, std::move(conn)});
  preauth_by_ip[ip]++;
}

void AsioTransport::Core::LeavePreauth(uint64_t id) {
  auto it = preauth.find(id);
  if (it == preauth.end()) return;
  auto by_ip = preauth_by_ip.find(it->second.ip);
  if (by_ip != preauth_by_ip.end() && --by_ip->second == 0) preauth_by_ip.erase(by_ip);
  preauth.erase(it);
}

bool AsioTransport::Core::Reserve(size_t bytes, size_t frame_len, const std::string& what) {
  const uint64_t in_use = stats.inbound_reserved_bytes;
  if (in_use + bytes > options.inbound_budget_bytes) {
    stats.budget_refused++;
    Refuse("budget_exhausted", what + ": a frame of " + std::to_string(frame_len) +
                                   " bytes, with " + std::to_string(in_use) + " of the " +
                                   std::to_string(options.inbound_budget_bytes) +
                                   "-byte inbound budget in use");
    return false;
  }
  stats.inbound_reserved_bytes += bytes;
  return true;
}

void AsioTransport::Core::Buffered(size_t grew) {
  stats.inbound_buffered_bytes += grew;
  stats.inbound_buffered_peak = std::max(stats.inbound_buffered_peak, stats.inbound_buffered_bytes);
}

void AsioTransport::Core::Refuse(const char* reason, const std::string& what) {
  refusal_log.Note(reason, MonotonicNs(), what);
}

}  // namespace flowmesh::mesh
