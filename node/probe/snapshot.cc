// Snapshots: per-namespace sock_diag dumps turned into listener and
// connection events.
#include "node/probe/snapshot.h"

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "node/common/clock.h"
#include "node/common/log.h"

namespace flowmesh {
namespace {

bool ListenerCovers(const IpAddr& listener, const IpAddr& local) {
  if (listener == local) return true;
  if (!listener.is_unspecified()) return false;
  // [::] takes IPv4 too unless IPV6_V6ONLY, which sock_diag does not show;
  // the rare v6only listener sharing a port number with a v4 connection is
  // misread as passive.
  return listener.family == local.family || listener.family == AF_INET6;
}

// Deterministic pick among SO_REUSEPORT siblings listening on the same key.
bool BetterListenerOwner(const ProcessRef& a, const ProcessRef& b) {
  if (a.known() != b.known()) return a.known();
  if (a.start_ticks != b.start_ticks) return a.start_ticks < b.start_ticks;
  return a.pid < b.pid;
}

// The number after `label` on its line of a /proc/net/sockstat file
// ("TCP: inuse 5 orphan 0 ..."); nullopt when the file or line is missing.
std::optional<size_t> ReadInUse(const std::string& path, std::string_view label) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with(label)) continue;
    size_t n = 0;
    const char* first = line.data() + label.size();
    auto [ptr, ec] = std::from_chars(first, line.data() + line.size(), n);
    if (ec != std::errc() || ptr == first) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

// Hands events to a sink in runs of at most kSnapshotRun, one buffer reused.
class SnapshotRuns {
 public:
  explicit SnapshotRuns(const SnapshotSink& sink) : sink_(sink) { run_.reserve(kSnapshotRun); }
  void Add(const ConnEvent& ev) {
    run_.push_back(ev);
    if (run_.size() == kSnapshotRun) Flush();
  }
  void Flush() {
    if (!run_.empty()) sink_(run_);
    run_.clear();
  }

 private:
  const SnapshotSink& sink_;
  std::vector<ConnEvent> run_;
};

}  // namespace

bool IsConnectedState(uint8_t state) {
  return state < 32 && ((kConnectedStates >> state) & 1) != 0;
}

void NetnsListeners::Add(const IpAddr& addr, uint16_t port, const ProcessRef& proc) {
  by_port_.emplace(port, Listener{addr, proc});
}

const NetnsListeners::Listener* NetnsListeners::Accepting(const ConnKey& key) const {
  const Listener* best = nullptr;
  auto [lo, hi] = by_port_.equal_range(key.lport);
  for (auto it = lo; it != hi; ++it) {
    const Listener& l = it->second;
    if (!ListenerCovers(l.addr, key.laddr)) continue;
    // The kernel delivers to the most specific listener; among equals the
    // pick must not depend on hash order, as it feeds the fallback below.
    bool exact = l.addr == key.laddr;
    bool best_exact = best && best->addr == key.laddr;
    if (!best || (exact && !best_exact) ||
        (exact == best_exact && BetterListenerOwner(l.proc, best->proc)))
      best = &l;
  }
  return best;
}

size_t AddNetnsListeners(const std::vector<DiagSocket>& sockets, const ProbeFilter& filter,
                         EventSource source, int64_t now_ns,
                         const std::function<ProcessRef(uint32_t inode)>& owner,
                         NetnsListeners* listeners, Snapshot* out) {
  // Every listener of the namespace goes into `listeners`, filtered or not.
  std::unordered_map<ConnKey, size_t, ConnKeyHash> listener_index;  // into out->listeners
  for (const DiagSocket& s : sockets) {
    if (s.state != kTcpListen) continue;
    ProcessRef proc = owner(s.inode);
    listeners->Add(s.key.laddr, s.key.lport, proc);
    if (!filter.Matches(s.key)) continue;
    if (auto it = listener_index.find(s.key); it != listener_index.end()) {
      ConnEvent& existing = out->listeners[it->second];
      if (BetterListenerOwner(proc, existing.proc)) existing.proc = proc;
      continue;
    }
    ConnEvent ev;
    ev.kind = EventKind::kListen;
    ev.source = source;
    ev.ts_ns = now_ns;
    ev.key = s.key;
    ev.proc = proc;
    ev.counters = s.counters;
    listener_index.emplace(s.key, out->listeners.size());
    out->listeners.push_back(ev);
  }
  return listener_index.size();
}

