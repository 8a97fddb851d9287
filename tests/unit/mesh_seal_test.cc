// Sealing: AES-256-GCM round trips and every way to fail (key, label, a
// flipped bit, truncation), key rotation, the replay guard, and the
// SealedTransport decorator over a tiny in-memory transport pair and over the
// simulated network.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <deque>
#include <limits>
#include <map>
#include <memory>

#include "node/mesh/seal.h"
#include "node/mesh/seal_replay.h"
#include "node/mesh/sealed_transport.h"
#include "node/mesh/sim/sim_network.h"

namespace flowmesh::mesh {
namespace {

using ::testing::HasSubstr;

Key K(uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

Keyring Ring(std::vector<Key> keys) { return *Keyring::FromKeys(keys); }

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }

TEST(MeshSeal, RoundTripAddsTheEnvelopeAndARandomNonce) {
  Keyring ring = Ring({K(1)});
  Sealer sealer(ring, "prod");
  Result<Bytes> a = sealer.Seal(B("hello mesh"));
  Result<Bytes> b = sealer.Seal(B("hello mesh"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 10 + kSealOverhead);
  EXPECT_EQ((*a)[0], kSealVersion);
  EXPECT_NE(*a, *b) << "same plaintext, fresh nonce, different bytes";
  EXPECT_EQ(S(*a).find("hello"), std::string::npos);
  Result<Bytes> opened = sealer.Open(*a);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(S(*opened), "hello mesh");
  Result<Bytes> empty = sealer.Seal({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(sealer.Open(*empty).ok());
}

TEST(MeshSeal, WrongKeyOrWrongLabelCannotOpen) {
  Keyring ring1 = Ring({K(1)});
  Keyring ring2 = Ring({K(2)});
  Sealer prod(ring1, "prod");
  Sealer other_key(ring2, "prod");
  Sealer other_label(ring1, "staging");
  Bytes sealed = *prod.Seal(B("secret"));
  Result<Bytes> r = other_key.Open(sealed);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("no installed key opens it"));
  EXPECT_FALSE(other_label.Open(sealed).ok());
  EXPECT_TRUE(prod.Open(sealed).ok());
}

TEST(MeshSeal, EveryFlippedBitAndEveryTruncationFails) {
  Keyring ring = Ring({K(1)});
  Sealer sealer(ring, "prod");
  Bytes sealed = *sealer.Seal(B("membership update"));
  for (size_t i = 0; i < sealed.size(); i++) {
    Bytes bad = sealed;
    bad[i] ^= 0x01;
    EXPECT_FALSE(sealer.Open(bad).ok()) << "byte " << i;
  }
  for (size_t n = 0; n < sealed.size(); n++)
    EXPECT_FALSE(sealer.Open(std::span<const uint8_t>(sealed).first(n)).ok()) << n;
}

TEST(MeshSeal, EmptyKeyringCannotSeal) {
  Keyring empty;
  Sealer sealer(empty, "prod");
  EXPECT_FALSE(sealer.Seal(B("x")).ok());
}

TEST(MeshSeal, RotationPrimariesMayDifferWhileBothKeysAreInstalled) {
  // Mid-rotation: k2 installed everywhere, A not yet switched to it.
  Keyring a_ring = Ring({K(1), K(2)});
  Keyring b_ring = Ring({K(2), K(1)});
  Sealer a(a_ring, "prod");
  Sealer b(b_ring, "prod");
  EXPECT_TRUE(b.Open(*a.Seal(B("a to b"))).ok());
  EXPECT_TRUE(a.Open(*b.Seal(B("b to a"))).ok());

  // A node that has only the new key reads the new key's traffic but not the
  // old primary's: why rotation installs everywhere before anyone uses.
  Keyring c_ring = Ring({K(2)});
  Sealer c(c_ring, "prod");
  EXPECT_TRUE(a.Open(*c.Seal(B("c to a"))).ok());
  EXPECT_FALSE(c.Open(*a.Seal(B("a to c"))).ok());

  // The sealer reads the ring live: removing k1 stops it at once.
  Bytes old = *a.Seal(B("under k1"));
  ASSERT_TRUE(b_ring.Remove(K(1)).ok());
  EXPECT_FALSE(b.Open(old).ok());
}

TEST(MeshReplay, FreshOnceThenReplayedAndOutsideTheWindowRefused) {
  ReplayGuard guard({.window_ns = 1000, .max_remembered = 100});
  EXPECT_EQ(guard.Check(5000, 1, 5000), Freshness::kFresh);
  EXPECT_EQ(guard.Check(5000, 1, 5001), Freshness::kReplayed);
  EXPECT_EQ(guard.Check(5000, 2, 5001), Freshness::kFresh);
  EXPECT_EQ(guard.Check(3999, 3, 5000), Freshness::kTooOld);
  EXPECT_EQ(guard.Check(4000, 3, 5000), Freshness::kFresh);  // exactly at the edge
  EXPECT_EQ(guard.Check(6001, 4, 5000), Freshness::kTooNew);
  EXPECT_EQ(guard.Check(6000, 4, 5000), Freshness::kFresh);
}

TEST(MeshReplay, ForgettingNeverReopensAReplay) {
  ReplayGuard guard({.window_ns = 1000, .max_remembered = 3});
  for (uint64_t id = 1; id <= 3; id++)
    EXPECT_EQ(guard.Check(5000 + id, id, 5000), Freshness::kFresh);
  // Full: the oldest (5001, id 1) is forgotten to make room...
  EXPECT_EQ(guard.Check(5010, 10, 5000), Freshness::kFresh);
  EXPECT_EQ(guard.remembered(), 3u);
  // ...and is still refused, now by the floor.
  EXPECT_EQ(guard.Check(5001, 1, 5000), Freshness::kBeforeFloor);
  // A new message older than everything remembered cannot be proven fresh.
  EXPECT_EQ(guard.Check(5002, 99, 5000), Freshness::kBeforeFloor);
  EXPECT_EQ(guard.Check(5003, 3, 5000), Freshness::kReplayed);

  // Time moves on: everything is forgotten, the set empties.
  EXPECT_EQ(guard.Check(9000, 50, 9000), Freshness::kFresh);
  EXPECT_EQ(guard.remembered(), 1u);
  // The clock steps back: the forgotten messages are still refused.
  EXPECT_EQ(guard.Check(5010, 10, 5000), Freshness::kBeforeFloor);
}

// A pair (or more) of in-memory transports; nothing is delivered until
// Pump(), so callbacks never run inside a send, like a real network.
class MemNet {
 public:
  class Node : public Transport {
   public:
    Node(MemNet* net, Address address) : net_(net), address_(std::move(address)) {}
    const Address& LocalAddress() const override { return address_; }
    void SetHandlers(PacketHandler p, ExchangeHandler e) override {
      on_packet = std::move(p);
      on_exchange = std::move(e);
    }
    void SendPacket(const Address& to, Bytes packet) override {
      net_->wire.push_back(packet);
      net_->Inject(address_, to, std::move(packet));
    }
    void Exchange(const Address& to, Bytes request, int64_t, ExchangeDone done) override {
      net_->wire.push_back(request);
      net_->tasks_.push_back([this, to, request = std::move(request), done = std::move(done)] {
        Result<Bytes> r = net_->CallExchange(address_, to, request);
        if (r.ok()) {
          net_->responses.push_back(*r);
          if (net_->rewrite_response) net_->rewrite_response(*r);
        }
        done(std::move(r));
      });
    }
    size_t MaxPacketBytes() const override { return 1400; }
    void SetAdmission(size_t bytes, Admission check) override {
      head_bytes = bytes;
      admit = std::move(check);
    }
    PacketHandler on_packet;
    ExchangeHandler on_exchange;
    size_t head_bytes = 0;
    Admission admit;

   private:
    MemNet* net_;
    Address address_;
  };

  Node* Add(const Address& a) {
    return nodes_.emplace(a, std::make_unique<Node>(this, a)).first->second.get();
  }
  void Inject(const Address& from, const Address& to, Bytes packet) {
    tasks_.push_back([this, from, to, packet = std::move(packet)] {
      auto it = nodes_.find(to);
      if (it != nodes_.end() && it->second->on_packet) it->second->on_packet(from, packet);
    });
  }
  Result<Bytes> CallExchange(const Address& from, const Address& to, const Bytes& request) {
    auto it = nodes_.find(to);
    if (it == nodes_.end() || !it->second->on_exchange) return Unavailable("connection refused");
    // Synchronous handlers answer inside the call; the test handlers all do.
    Result<Bytes> answer = Unavailable("not answered");
    it->second->on_exchange(from, request, [&answer](Result<Bytes> r) { answer = std::move(r); });
    return answer;
  }
  void Pump() {
    for (int i = 0; i < 10000 && !tasks_.empty(); i++) {
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      task();
    }
  }

  std::vector<Bytes> wire;       // every packet and request sent
  std::vector<Bytes> responses;  // every exchange response
  std::function<void(Bytes&)> rewrite_response;

 private:
  std::map<Address, std::unique_ptr<Node>> nodes_;
  std::deque<std::function<void()>> tasks_;
};

// One sealed endpoint over a MemNet node, recording what reaches it.
struct Peer {
  Peer(MemNet& net, const Address& address, Keyring ring, std::string label)
      : keyring(std::move(ring)), inner(net.Add(address)) {
    SealOptions options;
    options.label = std::move(label);
    options.wall_clock = [this] { return clock_ns; };
    sealed = std::make_unique<SealedTransport>(*inner, keyring, std::move(options));
    Listen();
  }
  void Listen() {
    sealed->SetHandlers(
        [this](const Address& from, std::span<const uint8_t> p) { packets.push_back(S(p)); },
        AnswerAtOnce([this](const Address& from, std::span<const uint8_t> req) -> Result<Bytes> {
          requests.push_back(S(req));
          return B("re: " + S(req));
        }));
  }
  std::vector<Result<Bytes>> Ask(Peer& other, MemNet& net, const std::string& text) {
    std::vector<Result<Bytes>> out;
    sealed->Exchange(other.inner->LocalAddress(), B(text), 1'000'000'000,
                     [&out](Result<Bytes> r) { out.push_back(std::move(r)); });
    net.Pump();
    return out;
  }
  int64_t clock_ns = 1'700'000'000'000'000'000;
  Keyring keyring;
  MemNet::Node* inner;
  std::unique_ptr<SealedTransport> sealed;
  std::vector<std::string> packets;
  std::vector<std::string> requests;
};

TEST(MeshSealedTransport, PacketsAndExchangesRoundTripEncrypted) {
  MemNet net;
  Peer a(net, "10.0.0.1:7946", Ring({K(1)}), "prod");
  Peer b(net, "10.0.0.2:7946", Ring({K(1)}), "prod");
  EXPECT_EQ(a.sealed->MaxPacketBytes(), 1400 - kSealOverhead - kSealHeaderBytes);
  a.sealed->SendPacket("10.0.0.2:7946", B("ping from a"));
  net.Pump();
  EXPECT_EQ(b.packets, std::vector<std::string>{"ping from a"});
  ASSERT_EQ(net.wire.size(), 1u);
  EXPECT_EQ(net.wire[0].size(), 11 + kSealOverhead + kSealHeaderBytes);
  EXPECT_EQ(S(net.wire[0]).find("ping"), std::string::npos);

  auto answers = a.Ask(b, net, "sync please");
  ASSERT_EQ(answers.size(), 1u);
  ASSERT_TRUE(answers[0].ok()) << answers[0].status().message();
  EXPECT_EQ(S(*answers[0]), "re: sync please");
  EXPECT_EQ(S(net.responses.at(0)).find("re:"), std::string::npos);
  EXPECT_EQ(a.sealed->stats().sealed, 2u);  // packet + request
  EXPECT_EQ(a.sealed->stats().opened, 1u);  // response
  EXPECT_EQ(b.sealed->stats().opened, 2u);
  EXPECT_EQ(b.sealed->stats().sealed, 1u);
}

TEST(MeshSealedTransport, WrongKeyOrLabelChangesNothing) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer stranger(net, "s:1", Ring({K(9)}), "prod");
  Peer other_label(net, "o:1", Ring({K(1)}), "staging");
  for (Peer* p : {&stranger, &other_label}) {
    p->sealed->SendPacket("a:1", B("suspect everyone"));
    net.Pump();
    auto answers = p->Ask(a, net, "give me your tables");
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_FALSE(answers[0].ok());
  }
  EXPECT_TRUE(a.packets.empty());
  EXPECT_TRUE(a.requests.empty());
  EXPECT_EQ(a.sealed->stats().open_failed, 4u);
  EXPECT_EQ(a.sealed->stats().opened, 0u);
  // And a's own requests to them go unanswered by their handlers too.
  auto answers = a.Ask(stranger, net, "hello?");
  EXPECT_FALSE(answers.at(0).ok());
  EXPECT_TRUE(stranger.requests.empty());
}

TEST(MeshSealedTransport, ReplayedPacketsAndRequestsAreRejected) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  a.sealed->SendPacket("b:1", B("alive"));
  net.Pump();
  a.Ask(b, net, "sync");
  ASSERT_EQ(net.wire.size(), 2u);
  // An attacker on the path records and resends both, even from elsewhere.
  net.Inject("a:1", "b:1", net.wire[0]);
  net.Inject("x:9", "b:1", net.wire[0]);
  net.Pump();
  Result<Bytes> again = net.CallExchange("a:1", "b:1", net.wire[1]);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(b.packets.size(), 1u);
  EXPECT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(b.sealed->stats().replayed, 3u);
}

TEST(MeshSealedTransport, ARestartedNodeRefusesWhatWasSentBeforeItStarted) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  a.sealed->SendPacket("b:1", B("before"));
  net.Pump();
  ASSERT_EQ(b.packets.size(), 1u);
  // b restarts a second later: an empty replay set, but a floor at its start.
  b.clock_ns += 1'000'000'000;
  SealOptions options;
  options.label = "prod";
  options.wall_clock = [&b] { return b.clock_ns; };
  b.sealed = std::make_unique<SealedTransport>(*b.inner, b.keyring, options);
  b.Listen();
  net.Inject("a:1", "b:1", net.wire.at(0));
  net.Pump();
  EXPECT_EQ(b.packets.size(), 1u);
  // Not blamed on the clocks: they agree to a second.
  EXPECT_EQ(b.sealed->stats().before_floor, 1u);
  EXPECT_EQ(b.sealed->stats().too_old, 0u);
  a.clock_ns = b.clock_ns - 1'000'000'000;
  a.Ask(b, net, "sent before b started");
  Result<Bytes> refused = net.CallExchange("a:1", "b:1", net.wire.back());
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("replayed or sent before this node started"));
  EXPECT_THAT(refused.status().message(), ::testing::Not(HasSubstr("NTP")));
  a.clock_ns = b.clock_ns;
  a.sealed->SendPacket("b:1", B("after"));
  net.Pump();
  EXPECT_EQ(b.packets.back(), "after");
}

