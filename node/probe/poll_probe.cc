// The polling probe and the snapshot diff it is built on.
#include "node/probe/poll_probe.h"

#include <algorithm>
#include <tuple>

#include "node/common/clock.h"
#include "node/common/log.h"

namespace flowmesh {
namespace {

constexpr int kMaxFailuresInARow = 10;

bool SameProcess(const ProcessRef& a, const ProcessRef& b) {
  return a.pid == b.pid && a.start_ticks == b.start_ticks;
}

// Events of one kind in a stable order (the maps they come from have none).
void SortByKey(std::vector<ConnEvent>* events) {
  std::sort(events->begin(), events->end(), [](const ConnEvent& a, const ConnEvent& b) {
    return std::tie(a.key.netns, a.key.laddr, a.key.lport, a.key.raddr, a.key.rport) <
           std::tie(b.key.netns, b.key.laddr, b.key.lport, b.key.raddr, b.key.rport);
  });
}

ConnEvent Stamped(ConnEvent ev, EventKind kind, EventSource source, int64_t now_ns) {
  ev.kind = kind;
  ev.source = source;
  ev.ts_ns = now_ns;
  ev.duration_ns = 0;
  return ev;
}

}  // namespace

void PollDiff::Apply(const Snapshot& snap, int64_t now_ns, std::vector<ConnEvent>* out) {
  const EventSource fresh = seeded_ ? EventSource::kPoll : EventSource::kSeed;
  std::vector<ConnEvent> listens, opens, updates, closes, unlistens;

  auto close_of = [&](const Tracked& t) {
    ConnEvent ev = Stamped(t.last, EventKind::kClose, EventSource::kPoll, now_ns);
    if (t.first_seen_ns != 0 && now_ns > t.first_seen_ns)
      ev.duration_ns = static_cast<uint64_t>(now_ns - t.first_seen_ns);
    return ev;
  };

  std::unordered_map<ConnKey, ConnEvent, ConnKeyHash> next_listeners;
  for (const ConnEvent& l : snap.listeners) {
    auto [it, inserted] = next_listeners.emplace(l.key, l);
    if (!inserted) continue;  // Snapshotter already merges SO_REUSEPORT siblings
    auto old = listeners_.find(l.key);
    if (old == listeners_.end()) {
      listens.push_back(Stamped(l, EventKind::kListen, fresh, now_ns));
    } else if (!l.proc.known()) {
      it->second.proc = old->second.proc;  // a failed lookup is not a new owner
    } else if (!SameProcess(old->second.proc, l.proc)) {
      unlistens.push_back(Stamped(old->second, EventKind::kUnlisten, EventSource::kPoll, now_ns));
      listens.push_back(Stamped(l, EventKind::kListen, EventSource::kPoll, now_ns));
    }
  }
  for (const auto& [key, l] : listeners_)
    if (!next_listeners.count(key))
      unlistens.push_back(Stamped(l, EventKind::kUnlisten, EventSource::kPoll, now_ns));
  listeners_.swap(next_listeners);

  std::unordered_map<ConnKey, Tracked, ConnKeyHash> next;
  for (size_t i = 0; i < snap.connections.size(); i++) {
    const ConnEvent& c = snap.connections[i];
    const uint64_t cookie = i < snap.cookies.size() ? snap.cookies[i] : 0;
    if (next.count(c.key)) continue;  // one socket per 4-tuple; ignore a duplicate
    auto old = conns_.find(c.key);
    if (old != conns_.end() &&
        (old->second.cookie == cookie || old->second.cookie == 0 || cookie == 0)) {
      Tracked t = std::move(old->second);
      conns_.erase(old);
      bool changed = false;
      if (t.last.counters != c.counters || t.last.tcp_flags != c.tcp_flags) {
        t.last.counters = c.counters;  // the flags say which FINs these include
        t.last.tcp_flags = c.tcp_flags;
        changed = true;
      }
      if (!t.last.proc.known() && c.proc.known()) {
        t.last.proc = c.proc;
        changed = true;
      }
      if (changed)
        updates.push_back(Stamped(t.last, EventKind::kUpdate, EventSource::kPoll, now_ns));
      next.emplace(c.key, std::move(t));
      continue;
    }
    if (old != conns_.end()) {  // the 4-tuple now belongs to another socket
      closes.push_back(close_of(old->second));
      conns_.erase(old);
    }
    Tracked t{Stamped(c, EventKind::kOpen, fresh, now_ns), cookie, seeded_ ? now_ns : 0};
    opens.push_back(t.last);
    next.emplace(c.key, std::move(t));
  }
  for (const auto& [key, t] : conns_) closes.push_back(close_of(t));
  conns_.swap(next);
  seeded_ = true;

  SortByKey(&closes);
  SortByKey(&unlistens);
  for (auto* group : {&listens, &opens, &updates, &closes, &unlistens})
    out->insert(out->end(), group->begin(), group->end());
}

PollProbe::PollProbe(ProbeFilter filter, std::chrono::milliseconds interval, std::string proc_root,
                     std::optional<std::string> cgroup_root)
    : interval_(interval),
      snapshotter_(std::move(filter), std::move(proc_root), std::move(cgroup_root)) {}

Status PollProbe::Init() {
  if (interval_.count() <= 0)
    return InvalidArgument("polling interval must be positive, got " +
                           std::to_string(interval_.count()) + "ms; set --probe-interval");
  Status s = snapshotter_.Init();
  if (!s.ok()) return s.WithContext("cannot start the polling probe");
  initialized_ = true;
  return Status::Ok();
}

Result<int> PollProbe::TransferData(EventSink& sink, int timeout_ms) {
  if (!initialized_) return Internal("PollProbe::TransferData called before a successful Init");
  int64_t now = MonotonicNs();
  uint64_t serving = 0;  // the tickets this poll serves: it begins after them
  {
    std::unique_lock lock(mu_);
    auto woken = [&] { return stopped_ || wakes_ > wakes_served_; };
    if (now < next_poll_ns_ && !woken()) {
      int64_t wait_ns =
          std::min<int64_t>(next_poll_ns_ - now, int64_t{std::max(timeout_ms, 0)} * 1'000'000);
      wake_.wait_for(lock, std::chrono::nanoseconds(wait_ns), woken);
      now = MonotonicNs();
    }
    if (stopped_) return 0;
    serving = wakes_;
    if (now < next_poll_ns_ && serving == wakes_served_) return 0;
  }
  // Keep a steady cadence, but after a stall poll once, not in a burst. A
  // poll a Wake() asked for early moves nothing: the scheduled one follows.
  if (now >= next_poll_ns_) {
    const int64_t interval_ns = std::chrono::nanoseconds(interval_).count();
    next_poll_ns_ =
        next_poll_ns_ + interval_ns > now ? next_poll_ns_ + interval_ns : now + interval_ns;
  }
  // A failed poll serves its tickets too: nothing more will come of them
  // before the next interval, and the failure is counted and logged.
  wakes_served_ = serving;

  Result<Snapshot> snap = snapshotter_.Take(EventSource::kPoll);
  if (!snap.ok()) {
    poll_errors_++;
    if (++failures_in_a_row_ >= kMaxFailuresInARow)
      return snap.status().WithContext("sock_diag polling failed " +
                                       std::to_string(failures_in_a_row_) + " times in a row");
    if (failures_in_a_row_ == 1)
      FM_LOG(Warn, "probe") << "sock_diag poll failed (will retry every interval): "
                            << snap.status().message();
    return 0;
  }
  if (failures_in_a_row_ > 0)
    FM_LOG(Info, "probe") << "sock_diag polling recovered after " << failures_in_a_row_
                          << " failed polls";
  failures_in_a_row_ = 0;
  polls_++;
  malformed_ += snap->malformed;
  netns_skipped_ += snap->namespaces_skipped;
  cgroup_errors_ += snap->cgroup_errors;

  std::vector<ConnEvent> events;
  diff_.Apply(*snap, RealtimeNs(), &events);
  tracked_.store(diff_.connections(), std::memory_order_relaxed);
  for (const ConnEvent& e : events) sink.OnEvent(e);
  events_ += events.size();
  return static_cast<int>(events.size());
}

uint64_t PollProbe::Wake() {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    ticket = ++wakes_;
  }
  wake_.notify_all();
  return ticket;
}

void PollProbe::Stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  wake_.notify_all();
}

ProbeStats PollProbe::Stats() const {
  ProbeStats st;
  st.polls = polls_.load();
  st.events = events_.load();
  st.malformed = malformed_.load();
  st.detail = {{"poll_errors", poll_errors_.load()},
               {"netns_skipped", netns_skipped_.load()},
               {"cgroup_errors", cgroup_errors_.load()},
               {"tracked_connections", tracked_.load()}};
  return st;
}

}  // namespace flowmesh