ConnEvent ConnectionEvent(const DiagSocket& s, const NetnsListeners& listeners, EventSource source,
                          int64_t now_ns, const std::function<ProcessRef(uint32_t inode)>& owner) {
  ConnEvent ev;
  ev.kind = EventKind::kOpen;
  ev.source = source;
  ev.ts_ns = now_ns;
  ev.key = s.key;
  ev.counters = s.counters;
  // Which FINs the sequence-space counters already include, so payload
  // bytes come out right for a connection caught while closing.
  ev.tcp_flags = TcpFlagsForState(s.state);
  ev.proc = owner(s.inode);
  ev.direction = Direction::kActive;
  if (const NetnsListeners::Listener* listener = listeners.Accepting(s.key)) {
    ev.direction = Direction::kPassive;
    // Not accepted yet (no file, inode 0) or held by a process we may not
    // inspect: the listener's owner is who will serve it, as the
    // streaming probe reports passive connections.
    if (!ev.proc.known()) ev.proc = listener->proc;
  }
  return ev;
}

void AddNetnsSockets(const std::vector<DiagSocket>& sockets, const ProbeFilter& filter,
                     EventSource source, int64_t now_ns,
                     const std::function<ProcessRef(uint32_t inode)>& owner, Snapshot* out,
                     const SnapshotSink* sink) {
  NetnsListeners listeners;
  const size_t added = AddNetnsListeners(sockets, filter, source, now_ns, owner, &listeners, out);
  std::optional<SnapshotRuns> runs;
  if (sink) {
    runs.emplace(*sink);
    // This namespace's listeners (the ones after the earlier namespaces').
    for (auto it = out->listeners.end() - static_cast<ptrdiff_t>(added); it != out->listeners.end();
         ++it)
      runs->Add(*it);
    runs->Flush();
  }
  for (const DiagSocket& s : sockets) {
    if (!IsConnectedState(s.state) || !filter.Matches(s.key)) continue;
    ConnEvent ev = ConnectionEvent(s, listeners, source, now_ns, owner);
    if (runs) {
      runs->Add(ev);
      continue;
    }
    out->connections.push_back(ev);
    out->cookies.push_back(s.cookie);
  }
  if (runs) runs->Flush();
}

Snapshotter::Snapshotter(ProbeFilter filter, std::string proc_root,
                         std::optional<std::string> cgroup_root)
    : filter_(std::move(filter)),
      proc_root_(proc_root),
      owners_(std::move(proc_root), std::chrono::milliseconds(100), nullptr,
              std::move(cgroup_root)) {}

Status Snapshotter::Init() {
  FM_ASSIGN_OR_RETURN(uint32_t self, diags_.SelfInode());
  if (filter_.netns.empty()) {
    FM_ASSIGN_OR_RETURN(SockDiag * diag, diags_.Get(NetnsRef{self, 0, ""}));
    (void)diag;
    return Status::Ok();
  }
  std::vector<NetnsRef> missing;
  FM_ASSIGN_OR_RETURN(std::vector<NetnsRef> refs, Namespaces(&missing));
  if (!missing.empty()) return MissingNetns(missing.front());
  for (const NetnsRef& ref : refs) {
    FM_ASSIGN_OR_RETURN(SockDiag * diag, diags_.Get(ref));
    (void)diag;
  }
  return Status::Ok();
}