TEST(MeshSealedTransport, OldResponsesCannotAnswerNewRequests) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  ASSERT_TRUE(a.Ask(b, net, "first").at(0).ok());
  Bytes first = net.responses.at(0);
  net.rewrite_response = [&](Bytes& r) { r = first; };
  auto answers = a.Ask(b, net, "second");
  ASSERT_FALSE(answers.at(0).ok());
  EXPECT_THAT(answers[0].status().message(), HasSubstr("another request"));
  EXPECT_EQ(a.sealed->stats().replayed, 1u);
}

TEST(MeshSealedTransport, ClocksApartByMoreThanTheWindowAreRefused) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  a.clock_ns = b.clock_ns - 31'000'000'000;  // 31 s behind, window is 30 s
  a.sealed->SendPacket("b:1", B("old"));
  a.clock_ns = b.clock_ns + 31'000'000'000;
  a.sealed->SendPacket("b:1", B("future"));
  a.clock_ns = b.clock_ns + 29'000'000'000;
  a.sealed->SendPacket("b:1", B("skewed but fine"));
  net.Pump();
  EXPECT_EQ(b.packets, std::vector<std::string>{"skewed but fine"});
  EXPECT_EQ(b.sealed->stats().too_old, 1u);
  EXPECT_EQ(b.sealed->stats().too_new, 1u);

  // A recorded packet replayed after the window is too old, not "fresh".
  b.clock_ns += 120'000'000'000;
  net.Inject("a:1", "b:1", net.wire.back());
  net.Pump();
  EXPECT_EQ(b.sealed->stats().too_old, 2u);
  EXPECT_EQ(b.packets.size(), 1u);
}

