// The connections and listeners open right now on this node, kept current by
// the probe's events. It is where a CLOSE from BPF for a connection that was
// open before meshd started gets its process back (from the start-up
// sock_diag snapshot), and what `meshctl top` shows.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "node/flow/flat_map.h"
#include "node/flow/interner.h"
#include "node/flow/open_connection.h"
#include "node/probe/event.h"

namespace flowmesh {

struct Listener {
  ConnKey key;  // netns, laddr, lport
  ProcessRef proc;
  int64_t since_ns = 0;
  uint64_t seen_seq = 0;  // as OpenConnection's, for LISTEN
};

// A listener's key: the connection key without the remote side.
inline ConnKey ListenKey(const ConnKey& k) { return ConnKey{k.netns, k.laddr, {}, k.lport, 0}; }

class ConnTable {
 public:
  // Applies one event. A CLOSE (or UNLISTEN) that lacks the process or
  // direction gets them from the open record, so what leaves here is as
  // complete as anything this node knew, with payload byte counts (see
  // PayloadCounters). Returns false for an event that carried nothing new
  // (an UPDATE for a connection not in the table).
  bool Apply(ConnEvent& event);
  // Apply for each event of a run, under one lock; changed[i] is what Apply
  // would have returned for events[i] (changed must hold events.size()).
  void ApplyAll(std::span<ConnEvent> events, bool* changed);

  // Room for `more` connections beyond those open now (see FlatMap::reserve).
  void Reserve(size_t more);

  std::vector<OpenConnection> Connections() const;
  // Each open connection's key and seen_seq, under the table's lock (fn must
  // not call back into the table): reconciliation reads these of 100,000
  // connections without copying them whole.
  void ForEachConnection(const std::function<void(const ConnKey&, uint64_t seen_seq)>& fn) const;
  std::vector<Listener> Listeners() const;
  ConnTableStats Stats() const;

  // Every OPEN, UPDATE and LISTEN applied takes the next number, so a
  // connection whose seen_seq is at most the value read before a sock_diag
  // dump began was reported before that dump began.
  uint64_t Sequence() const;
  // Reconciliation: if the connection is still open and nothing reported it
  // since seen_seq, removes it and returns its CLOSE (reconstructed, at
  // ts_ns, counters as last seen, already payload bytes); otherwise nullopt.
  // A real CLOSE that arrives afterwards is dropped.
  std::optional<ConnEvent> CloseMissed(const ConnKey& key, uint64_t seen_seq, int64_t ts_ns);
  // The same for a listener (key as ListenKey gives it).
  std::optional<ConnEvent> UnlistenMissed(const ConnKey& key, uint64_t seen_seq, int64_t ts_ns);
  // Whether the connection (listener: key as ListenKey gives it) is still in
  // the table with nothing reported since seen_seq: what CloseMissed
  // (UnlistenMissed) would close.
  bool StillUnreported(const ConnKey& key, uint64_t seen_seq) const;
  bool ListenerStillUnreported(const ConnKey& key, uint64_t seen_seq) const;

 private:
  // An open connection as held: its key is the map's and its process is
  // shared (Interner), 72 bytes instead of OpenConnection's 160, which
  // Connections() rebuilds.
  struct Entry {
    TcpCounters counters;  // as of updated_ns
    int64_t opened_ns = 0;
    int64_t updated_ns = 0;
    uint64_t seen_seq = 0;
    uint32_t proc = 0;  // procs_ id
    Direction direction = Direction::kUnknown;
    EventSource source = EventSource::kKernel;
  };
  // 100,000 of them on a busy host: a field more is 100,000 fields more.
  static_assert(sizeof(Entry) == 72);
  // Every field is the identity here: two connections of one process share
  // an entry only while what they hold of it is the same.
  struct ProcessRefHash {
    size_t operator()(const ProcessRef& p) const noexcept;
  };
  struct ProcessRefEq {
    bool operator()(const ProcessRef& a, const ProcessRef& b) const noexcept;
  };

  bool ApplyLocked(ConnEvent& event);
  OpenConnection ToOpenConnection(const ConnKey& key, const Entry& e) const;
  using OpenMap = FlatMap<ConnKey, Entry, ConnKeyHash>;
  OpenMap::iterator Erase(OpenMap::iterator it);

  mutable std::mutex mu_;
  OpenMap open_;
  Interner<ProcessRef, ProcessRefHash, ProcessRefEq> procs_;
  std::unordered_map<ConnKey, Listener, ConnKeyHash> listeners_;
  // Connections closed by reconciliation -> when, so their real CLOSE, if it
  // was only late, does not close them twice. Bounded by kReconstructedKept.
  std::unordered_map<ConnKey, int64_t, ConnKeyHash> reconstructed_;
  uint64_t seq_ = 0;
  ConnTableStats stats_;
};

}  // namespace flowmesh
