// NatFeed: conntrack's events into the NAT table, in step with the probe.
#include "node/nat/nat_feed.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "node/common/clock.h"
#include "node/common/log.h"

namespace flowmesh {
namespace {

// Per Refresh: a burst beyond this waits for the next round (the socket's
// buffer holds it) rather than stalling the probe's events.
constexpr size_t kMaxEventsPerRefresh = 16384;

}  // namespace

NatFeed::NatFeed(std::unique_ptr<ConntrackReader> reader, NatTableOptions options)
    : reader_(std::move(reader)), table_(options) {
  scratch_.reserve(256);
}

namespace {

// TCP_CONNTRACK_TIME_WAIT and _CLOSE (linux/netfilter/nf_conntrack_tcp.h):
// the connection is over, the entry lingers.
constexpr uint8_t kTcpTimeWait = 7;
constexpr uint8_t kTcpClose = 8;

}  // namespace

Status NatFeed::Seed(int64_t now_ns) {
  std::vector<CtEntry> all;
  Status s = reader_->Dump(&all);
  // Connections that closed before meshd looked are no news: only the
  // open ones are carried in.
  pruned_closed_at_start_ += std::erase_if(all, [](const CtEntry& e) {
    return e.tcp_state == kTcpTimeWait || e.tcp_state == kTcpClose;
  });
  last_dump_ns_ = now_ns;
  if (s.ok()) table_.Replace(all, now_ns);
  incomplete_ = !s.ok();
  Publish();
  return s;
}

void NatFeed::Refresh(int64_t now_ns) {
  size_t taken = 0;
  while (taken < kMaxEventsPerRefresh) {
    scratch_.clear();
    bool lost = false;
    Status s = reader_->Drain(&scratch_, 1024, &lost);
    for (const CtEvent& ev : scratch_) table_.Apply(ev, now_ns);
    taken += scratch_.size();
    if (lost) incomplete_ = true;
    if (!s.ok()) {
      if (Loggable()) FM_LOG(Warn, "nat") << "reading conntrack events failed: " << s.message();
      break;
    }
    if (scratch_.empty()) break;
  }
  if (incomplete_) Resync(now_ns);
}

void NatFeed::PruneIfDue(int64_t now_ns) {
  if (incomplete_ || prune_interval_ns_ <= 0 || now_ns - last_dump_ns_ < prune_interval_ns_)
    return;
  std::vector<CtEntry> all;
  last_dump_ns_ = now_ns;
  if (reader_->Dump(&all).ok()) {
    table_.Replace(all, now_ns, /*add_missing=*/false);
    prunes_++;
  }
}

void NatFeed::Resync(int64_t now_ns) {
  std::vector<CtEntry> all;
  Status s = reader_->Dump(&all);
  if (!s.ok()) {
    resync_failures_++;
    if (Loggable())
      FM_LOG(Warn, "nat") << "conntrack events were lost and the dump to replace them failed (" << s.message()
        << "); new connections are looked up in the kernel one by one until one works";
    return;
  }
  table_.Replace(all, now_ns);
  last_dump_ns_ = now_ns;
  resyncs_++;
  incomplete_ = false;
  if (Loggable())
    FM_LOG(Warn, "nat") << "conntrack events were lost (the socket's buffer overflowed); "
                           "the table was read again whole ("
                        << all.size() << " entries)";
}

namespace {

// IPS_ASSURED (linux/netfilter/nf_conntrack_common.h): TCP's handshake
// completed. A spoofed SYN's entry never gets it.
constexpr uint32_t kAssured = 1u << 2;
bool Assured(const CtEntry& e) { return (e.status & kAssured) != 0; }

// Waiting opens: at most this many, each checked again this often, and at
// most this many checks (one conntrack GET each) per call.
constexpr size_t kMaxWaiting = 65536;
// A handshake completes within a round trip: look again soon, then less
// often (spoofed SYNs linger a minute).
constexpr int64_t kRecheckNs[] = {100'000'000, 400'000'000, 1'600'000'000, 5'000'000'000};
constexpr size_t kMaxChecksPerCall = 256;

}  // namespace

std::vector<ForwardedEvent> NatFeed::TakeForwarded(int64_t now_ns) {
  PruneIfDue(now_ns);
  std::vector<ForwardedEvent> out;
  for (ForwardedEvent& fe : table_.TakeForwarded(now_ns)) {
    const CtTuple key = fe.entry.original;
    if (!fe.closed) {
      if (Assured(fe.entry)) {
        out.push_back(std::move(fe));
      } else if (waiting_.size() >= kMaxWaiting) {
        wait_dropped_++;
      } else if (waiting_.emplace(key, Waiting{fe, now_ns}).second) {
        checks_.emplace_back(now_ns, key);
      }
      continue;
    }
    auto it = waiting_.find(key);
    if (!Assured(fe.entry)) {
      unestablished_++;  // never a connection: its open was never given
      if (it != waiting_.end()) waiting_.erase(it);
      continue;
    }
    if (it != waiting_.end()) {  // completed and closed between two checks
      out.push_back(std::move(it->second.open));
      waiting_.erase(it);
    }
    out.push_back(std::move(fe));
  }
  CheckWaiting(now_ns, &out);
  Publish();
  return out;
}

void NatFeed::CheckWaiting(int64_t now_ns, std::vector<ForwardedEvent>* out) {
  size_t checks = 0;
  while (!checks_.empty() && checks_.front().first <= now_ns && checks < kMaxChecksPerCall) {
    const CtTuple key = checks_.front().second;
    checks_.pop_front();
    auto it = waiting_.find(key);
    if (it == waiting_.end() || it->second.check_ns > now_ns) continue;  // gone, or requeued
    checks++;
    kernel_lookups_++;
    Result<std::optional<CtEntry>> got = reader_->Get(key);
    if (got.ok() && !*got) {
      // Gone from the kernel: its DESTROY decides (or was lost with others).
      waiting_.erase(it);
      continue;
    }
    if (got.ok() && Assured(**got)) {
      ForwardedEvent open = std::move(it->second.open);
      open.entry = **got;
      out->push_back(std::move(open));
      waiting_.erase(it);
      continue;
    }
    const size_t step = std::min(it->second.checks++, std::size(kRecheckNs) - 1);
    it->second.check_ns = now_ns + kRecheckNs[step];
    checks_.emplace_back(it->second.check_ns, key);
  }
}

std::optional<CtEntry> NatFeed::ClaimOriginal(const Endpoint& local, const Endpoint& remote) {
  std::optional<CtEntry> e = table_.ClaimOriginal(local, remote);
  if (e || !incomplete_) return e;
  // The table may lack it: ask the kernel about this one connection.
  kernel_lookups_++;
  Result<std::optional<CtEntry>> got = reader_->Get(CtTuple{local, remote});
  if (!got.ok() || !*got || !(*got)->translated()) return std::nullopt;
  table_.Apply(CtEvent{CtEventKind::kNew, **got}, 0);
  return table_.ClaimOriginal(local, remote);
}

std::optional<CtEntry> NatFeed::ClaimReply(const Endpoint& local, const Endpoint& remote) {
  // A reply tuple cannot be asked for: the kernel is keyed by the original,
  // which is what this side does not know. The resync dump covers it.
  return table_.ClaimReply(local, remote);
}

bool NatFeed::Loggable() {
  uint64_t held = 0;
  return log_limit_.Allow(MonotonicNs(), &held);
}

void NatFeed::Publish() {
  NatFeedStats s;
  s.reader = reader_->Stats();
  s.table = table_.Stats();
  s.resyncs = resyncs_;
  s.resync_failures = resync_failures_;
  s.prunes = prunes_;
  s.closed_at_start = pruned_closed_at_start_;
  s.kernel_lookups = kernel_lookups_;
  s.forwarded_unestablished = unestablished_;
  s.forwarded_waiting = waiting_.size();
  s.forwarded_wait_dropped = wait_dropped_;
  std::lock_guard lock(stats_mu_);
  stats_ = s;
}

NatFeedStats NatFeed::Stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

}  // namespace flowmesh
