// The translated TCP connections conntrack reports, indexed for the
// aggregator: a local socket finds the translation it went through (client
// side: its tuple is an original tuple; server side: its tuple is a reply
// tuple), and what no local socket claims was forwarded through this node
// (a balancer's connection). Entries without translation are not kept.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/nat/conntrack.h"

namespace flowmesh {

struct NatTableOptions {
  // A destroyed entry stays findable this long: its socket's events may be
  // read after the DESTROY (they come from another queue).
  int64_t destroy_grace_ns = 2'000'000'000;
  // An entry no local socket claimed this long after it was seen is a
  // forwarded connection.
  int64_t claim_grace_ns = 2'000'000'000;
  size_t max_entries = 1 << 18;
  // Entries no local socket can claim (neither end is an address of this
  // node's recorded namespaces) are forwarded at once, not after the grace;
  // empty = every entry waits.
  std::function<bool(const CtEntry&)> unclaimable;
};

struct NatTableStats {
  uint64_t entries = 0;        // translated entries held now
  uint64_t untranslated = 0;   // entries seen without translation (ignored)
  uint64_t claimed = 0;        // found by a local socket
  uint64_t forwarded = 0;      // handed out as forwarded opens
  uint64_t evicted = 0;        // dropped to stay within max_entries
};

// A forwarded connection's open or close (a balancer's): no local socket.
struct ForwardedEvent {
  bool closed = false;
  int64_t ts_ns = 0;  // Unix epoch ns
  CtEntry entry;
};

class NatTable {
 public:
  explicit NatTable(NatTableOptions options = {});
  ~NatTable();
  NatTable(NatTable&&) noexcept;
  NatTable& operator=(NatTable&&) noexcept;

  void Apply(const CtEvent& ev, int64_t now_ns);
  // Replaces the whole table with a dump (start-up, after lost events):
  // entries gone from the dump are destroyed now. Without `add_missing` (the
  // periodic dump) it only prunes: an entry made before any conntrack
  // listener existed never gets a DESTROY event.
  void Replace(const std::vector<CtEntry>& dump, int64_t now_ns, bool add_missing = true);

  // Client side: the entry whose original tuple is (laddr:lport ->
  // raddr:rport); marks it claimed.
  std::optional<CtEntry> ClaimOriginal(const Endpoint& local, const Endpoint& remote);
  // Server side: the entry whose reply tuple is (laddr:lport ->
  // raddr:rport); marks it claimed.
  std::optional<CtEntry> ClaimReply(const Endpoint& local, const Endpoint& remote);

  // Forwarded opens (unclaimed for claim_grace) and their closes, in order.
  std::vector<ForwardedEvent> TakeForwarded(int64_t now_ns);

  NatTableStats Stats() const;

 private:
  // (defined by the implementation)
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh
