// One sock_diag picture of the TCP listeners and open connections of the
// selected network namespaces, as ConnEvents with processes and direction.
// Seeds the streaming probe at start-up, refreshes live counters, and is
// what the poller diffs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/probe/event.h"
#include "node/probe/netns.h"
#include "node/probe/probe.h"
#include "node/probe/sock_diag.h"
#include "node/proc/socket_owners.h"

namespace flowmesh {

struct Snapshot {
  std::vector<ConnEvent> listeners;    // kind kListen, direction kUnknown
  std::vector<ConnEvent> connections;  // kind kOpen, direction from the listeners
  std::vector<uint64_t> cookies;       // socket cookie of connections[i]: tells a reused
                                       // 4-tuple from the same connection
  uint64_t malformed = 0;              // sock_diag messages skipped while taking it
  uint32_t namespaces = 0;             // network namespaces dumped
  std::vector<uint32_t> netns_dumped;  // their inodes: a socket elsewhere was not looked for
  uint32_t namespaces_skipped = 0;     // could not be entered or dumped (logged once each)
  uint64_t cgroup_errors = 0;          // owners whose cgroup id was not found (id left 0)
};

// Takes a snapshot's events a run at a time instead of the whole picture at
// once (100,000 sockets are 17 MB as ConnEvents): a namespace's listeners
// first (kListen), then its connections (kOpen) in runs of at most
// kSnapshotRun. The span is the sink's to modify; it is reused after.
using SnapshotSink = std::function<void(std::span<ConnEvent> events)>;
inline constexpr size_t kSnapshotRun = 4096;
// Told once, before the sink's first run, about how many open connections
// (kOpen events) follow, so the tables taking them make room at once: the
// kernel's count of TCP sockets in use in the namespaces (sockstat), less
// their listeners. Somewhat more than follow when sockets are connecting;
// fewer when connections open meanwhile. Not told when there is no count: a
// port filter, or no namespace's count could be read.
using SnapshotExpect = std::function<void(size_t connections)>;

// Whether a socket in `state` is an open connection: every state from
// ESTABLISHED until the socket is gone, i.e. ESTABLISHED, FIN_WAIT1,
// FIN_WAIT2, CLOSE_WAIT, LAST_ACK and CLOSING. Such a socket still has a
// process and counters that can change; SYN_* never carried data yet,
// TIME_WAIT and CLOSE are the connection's past.
bool IsConnectedState(uint8_t state);

// The listeners of one network namespace, by port: which of them accepted a
// connection, if any (see AddNetnsSockets for the rule).
class NetnsListeners {
 public:
  struct Listener {
    IpAddr addr;
    ProcessRef proc;
  };
  void Add(const IpAddr& addr, uint16_t port, const ProcessRef& proc);
  // The listener a connection with this local end came in through: the most
  // specific address first, then a deterministic pick. Null: active.
  const Listener* Accepting(const ConnKey& key) const;

 private:
  std::unordered_multimap<uint16_t, Listener> by_port_;
};

// The listeners among `sockets`: every one into `listeners` (filtered or
// not, for direction), the filtered ones as kListen events appended to
// out->listeners, one per key (SO_REUSEPORT siblings are one). Returns how
// many events it appended.
size_t AddNetnsListeners(const std::vector<DiagSocket>& sockets, const ProbeFilter& filter,
                         EventSource source, int64_t now_ns,
                         const std::function<ProcessRef(uint32_t inode)>& owner,
                         NetnsListeners* listeners, Snapshot* out);

// One connected socket as a kOpen event: its owner, and its direction from
// the namespace's listeners (a passive one without a known owner gets the
// listener's).
ConnEvent ConnectionEvent(const DiagSocket& s, const NetnsListeners& listeners, EventSource source,
                          int64_t now_ns, const std::function<ProcessRef(uint32_t inode)>& owner);

// Adds the sockets of one network namespace (both families, one dump each)
// to `out`: filter, owner lookup, direction. Pure apart from `owner`, so
// tests can feed it sockets.
//
// Direction: a connection is passive when a listener in the same namespace
// has its local port and either its exact local address or a wildcard
// address of the same family (or the IPv6 wildcard, which takes IPv4 too).
// Listeners are taken unfiltered for this, so a port filter cannot hide the
// listener that makes a connection passive.
//
// With a sink, the events go to it (see SnapshotSink) and only the
// listeners are kept in `out` too; connections and cookies are not.
void AddNetnsSockets(const std::vector<DiagSocket>& sockets, const ProbeFilter& filter,
                     EventSource source, int64_t now_ns,
                     const std::function<ProcessRef(uint32_t inode)>& owner, Snapshot* out,
                     const SnapshotSink* sink = nullptr);

// Not thread-safe; use one per thread or hold a lock around Take.
class Snapshotter {
 public:
  // `cgroup_root`: the cgroup v2 mount owners' cgroup ids are read under
  // (SocketOwners: nullopt finds it, "" reads none).
  Snapshotter(ProbeFilter filter, std::string proc_root,
              std::optional<std::string> cgroup_root = std::nullopt);

