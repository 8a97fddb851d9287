// NatTable: claims by original and reply tuple, the claim and destroy grace
// periods, forwarded opens and closes, Replace, the bound, and untranslated
// entries left out.
#include "node/nat/nat_table.h"

#include <gtest/gtest.h>

namespace flowmesh {
namespace {

constexpr int64_t kSec = 1'000'000'000;

Endpoint Ep(const char* text) { return *Endpoint::Parse(text); }

// A client 10.0.0.1:port dialling VIP 10.96.0.10:80, DNAT'd to
// 10.1.0.5:8080 (and, with snat, seen by the backend as from 10.0.0.254).
CtEntry Dnat(uint16_t port, bool snat = false, uint32_t id = 0) {
  CtEntry e;
  e.id = id ? id : port;
  e.original = {Ep("10.0.0.1:1"), Ep("10.96.0.10:80")};
  e.original.src.port = port;
  e.reply = {Ep("10.1.0.5:8080"), e.original.src};
  if (snat) e.reply.dst = {Ep("10.0.0.254:1").addr, static_cast<uint16_t>(port + 1000)};
  return e;
}

CtEvent New(const CtEntry& e) { return {CtEventKind::kNew, e}; }
CtEvent Destroy(const CtEntry& e) { return {CtEventKind::kDestroy, e}; }

NatTableOptions Opts(size_t max = 1000) {
  NatTableOptions o;
  o.claim_grace_ns = 2 * kSec;
  o.destroy_grace_ns = 3 * kSec;
  o.max_entries = max;
  return o;
}

TEST(NatTable, ClaimByOriginalAndByReply) {
  NatTable t(Opts());
  CtEntry e = Dnat(40000, /*snat=*/true);
  t.Apply(New(e), 0);
  // The client's socket: its own address to the VIP.
  auto client = t.ClaimOriginal(Ep("10.0.0.1:40000"), Ep("10.96.0.10:80"));
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reply.src, Ep("10.1.0.5:8080"));
  // The backend's socket: its address to the translated client.
  auto server = t.ClaimReply(Ep("10.1.0.5:8080"), Ep("10.0.0.254:41000"));
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->original.dst, Ep("10.96.0.10:80"));
  // Not the other way round.
  EXPECT_FALSE(t.ClaimOriginal(Ep("10.1.0.5:8080"), Ep("10.0.0.254:41000")).has_value());
  EXPECT_FALSE(t.ClaimReply(Ep("10.0.0.1:40000"), Ep("10.96.0.10:80")).has_value());
  EXPECT_EQ(t.Stats().claimed, 1u);
  EXPECT_TRUE(t.TakeForwarded(100 * kSec).empty());
}

TEST(NatTable, UntranslatedIsCountedNotKept) {
  NatTable t(Opts());
  CtEntry plain;
  plain.original = {Ep("10.0.0.1:40000"), Ep("10.1.0.5:8080")};
  plain.reply = {Ep("10.1.0.5:8080"), Ep("10.0.0.1:40000")};
  t.Apply(New(plain), 0);
  t.Replace({plain, Dnat(1)}, kSec);
  EXPECT_EQ(t.Stats().untranslated, 2u);
  EXPECT_EQ(t.Stats().entries, 1u);
  EXPECT_FALSE(t.ClaimOriginal(plain.original.src, plain.original.dst).has_value());
  EXPECT_TRUE(t.TakeForwarded(10 * kSec).size() == 1);  // Dnat(1), unclaimed
}

TEST(NatTable, UnclaimedBecomesForwardedAfterTheGrace) {
  NatTable t(Opts());
  CtEntry e = Dnat(40001);
  t.Apply(New(e), 10 * kSec);
  EXPECT_TRUE(t.TakeForwarded(11 * kSec).empty());  // still within the claim grace
  auto opened = t.TakeForwarded(12 * kSec);
  ASSERT_EQ(opened.size(), 1u);
  EXPECT_FALSE(opened[0].closed);
  EXPECT_EQ(opened[0].ts_ns, 10 * kSec);  // when it was first seen
  EXPECT_EQ(opened[0].entry.original, e.original);
  EXPECT_TRUE(t.TakeForwarded(13 * kSec).empty());

  t.Apply(Destroy(e), 20 * kSec);
  auto closed = t.TakeForwarded(20 * kSec);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_TRUE(closed[0].closed);
  EXPECT_EQ(closed[0].ts_ns, 20 * kSec);
  EXPECT_EQ(t.Stats().forwarded, 1u);
}