Status Snapshotter::MissingNetns(const NetnsRef& ref) const {
  if (!ref.path.empty())
    return NotFound("network namespace " + ref.path + " (" + std::to_string(ref.inode) +
                    ") is gone: " + ref.path + " is now another file or none");
  return NotFound("network namespace " + std::to_string(ref.inode) + " has no process under " +
                  proc_root_ + "; is the inode right (ls -L -i /proc/<pid>/ns/net)?");
}

Result<std::vector<NetnsRef>> Snapshotter::Namespaces(std::vector<NetnsRef>* missing) {
  FM_ASSIGN_OR_RETURN(uint32_t self, diags_.SelfInode());
  std::vector<NetnsRef> out;
  if (filter_.netns.empty()) {
    FM_ASSIGN_OR_RETURN(out, ListNetns(proc_root_));
    // Our own namespace is always there, even if the proc root hides us.
    if (std::none_of(out.begin(), out.end(), [&](const NetnsRef& r) { return r.inode == self; }))
      out.push_back(NetnsRef{self, 0, ""});
    diags_.Retain(out);
    return out;
  }
  std::optional<std::vector<NetnsRef>> listed;  // the proc root's, read once if an inode needs it
  for (const NetnsRef& want : filter_.netns) {
    if (want.inode == self) {
      out.push_back(NetnsRef{self, 0, ""});
    } else if (!want.path.empty()) {
      // A bind mount (ip netns add) needs no process in it, but may be
      // removed or remounted: a path that now names another namespace is a
      // missing one, not that other namespace.
      Result<uint32_t> now = NetnsInodeOfPath(want.path);
      if (now.ok() && *now == want.inode) out.push_back(want);
      else missing->push_back(want);
    } else {
      if (!listed) {
        FM_ASSIGN_OR_RETURN(listed, ListNetns(proc_root_));
      }
      auto it = std::find_if(listed->begin(), listed->end(),
                             [&](const NetnsRef& r) { return r.inode == want.inode; });
      if (it != listed->end()) out.push_back(*it);
      else missing->push_back(want);
    }
  }
  diags_.Retain(out);
  return out;
}

void Snapshotter::Skip(uint32_t inode, const Status& why, Snapshot* snap, Status* last_error) {
  snap->namespaces_skipped++;
  if (warned_.insert(inode).second)
    FM_LOG(Warn, "probe") << "skipping network namespace " << inode << ": " << why.message();
  *last_error = why;
}

Result<Snapshot> Snapshotter::Take(EventSource source, bool with_owners, const SnapshotSink* sink,
                                   const SnapshotExpect* expect) {
  std::vector<NetnsRef> missing;
  FM_ASSIGN_OR_RETURN(std::vector<NetnsRef> refs, Namespaces(&missing));
  Snapshot snap;
  Status last_error;
  for (const NetnsRef& ref : missing) Skip(ref.inode, MissingNetns(ref), &snap, &last_error);
  if (sink) TakeStreamed(refs, source, with_owners, *sink, expect, &snap, &last_error);
  else TakeWhole(refs, source, with_owners, &snap, &last_error);
  // Forget warnings for namespaces that are gone, so the set stays bounded.
  std::erase_if(warned_, [&](uint32_t inode) {
    auto same = [&](const NetnsRef& r) { return r.inode == inode; };
    return std::none_of(refs.begin(), refs.end(), same) &&
           std::none_of(missing.begin(), missing.end(), same);
  });
  uint64_t malformed = diags_.malformed();
  snap.malformed = malformed >= malformed_seen_ ? malformed - malformed_seen_ : malformed;
  malformed_seen_ = malformed;
  snap.cgroup_errors = owners_.cgroup_errors() - cgroup_errors_seen_;
  cgroup_errors_seen_ = owners_.cgroup_errors();
  if (snap.namespaces == 0 && !last_error.ok()) return last_error;
  return snap;
}