  // Opens the sock_diag sockets of the listed namespaces (our own when the
  // filter says all) so a missing permission or namespace shows at start-up.
  // Optional: Take opens what it needs.
  Status Init();

  // Dumps AF_INET and AF_INET6 in the namespaces filter.netns lists (none:
  // every namespace a process under the proc root lives in). A namespace that
  // cannot be entered is skipped, logged once and counted; the result is an
  // error only when nothing could be dumped. Without owners, no /proc scan:
  // processes stay unknown (passive connections still get their direction).
  // With a sink, the events go to it a run at a time as the dumps are read,
  // never all of them at once: first a dump of every namespace's listeners,
  // then `expect` (if given), then per namespace its listeners and its
  // connections (a second dump, of the connected states only, streamed). A
  // walk interrupted by churn is read again, so the sink may see an open a
  // second time (see SockDiag::DumpEach). Connections opened after the
  // owners' scan began show without a process.
  Result<Snapshot> Take(EventSource source, bool with_owners = true,
                        const SnapshotSink* sink = nullptr,
                        const SnapshotExpect* expect = nullptr);

  // Where owners' (socket inode, pid) pairs come from (see SocketOwners).
  void set_holder_source(SocketOwners::HolderSource source) {
    owners_.set_holder_source(std::move(source));
  }

 private:
  // The namespaces to dump now; listed ones not found go to `missing`.
  Result<std::vector<NetnsRef>> Namespaces(std::vector<NetnsRef>* missing);
  Status MissingNetns(const NetnsRef& ref) const;
  // A namespace left out of this snapshot: counted, logged once, kept as the
  // error to return if none was dumped.
  void Skip(uint32_t inode, const Status& why, Snapshot* snap, Status* last_error);
  // Without a sink: each namespace's dump whole, then owners, then events.
  void TakeWhole(const std::vector<NetnsRef>& refs, EventSource source, bool with_owners,
                 Snapshot* snap, Status* last_error);
  // With a sink: see Take.
  void TakeStreamed(const std::vector<NetnsRef>& refs, EventSource source, bool with_owners,
                    const SnapshotSink& sink, const SnapshotExpect* expect, Snapshot* snap,
                    Status* last_error);
  // SnapshotExpect's count for the namespaces listed[i] (listening[i]: their
  // listeners), or nullopt.
  std::optional<size_t> ExpectedConnections(const std::vector<NetnsRef>& refs,
                                            const std::vector<bool>& listed,
                                            const std::vector<std::vector<DiagSocket>>& listening);
  // The kernel's count of TCP sockets in use in `ref` (the filter's families).
  std::optional<size_t> TcpSocketsInUse(const NetnsRef& ref);

  ProbeFilter filter_;
  std::string proc_root_;
  SocketOwners owners_;
  NetnsDiagCache diags_;
  std::set<uint32_t> warned_;  // namespaces whose failure was logged already
  uint64_t malformed_seen_ = 0;
  uint64_t cgroup_errors_seen_ = 0;
};

}  // namespace flowmesh