// Found by tests/fuzz/mesh_stream_fuzz: the refusal's message subtracted our
// clock from the sender's, which overflowed for a sender at INT64_MIN.
TEST(MeshSealedTransport, ClocksAtTheEndsOfTheRangeAreRefusedWithoutOverflow) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  a.clock_ns = std::numeric_limits<int64_t>::min();
  a.sealed->SendPacket("b:1", B("from the dawn of time"));
  a.clock_ns = std::numeric_limits<int64_t>::max();
  a.sealed->SendPacket("b:1", B("from the end of time"));
  net.Pump();
  EXPECT_TRUE(b.packets.empty());
  EXPECT_EQ(b.sealed->stats().too_old, 1u);
  EXPECT_EQ(b.sealed->stats().too_new, 1u);
}

TEST(MeshSealedTransport, KeysRotateWithoutAnyNodeLosingTheOther) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  auto both_ways = [&] {
    bool ok = a.Ask(b, net, "x").at(0).ok() && b.Ask(a, net, "y").at(0).ok();
    return ok;
  };
  ASSERT_TRUE(a.keyring.Install(K(2)).ok());
  EXPECT_TRUE(both_ways());
  ASSERT_TRUE(b.keyring.Install(K(2)).ok());
  ASSERT_TRUE(a.keyring.Use(K(2)).ok());
  EXPECT_TRUE(both_ways());  // primaries differ, both keys installed
  ASSERT_TRUE(b.keyring.Use(K(2)).ok());
  ASSERT_TRUE(a.keyring.Remove(K(1)).ok());
  ASSERT_TRUE(b.keyring.Remove(K(1)).ok());
  EXPECT_TRUE(both_ways());
  Peer old(net, "old:1", Ring({K(1)}), "prod");
  EXPECT_FALSE(old.Ask(a, net, "z").at(0).ok());
  EXPECT_EQ(a.sealed->stats().open_failed, 1u);
}