void Snapshotter::TakeWhole(const std::vector<NetnsRef>& refs, EventSource source,
                            bool with_owners, Snapshot* snap, Status* last_error) {
  const int64_t now = RealtimeNs();
  // Dump every namespace first, then resolve owners: one /proc scan then
  // serves the whole snapshot, and finds every socket the dumps found.
  std::vector<std::vector<DiagSocket>> dumps(refs.size());
  std::vector<bool> dumped(refs.size(), false);
  for (size_t i = 0; i < refs.size(); i++) {
    const NetnsRef& ref = refs[i];
    Status s = [&]() -> Status {
      FM_ASSIGN_OR_RETURN(SockDiag * diag, diags_.Get(ref));
      for (uint16_t family : {AF_INET, AF_INET6}) {
        FM_ASSIGN_OR_RETURN(std::vector<DiagSocket> part, diag->Dump(family, ref.inode));
        // Moved, not copied, when it is the first: a copy of 100,000 is 11 MB.
        if (dumps[i].empty()) dumps[i] = std::move(part);
        else dumps[i].insert(dumps[i].end(), part.begin(), part.end());
      }
      return Status::Ok();
    }();
    if (!s.ok()) {
      Skip(ref.inode, s, snap, last_error);
      continue;
    }
    dumped[i] = true;
  }
  const int64_t dumped_at = MonotonicNs();
  auto owner = [&](uint32_t inode) {
    return with_owners ? owners_.Lookup(inode, dumped_at) : ProcessRef{};
  };
  for (size_t i = 0; i < refs.size(); i++) {
    if (!dumped[i]) continue;
    snap->namespaces++;
    snap->netns_dumped.push_back(refs[i].inode);
    AddNetnsSockets(dumps[i], filter_, source, now, owner, snap);
    std::vector<DiagSocket>().swap(dumps[i]);
  }
}

void Snapshotter::TakeStreamed(const std::vector<NetnsRef>& refs, EventSource source,
                               bool with_owners, const SnapshotSink& sink,
                               const SnapshotExpect* expect, Snapshot* snap, Status* last_error) {
  const int64_t now = RealtimeNs();
  // Owners: one scan, at the first socket it does not know, serves the
  // whole snapshot. It finds every socket that had its file when it began; a
  // connection opened after that shows without a process here, and gets it
  // from the probe that reports its open (the seed's probe is attached
  // before this, a poll's connections are looked up again at the next poll).
  const int64_t began = MonotonicNs();
  auto owner = [&](uint32_t inode) {
    return with_owners ? owners_.Lookup(inode, began) : ProcessRef{};
  };
  // Every namespace's listeners first (few, and the sink needs the count of
  // connections before anything else), then each namespace's connections
  // as the kernel hands them over, a datagram at a time.
  std::vector<std::vector<DiagSocket>> listening(refs.size());
  std::vector<bool> listed(refs.size(), false);
  for (size_t i = 0; i < refs.size(); i++) {
    Status s = [&]() -> Status {
      FM_ASSIGN_OR_RETURN(SockDiag * diag, diags_.Get(refs[i]));
      for (uint16_t family : {AF_INET, AF_INET6}) {
        FM_ASSIGN_OR_RETURN(std::vector<DiagSocket> part,
                            diag->Dump(family, refs[i].inode, kListenStates));
        listening[i].insert(listening[i].end(), part.begin(), part.end());
      }
      return Status::Ok();
    }();
    if (!s.ok()) {
      Skip(refs[i].inode, s, snap, last_error);
      continue;
    }
    listed[i] = true;
  }
  if (expect) {
    if (std::optional<size_t> n = ExpectedConnections(refs, listed, listening)) (*expect)(*n);
  }
  SnapshotRuns runs(sink);
  for (size_t i = 0; i < refs.size(); i++) {
    if (!listed[i]) continue;
    const NetnsRef& ref = refs[i];
    NetnsListeners listeners;
    const size_t added =
        AddNetnsListeners(listening[i], filter_, source, now, owner, &listeners, snap);
    std::vector<DiagSocket>().swap(listening[i]);
    for (auto it = snap->listeners.end() - static_cast<ptrdiff_t>(added);
         it != snap->listeners.end(); ++it)
      runs.Add(*it);
    runs.Flush();
    const SockDiag::DiagRun each = [&](std::span<const DiagSocket> sockets) {
      for (const DiagSocket& s : sockets) {
        if (!IsConnectedState(s.state) || !filter_.Matches(s.key)) continue;
        runs.Add(ConnectionEvent(s, listeners, source, now, owner));
      }
    };
    Status s = [&]() -> Status {
      FM_ASSIGN_OR_RETURN(SockDiag * diag, diags_.Get(ref));
      for (uint16_t family : {AF_INET, AF_INET6})
        FM_RETURN_IF_ERROR(diag->DumpEach(family, ref.inode, kConnectedStates, each));
      return Status::Ok();
    }();
    runs.Flush();
    if (!s.ok()) {
      // What went to the sink stays there; the namespace is not in
      // netns_dumped, so nobody takes a socket missing from it as gone.
      Skip(ref.inode, s, snap, last_error);
      continue;
    }
    snap->namespaces++;
    snap->netns_dumped.push_back(ref.inode);
  }
}

