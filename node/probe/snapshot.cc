// Snapshots: per-namespace sock_diag dumps turned into listener and
// connection events.
#include "node/probe/snapshot.h"

#include <sys/socket.h>

#include <algorithm>
#include <optional>
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

}  // namespace

bool IsConnectedState(uint8_t state) {
  switch (state) {
    case kTcpEstablished:
    case kTcpFinWait1:
    case kTcpFinWait2:
    case kTcpCloseWait:
    case kTcpLastAck:
    case kTcpClosing: return true;
    default: return false;
  }
}

void AddNetnsSockets(const std::vector<DiagSocket>& sockets, const ProbeFilter& filter,
                     EventSource source, int64_t now_ns,
                     const std::function<ProcessRef(uint32_t inode)>& owner, Snapshot* out,
                     const SnapshotSink* sink) {
  // Every listener of the namespace, filtered or not: port -> (addr, owner).
  struct Listener {
    IpAddr addr;
    ProcessRef proc;
  };
  std::unordered_multimap<uint16_t, Listener> by_port;
  std::unordered_map<ConnKey, size_t, ConnKeyHash> listener_index;  // into out->listeners
  for (const DiagSocket& s : sockets) {
    if (s.state != kTcpListen) continue;
    ProcessRef proc = owner(s.inode);
    by_port.emplace(s.key.lport, Listener{s.key.laddr, proc});
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
  std::vector<ConnEvent> run;
  if (sink) {
    // This namespace's listeners (the ones after the earlier namespaces').
    run.assign(out->listeners.end() - static_cast<ptrdiff_t>(listener_index.size()),
               out->listeners.end());
    if (!run.empty()) (*sink)(run);
    run.clear();
    run.reserve(kSnapshotRun);
  }

  for (const DiagSocket& s : sockets) {
    if (!IsConnectedState(s.state) || !filter.Matches(s.key)) continue;
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
    const Listener* listener = nullptr;
    auto [lo, hi] = by_port.equal_range(s.key.lport);
    for (auto it = lo; it != hi; ++it) {
      const Listener& l = it->second;
      if (!ListenerCovers(l.addr, s.key.laddr)) continue;
      // The kernel delivers to the most specific listener; among equals the
      // pick must not depend on hash order, as it feeds the fallback below.
      bool exact = l.addr == s.key.laddr;
      bool best_exact = listener && listener->addr == s.key.laddr;
      if (!listener || (exact && !best_exact) ||
          (exact == best_exact && BetterListenerOwner(l.proc, listener->proc)))
        listener = &l;
    }
    if (listener) {
      ev.direction = Direction::kPassive;
      // Not accepted yet (no file, inode 0) or held by a process we may not
      // inspect: the listener's owner is who will serve it, as the
      // streaming probe reports passive connections.
      if (!ev.proc.known()) ev.proc = listener->proc;
    }
    if (sink) {
      run.push_back(ev);
      if (run.size() == kSnapshotRun) {
        (*sink)(run);
        run.clear();
      }
      continue;
    }
    out->connections.push_back(ev);
    out->cookies.push_back(s.cookie);
  }
  if (sink && !run.empty()) (*sink)(run);
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

Result<Snapshot> Snapshotter::Take(EventSource source, bool with_owners, const SnapshotSink* sink,
                                   const SnapshotExpect* expect) {
  std::vector<NetnsRef> missing;
  FM_ASSIGN_OR_RETURN(std::vector<NetnsRef> refs, Namespaces(&missing));
  Snapshot snap;
  const int64_t now = RealtimeNs();
  Status last_error;
  for (const NetnsRef& ref : missing) {
    snap.namespaces_skipped++;
    last_error = MissingNetns(ref);
    if (warned_.insert(ref.inode).second)
      FM_LOG(Warn, "probe") << "skipping network namespace " << ref.inode << ": "
                            << last_error.message();
  }
  // Dump every namespace first, then resolve owners: one /proc scan then
  // serves the whole snapshot.
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
      snap.namespaces_skipped++;
      if (warned_.insert(ref.inode).second)
        FM_LOG(Warn, "probe") << "skipping network namespace " << ref.inode << ": " << s.message();
      last_error = s;
      continue;
    }
    dumped[i] = true;
  }
  const int64_t dumped_at = MonotonicNs();
  auto owner = [&](uint32_t inode) {
    return with_owners ? owners_.Lookup(inode, dumped_at) : ProcessRef{};
  };
  if (sink && expect) {
    size_t connections = 0;
    for (size_t i = 0; i < refs.size(); i++) {
      for (const DiagSocket& s : dumps[i])
        connections += IsConnectedState(s.state) && filter_.Matches(s.key);
    }
    (*expect)(connections);
  }
  for (size_t i = 0; i < refs.size(); i++) {
    if (!dumped[i]) continue;
    snap.namespaces++;
    snap.netns_dumped.push_back(refs[i].inode);
    AddNetnsSockets(dumps[i], filter_, source, now, owner, &snap, sink);
    // Each namespace's sockets go as soon as they are events.
    std::vector<DiagSocket>().swap(dumps[i]);
  }
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

}  // namespace flowmesh
