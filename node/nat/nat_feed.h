// Connection tracking as the aggregator uses it: the reader's events taken
// into the NAT table just before the probe's events are applied (so a
// connection's translation, confirmed by the kernel before the connection
// was established, is always in by then), a whole dump after lost events,
// and a lookup in the kernel while the table may be incomplete.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "node/common/log.h"
#include "node/nat/conntrack.h"
#include "node/nat/nat_table.h"

namespace flowmesh {

struct NatFeedStats {
  ConntrackStats reader;
  NatTableStats table;
  uint64_t resyncs = 0;          // whole dumps after lost events
  uint64_t resync_failures = 0;  // ... that failed (the table may miss entries until one works)
  uint64_t prunes = 0;           // periodic dumps (entries that ended without a DESTROY)
  uint64_t closed_at_start = 0;  // start-up entries already closed (TIME_WAIT, CLOSE): ignored
  uint64_t kernel_lookups = 0;   // connections looked up in the kernel meanwhile
  // Forwarded connections (a balancer's) are counted once their handshake
  // completed (conntrack's ASSURED): a flood of spoofed SYNs through a VIP
  // makes entries, not connections.
  uint64_t forwarded_unestablished = 0;  // destroyed without completing it: not counted
  uint64_t forwarded_waiting = 0;        // not completed yet, checked again later (now)
  uint64_t forwarded_wait_dropped = 0;   // not checked: too many were waiting
};

class NatFeed {
 public:
  explicit NatFeed(std::unique_ptr<ConntrackReader> reader, NatTableOptions options = {});
  // How often the table is pruned against a dump (0 = never).
  void set_prune_interval(int64_t ns) { prune_interval_ns_ = ns; }

  // The start-up dump: every translated connection open now.
  Status Seed(int64_t now_ns);
  // Takes in every pending event (bounded per call); after lost events, a
  // whole dump. The probe thread, before each run of events: nothing else
  // (one recv when there is no news).
  void Refresh(int64_t now_ns);

  std::optional<CtEntry> ClaimOriginal(const Endpoint& local, const Endpoint& remote);
  std::optional<CtEntry> ClaimReply(const Endpoint& local, const Endpoint& remote);
  // The forwarded connections whose handshake completed, in order: an open
  // once conntrack says ASSURED (asking the kernel again for one that was
  // not yet, a bounded number per call), a close when its open was given.
  // Between runs of events (the probe's tick): also every minute a dump that
  // prunes what ended without a DESTROY event, and the stats' copy.
  std::vector<ForwardedEvent> TakeForwarded(int64_t now_ns);

  uint32_t netns() const { return reader_->netns(); }
  // Any thread: a copy made at the last TakeForwarded (or Seed).
  NatFeedStats Stats() const;

 private:
  void Resync(int64_t now_ns);
  void PruneIfDue(int64_t now_ns);
  void Publish();
  // At most one warning a minute: a flood of lost events is one problem.
  bool Loggable();

  struct Waiting {
    ForwardedEvent open;
    int64_t check_ns = 0;
    size_t checks = 0;
  };
  void CheckWaiting(int64_t now_ns, std::vector<ForwardedEvent>* out);

  std::unique_ptr<ConntrackReader> reader_;
  // Forwarded opens not assured yet, by original tuple, and the order they
  // are checked in (entries no longer in the map are skipped).
  std::map<CtTuple, Waiting> waiting_;
  std::deque<std::pair<int64_t, CtTuple>> checks_;
  uint64_t unestablished_ = 0, wait_dropped_ = 0;
  NatTable table_;
  std::vector<CtEvent> scratch_;
  // Events were lost and no dump has replaced them yet.
  bool incomplete_ = false;
  uint64_t resyncs_ = 0, resync_failures_ = 0, kernel_lookups_ = 0;
  int64_t prune_interval_ns_ = 60'000'000'000;
  int64_t last_dump_ns_ = 0;
  uint64_t prunes_ = 0, pruned_closed_at_start_ = 0;
  log::RateLimit log_limit_{60'000'000'000};
  mutable std::mutex stats_mu_;
  NatFeedStats stats_;  // guarded by stats_mu_
};

}  // namespace flowmesh
