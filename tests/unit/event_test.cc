// Ring-buffer record decoding and the kernel-counter-to-payload rules.
#include <sys/socket.h>

#include <cstring>

#include <gtest/gtest.h>

#include "node/probe/event.h"

namespace flowmesh {
namespace {

fm_event RawOpen() {
  fm_event r{};
  r.kind = FM_EV_OPEN;
  r.direction = FM_DIR_ACTIVE;
  r.family = AF_INET;
  r.lport = 40000;
  r.rport = 80;
  r.pid = 42;
  r.netns = 4026531840u;
  r.proc_start_ns = 1'230'000'000;  // 1.23 s after boot
  uint8_t l[4] = {10, 0, 0, 1}, rr[4] = {10, 0, 0, 2};
  std::memcpy(r.laddr, l, 4);
  std::memcpy(r.raddr, rr, 4);
  std::strcpy(r.comm, "curl");
  return r;
}

TEST(DecodeEvent, DecodesEveryField) {
  fm_event r = RawOpen();
  r.kind = FM_EV_CLOSE;
  r.bytes_acked = 102;
  r.bytes_received = 2001;
  r.segs_out = 5;
  r.segs_in = 7;
  r.total_retrans = 1;
  r.srtt_us = 250;
  r.rttvar_us = 40;
  r.duration_ns = 5'000'000;
  r.tcp_flags = FM_TCP_FIN_ACKED;
  r.cgroup_id = 0x1'0000'2345;  // ids are inodes; the high half must survive too
  Result<ConnEvent> ev = DecodeEvent(&r, sizeof r);
  ASSERT_TRUE(ev.ok()) << ev.status().message();
  EXPECT_EQ(ev->kind, EventKind::kClose);
  EXPECT_EQ(ev->direction, Direction::kActive);
  EXPECT_EQ(ev->source, EventSource::kKernel);
  EXPECT_EQ(ev->key.laddr.ToString(), "10.0.0.1");
  EXPECT_EQ(ev->key.raddr.ToString(), "10.0.0.2");
  EXPECT_EQ(ev->key.lport, 40000);
  EXPECT_EQ(ev->key.rport, 80);
  EXPECT_EQ(ev->key.netns, 4026531840u);
  EXPECT_EQ(ev->proc.pid, 42u);
  EXPECT_EQ(ev->proc.comm_view(), "curl");
  EXPECT_EQ(ev->proc.start_ticks, 123u);  // USER_HZ = 100
  EXPECT_EQ(ev->proc.cgroup_id, 0x1'0000'2345u);
  EXPECT_EQ(ev->counters.bytes_tx, 102u);
  EXPECT_EQ(ev->counters.bytes_rx, 2001u);
  EXPECT_EQ(ev->counters.segs_out, 5u);
  EXPECT_EQ(ev->counters.segs_in, 7u);
  EXPECT_EQ(ev->counters.retrans, 1u);
  EXPECT_EQ(ev->counters.rtt_us, 250u);
  EXPECT_EQ(ev->counters.rttvar_us, 40u);
  EXPECT_EQ(ev->duration_ns, 5'000'000u);
  EXPECT_EQ(ev->tcp_flags, FM_TCP_FIN_ACKED);
}

TEST(DecodeEvent, FoldsV4MappedAddresses) {
  fm_event r = RawOpen();
  r.family = AF_INET6;
  uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 9};
  std::memcpy(r.laddr, mapped, 16);
  std::memcpy(r.raddr, mapped, 16);
  Result<ConnEvent> ev = DecodeEvent(&r, sizeof r);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->key.laddr.ToString(), "192.168.1.9");
  EXPECT_TRUE(ev->key.laddr.is_v4());
}

TEST(DecodeEvent, RejectsShortRecordsAndUnknownValues) {
  fm_event r = RawOpen();
  EXPECT_FALSE(DecodeEvent(&r, sizeof r - 1).ok());
  r.kind = 9;
  EXPECT_FALSE(DecodeEvent(&r, sizeof r).ok());
  r = RawOpen();
  r.family = 1;  // AF_UNIX
  EXPECT_FALSE(DecodeEvent(&r, sizeof r).ok());
  r = RawOpen();
  r.direction = 7;
  EXPECT_FALSE(DecodeEvent(&r, sizeof r).ok());
}

TEST(DecodeEvent, UnterminatedCommStaysInBounds) {
  fm_event r = RawOpen();
  std::memset(r.comm, 'a', sizeof r.comm);
  Result<ConnEvent> ev = DecodeEvent(&r, sizeof r);
  ASSERT_TRUE(ev.ok());
  EXPECT_EQ(ev->proc.comm_view().size(), sizeof r.comm - 1);
}

TEST(PayloadCounters, RemovesSynAndFinsFromSequenceSpace) {
  TcpCounters raw;
  raw.bytes_tx = 1002;  // client: SYN + 1000 bytes + FIN
  raw.bytes_rx = 5001;  // 5000 bytes + FIN
  TcpCounters c = PayloadCounters(raw, Direction::kActive, FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);
  EXPECT_EQ(c.bytes_tx, 1000u);
  EXPECT_EQ(c.bytes_rx, 5000u);
  // The passive side's SYN-ACK is not in bytes_acked.
  raw.bytes_tx = 5001;
  raw.bytes_rx = 1001;
  c = PayloadCounters(raw, Direction::kPassive, FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);
  EXPECT_EQ(c.bytes_tx, 5000u);
  EXPECT_EQ(c.bytes_rx, 1000u);
  // Reset without FINs; nothing ever goes below zero.
  raw = {};
  c = PayloadCounters(raw, Direction::kActive, FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);
  EXPECT_EQ(c.bytes_tx, 0u);
  EXPECT_EQ(c.bytes_rx, 0u);
}

TEST(TcpFlagsForState, MatchesWhatEachStateHasSeen) {
  EXPECT_EQ(TcpFlagsForState(1), 0);                         // ESTABLISHED
  EXPECT_EQ(TcpFlagsForState(4), 0);                         // FIN_WAIT1: FIN not yet acked
  EXPECT_EQ(TcpFlagsForState(5), FM_TCP_FIN_ACKED);          // FIN_WAIT2
  EXPECT_EQ(TcpFlagsForState(8), FM_TCP_FIN_RECEIVED);       // CLOSE_WAIT
  EXPECT_EQ(TcpFlagsForState(9), FM_TCP_FIN_RECEIVED);       // LAST_ACK
  EXPECT_EQ(TcpFlagsForState(6), FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED);  // TIME_WAIT
}

}  // namespace
}  // namespace flowmesh