TEST(MeshSealedTransport, TheAdmissionCheckOpensTheHeadAndKeepsNoState) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  Peer stranger(net, "s:1", Ring({K(9)}), "prod");
  ASSERT_EQ(b.inner->head_bytes, kRequestHeadBytes);
  ASSERT_TRUE(b.inner->admit);
  auto admit = [&](const Bytes& frame, size_t len) {
    return b.inner->admit("a:1", std::span<const uint8_t>(frame).first(kRequestHeadBytes), len);
  };
  a.sealed->Exchange("b:1", B("first"), 1'000'000'000, [](Result<Bytes>) {});
  Bytes first = net.wire.back();
  // Stateless: the same head passes as often as asked...
  EXPECT_TRUE(admit(first, first.size()).ok());
  EXPECT_TRUE(admit(first, first.size()).ok());
  // ...until the request has been accepted: a replay of it is refused
  // before its body is read.
  net.Pump();
  ASSERT_EQ(b.requests.size(), 1u);
  EXPECT_THAT(admit(first, first.size()).message(), HasSubstr("replayed"));
  EXPECT_EQ(b.sealed->stats().replayed, 1u);
  // A frame longer (or shorter) than the head says.
  EXPECT_FALSE(admit(first, first.size() + (3 << 20)).ok());
  EXPECT_FALSE(admit(first, first.size() - 1).ok());
  EXPECT_EQ(b.sealed->stats().malformed, 2u);
  // Another key.
  stranger.Ask(b, net, "hi");
  EXPECT_FALSE(admit(net.wire.back(), net.wire.back().size()).ok());
  // A clock outside the window.
  a.clock_ns = b.clock_ns - 31'000'000'000;
  a.sealed->Exchange("b:1", B("late"), 1'000'000'000, [](Result<Bytes>) {});
  Status late = admit(net.wire.back(), net.wire.back().size());
  EXPECT_THAT(late.message(), HasSubstr("check NTP"));
  EXPECT_EQ(b.sealed->stats().too_old, 1u);
  EXPECT_EQ(b.sealed->stats().open_failed, 2u) << "the stranger's request, then its head alone";
  // Without the transport, nothing is admitted.
  Transport::Admission kept = b.inner->admit;
  b.sealed.reset();
  EXPECT_FALSE(b.inner->admit);
  EXPECT_FALSE(
      kept("a:1", std::span<const uint8_t>(first).first(kRequestHeadBytes), first.size()).ok());
}

TEST(MeshSealedTransport, AHeadCannotBeSplicedOntoAnotherBody) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  a.sealed->Exchange("b:1", B("one"), 1'000'000'000, [](Result<Bytes>) {});
  a.sealed->Exchange("b:1", B("two"), 1'000'000'000, [](Result<Bytes>) {});
  Bytes one = net.wire.at(0), two = net.wire.at(1);
  // one's head (which announces three bytes of payload, as two's has) on two's body.
  Bytes spliced(one.begin(), one.begin() + kRequestHeadBytes);
  spliced.insert(spliced.end(), two.begin() + kRequestHeadBytes, two.end());
  Result<Bytes> r = net.CallExchange("a:1", "b:1", spliced);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("different requests"));
  EXPECT_TRUE(b.requests.empty());
  net.Pump();  // the genuine ones still go through
  EXPECT_EQ(b.requests, (std::vector<std::string>{"one", "two"}));
}

TEST(MeshSealedTransport, OverTheSimulatedNetwork) {
  SimNetwork net(7);
  constexpr int64_t kEpoch = 1'700'000'000'000'000'000;
  Keyring ring = Ring({K(1)});
  Keyring wrong = Ring({K(2)});
  SealOptions options;
  options.label = "prod";
  // Virtual time as the wall clock, so the replay window follows the sim.
  options.wall_clock = [&net] { return kEpoch + net.NowNs(); };
  std::vector<std::unique_ptr<SealedTransport>> nodes;
  const Address hosts[] = {"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"};
  for (int i = 0; i < 3; i++) {
    net.AddHost(hosts[i]);
    // The third host has another key.
    nodes.push_back(
        std::make_unique<SealedTransport>(net.transport(hosts[i]), i == 2 ? wrong : ring, options));
  }
  std::vector<std::string> got;
  nodes[1]->SetHandlers(
      [&](const Address&, std::span<const uint8_t> p) { got.push_back(S(p)); },
      AnswerAtOnce([](const Address&, std::span<const uint8_t> r) -> Result<Bytes> {
        return Bytes(r.begin(), r.end());
      }));
  std::vector<Bytes> captured;
  net.SetPacketHook([&](const Address&, const Address&, const Bytes& p) {
    captured.push_back(p);
    return true;
  });
  nodes[0]->SendPacket("10.0.0.2:7946", B("alive"));
  nodes[2]->SendPacket("10.0.0.2:7946", B("forged"));
  std::vector<Result<Bytes>> answers;
  for (int i : {0, 2})
    nodes[i]->Exchange("10.0.0.2:7946", B("sync"), 1'000'000'000,
                       [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  net.RunFor(100'000'000);
  EXPECT_EQ(got, std::vector<std::string>{"alive"});
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].ok() + answers[1].ok(), 1);
  // The stranger's request is refused by the admission check, as over TCP.
  for (auto& r : answers)
    if (!r.ok()) EXPECT_THAT(r.status().message(), HasSubstr("exchange refused"));
  ASSERT_EQ(captured.size(), 2u);
  net.Inject("10.0.0.1:7946", "10.0.0.2:7946", captured[0]);
  net.RunFor(100'000'000);
  EXPECT_EQ(got.size(), 1u);
  EXPECT_EQ(nodes[1]->stats().replayed, 1u);
  EXPECT_EQ(nodes[1]->stats().open_failed, 2u);
  nodes.clear();  // before the network, which owns the inner transports
}

TEST(MeshSealedTransport, InsecureModePassesBytesThrough) {
  MemNet net;
  MemNet::Node* inner_a = net.Add("a:1");
  MemNet::Node* inner_b = net.Add("b:1");
  SealedTransport a(*inner_a);
  SealedTransport b(*inner_b);
  EXPECT_TRUE(a.insecure());
  EXPECT_EQ(a.MaxPacketBytes(), 1400u);
  std::vector<std::string> got;
  b.SetHandlers([&](const Address&, std::span<const uint8_t> p) { got.push_back(S(p)); },
                AnswerAtOnce([](const Address&, std::span<const uint8_t> r) -> Result<Bytes> {
                  return Bytes(r.begin(), r.end());
                }));
  a.SendPacket("b:1", B("plain"));
  net.Pump();
  EXPECT_EQ(got, std::vector<std::string>{"plain"});
  EXPECT_EQ(S(net.wire.at(0)), "plain");
}

TEST(MeshSealedTransport, DestroyedDecoratorDetachesFromTheInnerTransport) {
  MemNet net;
  Peer a(net, "a:1", Ring({K(1)}), "prod");
  Peer b(net, "b:1", Ring({K(1)}), "prod");
  std::vector<Result<Bytes>> answers;
  a.sealed->Exchange("b:1", B("q"), 1'000'000'000,
                     [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  a.sealed->SendPacket("b:1", B("p"));
  b.sealed.reset();
  a.sealed.reset();
  net.Pump();  // b's inner has no handlers; a's done learns it was closed
  EXPECT_EQ(b.inner->on_packet, nullptr);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].ok());
}

}  // namespace
}  // namespace flowmesh::mesh
