// The kernel's connection tracking table through NETLINK_NETFILTER (libmnl,
// nfnetlink_conntrack): TCP entries with their original and reply tuples,
// from events, dumps and single lookups. Which tool wrote the NAT rules
// (iptables, nftables, IPVS, kube-proxy) does not matter: the tuples say
// what was translated.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"

struct nlmsghdr;

namespace flowmesh {

// One direction of a tracked connection, as the kernel keys it.
struct CtTuple {
  Endpoint src;
  Endpoint dst;
  auto operator<=>(const CtTuple&) const = default;
};

struct CtEntry {
  uint32_t netns = 0;  // inode of the namespace whose table holds it
  uint32_t id = 0;     // CTA_ID: tells a reused tuple apart
  CtTuple original;    // as the connection's first packet had it
  CtTuple reply;       // as the other end sends back (after translation)
  uint32_t status = 0; // IPS_* bits
  // TCP_CONNTRACK_* (CTA_PROTOINFO_TCP_STATE): 3 established, 7 time-wait,
  // 8 close; 0 = not said (events other than a dump's may leave it out).
  uint8_t tcp_state = 0;
  // CTA_COUNTERS_ORIG/REPLY when the kernel accounts (nf_conntrack_acct);
  // 0 otherwise.
  uint64_t bytes_orig = 0;
  uint64_t bytes_reply = 0;

  // The destination was rewritten: the client dialled original.dst, the
  // server is reply.src.
  bool dnat() const { return original.dst != reply.src; }
  // The source was rewritten: the server sees reply.dst as the client.
  bool snat() const { return original.src != reply.dst; }
  bool translated() const { return dnat() || snat(); }
};

enum class CtEventKind : uint8_t { kNew, kDestroy };

struct CtEvent {
  CtEventKind kind = CtEventKind::kNew;
  CtEntry entry;
};

// Parses one IPCTNL_MSG_CT_NEW / IPCTNL_MSG_CT_DELETE message (an event, a
// dump reply or a get reply). Trusts nothing but nlh->nlmsg_len bytes: a
// short header, a bad or missing attribute or an unknown family is an error
// (counted and skipped by the caller). A message that parses but is not TCP
// returns NotFound (skipped, not counted as malformed).
Status ParseCtMessage(const struct nlmsghdr* nlh, uint32_t netns, CtEvent* out);

struct ConntrackStats {
  uint64_t events = 0;     // NEW/DESTROY messages read
  uint64_t malformed = 0;  // messages that did not parse (dropped)
  uint64_t overflows = 0;  // ENOBUFS: the kernel dropped events for us
  uint64_t dumps = 0;      // whole-table dumps (start-up, after an overflow)
  uint64_t gets = 0;       // single-tuple lookups
};

// A conntrack netlink socket in meshd's own network namespace: events of
// new and destroyed entries (NFNLGRP_CONNTRACK_NEW, _DESTROY), whole-table
// dumps and lookups by original tuple. Not thread-safe: the probe thread
// owns it.
class ConntrackReader {
 public:
  // Fails with the reason an operator needs: nf_conntrack not loaded
  // (the protocol is not supported), not permitted (CAP_NET_ADMIN is needed
  // to join the conntrack event groups and to dump), ... Opens in the
  // calling thread's network namespace and asks the kernel once
  // (IPCTNL_MSG_CT_GET_STATS) so that a reader that opened can be used.
  static Result<std::unique_ptr<ConntrackReader>> Open();
  virtual ~ConntrackReader() = default;

  // The event socket, non-blocking, for an epoll set.
  virtual int fd() const = 0;
  uint32_t netns() const { return netns_; }
  // Reads at most `max` pending events without blocking. An ENOBUFS
  // (events lost) is counted and returns `lost` = true: the caller's view is
  // incomplete until its next Dump.
  virtual Status Drain(std::vector<CtEvent>* out, size_t max, bool* lost) = 0;
  // Every TCP entry now, IPv4 and IPv6. Dump periodically, not only at
  // start-up: with net.netfilter.nf_conntrack_events=2 (the default) an
  // entry made while no conntrack event listener existed anywhere on the
  // host (the kernel's flag is global) never gets a DESTROY event, so
  // entries open before meshd started leave only by a dump (kernel test
  // ConntrackDnat.EntryOlderThanTheReaderIsGoneOnlyFromTheDump). A dump also
  // evicts expired entries, whose DESTROY otherwise waits for the kernel's
  // garbage collection.
  virtual Status Dump(std::vector<CtEntry>* out) = 0;
  // The entry whose original tuple this is, if the kernel tracks one.
  virtual Result<std::optional<CtEntry>> Get(const CtTuple& original) = 0;
  virtual ConntrackStats Stats() const = 0;

 protected:
  uint32_t netns_ = 0;
};

}  // namespace flowmesh