std::optional<size_t> Snapshotter::ExpectedConnections(
    const std::vector<NetnsRef>& refs, const std::vector<bool>& listed,
    const std::vector<std::vector<DiagSocket>>& listening) {
  // A port filter keeps an unknown part of the count.
  if (!filter_.ports.empty()) return std::nullopt;
  size_t total = 0;
  bool any = false;
  for (size_t i = 0; i < refs.size(); i++) {
    if (!listed[i]) continue;
    std::optional<size_t> in_use = TcpSocketsInUse(refs[i]);
    if (!in_use) continue;
    any = true;
    size_t listeners = 0;
    for (const DiagSocket& s : listening[i])
      listeners += filter_.family == 0 || s.key.family() == filter_.family;
    total += *in_use > listeners ? *in_use - listeners : 0;
  }
  if (!any) return std::nullopt;
  return total;
}

std::optional<size_t> Snapshotter::TcpSocketsInUse(const NetnsRef& ref) {
  // The kernel counts each namespace's TCP sockets in use (listening, SYN_SENT
  // and connected; not TIME_WAIT): /proc/<pid>/net/sockstat and sockstat6 of
  // a process in it. A namespace with no process (a bind mount) is read from
  // inside it, through this thread's own /proc entry.
  auto read = [&](const std::string& dir) -> std::optional<size_t> {
    size_t total = 0;
    bool found = false;
    struct File {
      uint16_t family;
      const char* name;
      std::string_view label;
    };
    static constexpr File kFiles[] = {{AF_INET, "/sockstat", "TCP: inuse "},
                                      {AF_INET6, "/sockstat6", "TCP6: inuse "}};
    for (const auto& [family, file, label] : kFiles) {
      if (filter_.family != 0 && filter_.family != family) continue;
      std::optional<size_t> n = ReadInUse(dir + file, label);
      if (n) {
        total += *n;
        found = true;
      }
    }
    if (!found) return std::nullopt;
    return total;
  };
  Result<uint32_t> self = diags_.SelfInode();
  if (self.ok() && ref.inode == *self) return read(proc_root_ + "/thread-self/net");
  if (ref.pid != 0) return read(proc_root_ + "/" + std::to_string(ref.pid) + "/net");
  if (ref.path.empty()) return std::nullopt;
  std::optional<size_t> n;
  Status s = RunInNetns(ref.path, ref.inode, [&]() -> Status {
    n = read(proc_root_ + "/thread-self/net");
    return Status::Ok();
  });
  if (!s.ok()) return std::nullopt;
  return n;
}

}  // namespace flowmesh