TEST(NatTable, ClaimedNeverForwarded) {
  NatTable t(Opts());
  CtEntry e = Dnat(40002);
  t.Apply(New(e), 0);
  ASSERT_TRUE(t.ClaimOriginal(e.original.src, e.original.dst).has_value());
  EXPECT_TRUE(t.TakeForwarded(5 * kSec).empty());
  t.Apply(Destroy(e), 6 * kSec);
  EXPECT_TRUE(t.TakeForwarded(20 * kSec).empty());
  EXPECT_EQ(t.Stats().forwarded, 0u);
}

TEST(NatTable, DestroyedStaysFindableForTheGrace) {
  NatTable t(Opts());
  CtEntry e = Dnat(40003);
  t.Apply(New(e), 0);
  t.Apply(Destroy(e), kSec);
  // The socket's close came from another queue, after the DESTROY.
  EXPECT_TRUE(t.ClaimReply(e.reply.src, e.reply.dst).has_value());
  t.TakeForwarded(3 * kSec);
  EXPECT_TRUE(t.ClaimOriginal(e.original.src, e.original.dst).has_value());
  t.TakeForwarded(4 * kSec);  // destroyed at 1 s + 3 s grace
  EXPECT_FALSE(t.ClaimOriginal(e.original.src, e.original.dst).has_value());
  EXPECT_EQ(t.Stats().entries, 0u);
}

TEST(NatTable, DestroyedBeforeTheGraceGivesOpenThenClose) {
  NatTable t(Opts());
  CtEntry e = Dnat(40004);
  t.Apply(New(e), 0);
  t.Apply(Destroy(e), kSec / 2);
  EXPECT_TRUE(t.TakeForwarded(kSec).empty());
  auto ev = t.TakeForwarded(2 * kSec);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].closed);
  EXPECT_EQ(ev[0].ts_ns, 0);
  EXPECT_TRUE(ev[1].closed);
  EXPECT_EQ(ev[1].ts_ns, kSec / 2);
}

TEST(NatTable, DestroyGraceShorterThanClaimGraceStillForwards) {
  NatTableOptions o = Opts();
  o.destroy_grace_ns = kSec / 4;
  NatTable t(o);
  CtEntry e = Dnat(40005);
  t.Apply(New(e), 0);
  t.Apply(Destroy(e), kSec / 4);
  auto ev = t.TakeForwarded(kSec);  // forgotten now, claim grace not over
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].closed);
  EXPECT_TRUE(ev[1].closed);
  EXPECT_TRUE(t.TakeForwarded(10 * kSec).empty());
}

TEST(NatTable, ForwardedEventsComeInTimeOrder) {
  NatTable t(Opts());
  CtEntry a = Dnat(1), b = Dnat(2), c = Dnat(3);
  t.Apply(New(a), 0);
  t.Apply(New(b), kSec);
  t.Apply(New(c), 2 * kSec);
  t.Apply(Destroy(a), 3 * kSec);
  auto ev = t.TakeForwarded(4 * kSec);  // a: open+close, b: open, c: open
  ASSERT_EQ(ev.size(), 4u);
  for (size_t i = 1; i < ev.size(); i++) EXPECT_LE(ev[i - 1].ts_ns, ev[i].ts_ns);
  EXPECT_EQ(ev[0].entry.original.src.port, 1);
  EXPECT_FALSE(ev[0].closed);
  EXPECT_TRUE(ev[3].closed);
  EXPECT_EQ(ev[3].entry.original.src.port, 1);
}

TEST(NatTable, ReplaceDestroysWhatIsGoneAndAddsWhatIsNew) {
  NatTable t(Opts());
  CtEntry kept = Dnat(10), gone = Dnat(11), added = Dnat(12);
  t.Apply(New(kept), 0);
  t.Apply(New(gone), 0);
  ASSERT_EQ(t.TakeForwarded(5 * kSec).size(), 2u);  // both forwarded opens
  t.Replace({kept, added}, 10 * kSec);
  auto ev = t.TakeForwarded(10 * kSec);
  ASSERT_EQ(ev.size(), 1u);  // gone: closed now; added: within its grace
  EXPECT_TRUE(ev[0].closed);
  EXPECT_EQ(ev[0].entry.original.src.port, 11);
  EXPECT_EQ(ev[0].ts_ns, 10 * kSec);
  ev = t.TakeForwarded(12 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].entry.original.src.port, 12);
  EXPECT_EQ(ev[0].ts_ns, 10 * kSec);  // first seen = the dump's time
  EXPECT_TRUE(t.ClaimOriginal(kept.original.src, kept.original.dst).has_value());
}

TEST(NatTable, APruneOnlyRemovesWhatIsGoneAndKeepsHowFarItGot) {
  NatTable t(Opts());
  CtEntry kept = Dnat(20), gone = Dnat(21), unseen = Dnat(22);
  t.Apply(New(kept), 0);
  t.Apply(New(gone), 0);
  ASSERT_EQ(t.TakeForwarded(5 * kSec).size(), 2u);
  kept.status = 4;  // ASSURED since
  t.Replace({kept, unseen}, 10 * kSec, /*add_missing=*/false);
  auto ev = t.TakeForwarded(20 * kSec);
  ASSERT_EQ(ev.size(), 1u);  // gone closed; unseen never added
  EXPECT_TRUE(ev[0].closed);
  EXPECT_EQ(ev[0].entry.original.src.port, 21);
  EXPECT_FALSE(t.ClaimOriginal(unseen.original.src, unseen.original.dst).has_value());
  std::optional<CtEntry> k = t.ClaimOriginal(kept.original.src, kept.original.dst);
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(k->status, 4u);
}

TEST(NatTable, AnEntryNoSocketCanClaimIsForwardedAtOnce) {
  NatTableOptions o = Opts();
  o.unclaimable = [](const CtEntry& e) { return e.original.src.port == 30; };
  NatTable t(o);
  t.Apply(New(Dnat(30)), 0);
  t.Apply(New(Dnat(31)), 0);
  auto ev = t.TakeForwarded(1);  // long before the 2 s grace
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].entry.original.src.port, 30);
  EXPECT_FALSE(ev[0].closed);
  EXPECT_TRUE(t.TakeForwarded(kSec).empty());  // 31 still waits for a claim
}

TEST(NatTable, ReusedTupleClosesTheOldConnection) {
  NatTable t(Opts());
  CtEntry old = Dnat(20, false, 1), fresh = Dnat(20, false, 2);
  t.Apply(New(old), 0);
  ASSERT_EQ(t.TakeForwarded(3 * kSec).size(), 1u);
  t.Apply(New(fresh), 4 * kSec);  // the old one's DESTROY was lost
  auto ev = t.TakeForwarded(4 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].closed);
  EXPECT_EQ(ev[0].entry.id, 1u);
  // A late DESTROY of the old id does not touch the new connection.
  t.Apply(Destroy(old), 5 * kSec);
  auto claimed = t.ClaimOriginal(fresh.original.src, fresh.original.dst);
  ASSERT_TRUE(claimed.has_value());
  EXPECT_EQ(claimed->id, 2u);
  EXPECT_TRUE(t.TakeForwarded(20 * kSec).empty());
}

TEST(NatTable, BoundEvictsTheOldest) {
  NatTable t(Opts(/*max=*/3));
  for (uint16_t p = 1; p <= 5; p++) t.Apply(New(Dnat(p)), p * kSec);
  EXPECT_EQ(t.Stats().entries, 3u);
  EXPECT_EQ(t.Stats().evicted, 2u);
  EXPECT_FALSE(t.ClaimOriginal(Dnat(1).original.src, Dnat(1).original.dst).has_value());
  EXPECT_FALSE(t.ClaimOriginal(Dnat(2).original.src, Dnat(2).original.dst).has_value());
  EXPECT_TRUE(t.ClaimOriginal(Dnat(3).original.src, Dnat(3).original.dst).has_value());
  // The evicted were never handed out: no close for an open nobody saw.
  auto ev = t.TakeForwarded(100 * kSec);
  for (const ForwardedEvent& f : ev) EXPECT_GE(f.entry.original.src.port, 4);
}

TEST(NatTable, EvictedForwardedConnectionIsClosed) {
  NatTable t(Opts(/*max=*/1));
  t.Apply(New(Dnat(1)), 0);
  ASSERT_EQ(t.TakeForwarded(3 * kSec).size(), 1u);
  t.Apply(New(Dnat(2)), 4 * kSec);
  auto ev = t.TakeForwarded(4 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].closed);
  EXPECT_EQ(ev[0].entry.original.src.port, 1);
  EXPECT_EQ(t.Stats().evicted, 1u);
}

TEST(NatTable, DuplicateNewFromDumpAndEventIsOneEntry) {
  NatTable t(Opts());
  CtEntry e = Dnat(30);
  t.Apply(New(e), 0);
  t.Replace({e}, kSec);
  t.Apply(New(e), kSec);
  EXPECT_EQ(t.Stats().entries, 1u);
  auto ev = t.TakeForwarded(3 * kSec);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].ts_ns, 0);
}

}  // namespace
}  // namespace flowmesh
