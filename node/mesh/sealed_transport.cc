// Sealing, opening and checking around an inner Transport.
#include "node/mesh/sealed_transport.h"

#include <openssl/rand.h>

#include <cstring>
#include <limits>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/mesh/seal.h"

namespace flowmesh::mesh {
namespace {

enum Kind : uint8_t { kPacket = 1, kRequest = 2, kResponse = 3, kRequestHead = 4 };

// Dropped traffic is logged at most this often, with a count: a node with the
// wrong key sends several packets a second and must not flood the log.
constexpr int64_t kDropLogIntervalNs = 10'000'000'000;

void PutLe(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint64_t GetLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

struct Opened {
  Bytes plain;  // header + payload
  uint8_t kind = 0;
  int64_t sent_ns = 0;
  uint64_t id = 0;
  uint32_t seq = 0;
  std::span<const uint8_t> payload() const {
    return std::span<const uint8_t>(plain).subspan(kSealHeaderBytes);
  }
};

}  // namespace

struct SealedTransport::Core {
  Transport* inner = nullptr;
  std::unique_ptr<Sealer> sealer;  // null: insecure
  ReplayGuard replay;
  SealOptions options;
  SealStats stats;
  PacketHandler on_packet;
  ExchangeHandler on_exchange;
  log::RateLimit drop_log{kDropLogIntervalNs};

  int64_t Wall() const { return options.wall_clock ? options.wall_clock() : RealtimeNs(); }

  void LogDrop(const Address& from, const char* what, const std::string& why) {
    uint64_t held = 0;
    if (!drop_log.Allow(Wall(), &held)) return;
    FM_LOG(Warn, "mesh") << "dropped " << what << " from " << from << ": " << why
                         << (held ? " (and " + std::to_string(held) +
                                        " more dropped since the last report)"
                                  : std::string());
  }

  // `count`: a request's head is part of the request, not a message of its own.
  Result<Bytes> Wrap(uint8_t kind, uint64_t id, uint32_t seq, std::span<const uint8_t> payload,
                     bool count = true) {
    Bytes plain(kSealHeaderBytes + payload.size());
    plain[0] = kind;
    PutLe(&plain[1], static_cast<uint64_t>(Wall()), 8);
    PutLe(&plain[9], id, 8);
    PutLe(&plain[17], seq, 4);
    if (!payload.empty())
      std::memcpy(plain.data() + kSealHeaderBytes, payload.data(), payload.size());
    Result<Bytes> sealed = sealer->Seal(plain);
    if (sealed.ok()) {
      stats.sealed += count;
    } else {
      stats.seal_failed++;
      FM_LOG(Error, "mesh") << sealed.status().message();
    }
    return sealed;
  }

  // Opens one message of `kind`. Counts every refusal; the caller logs it.
  Result<Opened> Open(std::span<const uint8_t> sealed, uint8_t kind) {
    Result<Bytes> plain = sealer->Open(sealed);
    if (!plain.ok()) {
      stats.open_failed++;
      return plain.status();
    }
    Opened m;
    m.plain = std::move(*plain);
    if (m.plain.size() < kSealHeaderBytes || m.plain[0] != kind) {
      stats.malformed++;
      return InvalidArgument(m.plain.size() < kSealHeaderBytes
                                 ? "sealed header is truncated"
                                 : "kind " + std::to_string(m.plain[0]) + " where " +
                                       std::to_string(kind) + " was expected");
    }
    m.kind = m.plain[0];
    m.sent_ns = static_cast<int64_t>(GetLe(&m.plain[1], 8));
    m.id = GetLe(&m.plain[9], 8);
    m.seq = static_cast<uint32_t>(GetLe(&m.plain[17], 4));
    return m;
  }

  // Counts a refusal by freshness and says why; NTP is named only where the
  // clocks are what differ.
  Status Stale(Freshness f, int64_t sent_ns) {
    uint64_t& counter = f == Freshness::kReplayed      ? stats.replayed
                        : f == Freshness::kBeforeFloor ? stats.before_floor
                        : f == Freshness::kTooOld      ? stats.too_old
                                                       : stats.too_new;
    counter++;
    std::string why = FreshnessName(f);
    if (f == Freshness::kTooOld || f == Freshness::kTooNew)
      // In ms before subtracting: sent_ns is the sender's to choose, and
      // INT64_MIN minus our clock overflows.
      why += ": sender clock is " + std::to_string(sent_ns / 1'000'000 - Wall() / 1'000'000) +
             " ms from ours (window ±" + std::to_string(replay.options().window_ns / 1'000'000) +
             " ms); check NTP on both nodes";
    return Unavailable(why);
  }

  // Checks an opened message that starts a stream against the replay guard.
  Status CheckFresh(const Opened& m) {
    Freshness f = m.seq != 0 ? Freshness::kReplayed : replay.Check(m.sent_ns, m.id, Wall());
    return f == Freshness::kFresh ? Status::Ok() : Stale(f, m.sent_ns);
  }

  // A request's head, as Admit and OnExchange both check it: it opens, has
  // the right shape, and announces the body this frame of `frame_len` has.
  Result<Opened> OpenHead(std::span<const uint8_t> frame, size_t frame_len) {
    if (frame.size() < kRequestHeadBytes || frame_len < kRequestHeadBytes) {
      stats.malformed++;
      return InvalidArgument("request of " + std::to_string(frame_len) +
                             " bytes is shorter than its sealed head");
    }
    FM_ASSIGN_OR_RETURN(Opened head, Open(frame.first(kRequestHeadBytes), kRequestHead));
    if (head.plain.size() != kSealHeaderBytes + 4 || head.seq != 0) {
      stats.malformed++;
      return InvalidArgument("request head of the wrong shape");
    }
    uint64_t body_len = GetLe(&head.plain[kSealHeaderBytes], 4);
    if (body_len != frame_len - kRequestHeadBytes) {
      stats.malformed++;
      return InvalidArgument("request head announces " + std::to_string(body_len) +
                             " bytes of body where the frame has " +
                             std::to_string(frame_len - kRequestHeadBytes));
    }
    return head;
  }

  // The inner transport's admission check, before the body is read: the
  // head opens (key, label), announces this frame's length, its clock is in
  // the window and above the floor, and its id was not accepted already (a
  // recorded request replayed later is refused before its body is read). It
  // changes no state, so a stranger's heads cost nothing but the AES; the
  // body, and the id against the guard for good, are checked in OnExchange.
  Status Admit(std::span<const uint8_t> head_bytes, size_t frame_len) {
    FM_ASSIGN_OR_RETURN(Opened head, OpenHead(head_bytes, frame_len));
    Freshness f = replay.Peek(head.sent_ns, Wall());
    if (f == Freshness::kFresh && replay.Seen(head.id)) f = Freshness::kReplayed;
    return f == Freshness::kFresh ? Status::Ok() : Stale(f, head.sent_ns);
  }

  void OnPacket(const Address& from, std::span<const uint8_t> sealed) {
    Result<Opened> m = Open(sealed, kPacket);
    Status fresh = m.ok() ? CheckFresh(*m) : m.status();
    if (!fresh.ok()) return LogDrop(from, "packet", fresh.message());
    stats.opened++;
    if (on_packet) on_packet(from, m->payload());
  }

  // The full check of a request, [sealed head][sealed body]: both open, the
  // head announces the body's length and names the body's id, and that id
  // is fresh. `self` is this Core: a late answer seals with the keyring of
  // that moment and is dropped if the transport is gone.
  void OnExchange(const std::shared_ptr<Core>& self, const Address& from,
                  std::span<const uint8_t> frame, ExchangeReply reply) {
    Result<Opened> head = OpenHead(frame, frame.size());
    Result<Opened> m = head.ok() ? Open(frame.subspan(kRequestHeadBytes), kRequest) : head.status();
    Status ok = m.ok() ? Status::Ok() : m.status();
    if (ok.ok() && (m->id != head->id || m->seq != 0)) {
      stats.replayed++;
      ok = Unavailable("the request's head and body belong to different requests (spliced)");
    }
    if (ok.ok()) ok = CheckFresh(*m);
    if (!ok.ok()) {
      LogDrop(from, "exchange request", ok.message());
      return reply(ok);
    }
    stats.opened++;
    if (!on_exchange) return reply(Unavailable("no exchange handler"));
    std::weak_ptr<Core> weak = self;
    on_exchange(from, m->payload(),
                [weak, id = m->id, reply = std::move(reply)](Result<Bytes> response) {
                  auto core = weak.lock();
                  if (!core) return reply(Unavailable("mesh transport closed"));
                  if (!response.ok()) return reply(response.status());
                  reply(core->Wrap(kResponse, id, 1, *response));
                });
  }

  Result<Bytes> OnResponse(const Address& from, uint64_t id, std::span<const uint8_t> sealed) {
    Result<Opened> opened = Open(sealed, kResponse);
    if (!opened.ok()) {
      LogDrop(from, "exchange response", opened.status().message());
      return opened.status().WithContext("exchange with " + from + ": response");
    }
    Opened& m = *opened;
    if (m.id != id || m.seq != 1) {
      stats.replayed++;
      LogDrop(from, "exchange response", "it answers another request (replayed or misrouted)");
      return Unavailable("exchange with " + from + ": response belongs to another request");
    }
    stats.opened++;
    return Bytes(m.payload().begin(), m.payload().end());
  }
};

SealedTransport::SealedTransport(Transport& inner) : core_(std::make_shared<Core>()) {
  core_->inner = &inner;
  FM_LOG(Warn, "mesh") << "mesh traffic is NOT encrypted or authenticated (no cluster key); "
                          "anyone who can reach "
                       << inner.LocalAddress() << " can read and change the mesh";
}

SealedTransport::SealedTransport(Transport& inner, const Keyring& keyring, SealOptions options)
    : core_(std::make_shared<Core>()) {
  core_->inner = &inner;
  core_->sealer = std::make_unique<Sealer>(keyring, options.label);
  core_->replay = ReplayGuard(options.replay);
  core_->options = std::move(options);
  // The cost: a peer whose clock is behind ours by d is not heard for the
  // first d after start; with NTP that is milliseconds.
  core_->replay.RaiseFloor(core_->Wall() - 1);
}

SealedTransport::~SealedTransport() {
  core_->inner->SetHandlers(nullptr, nullptr);
  core_->inner->SetAdmission(0, nullptr);
}

bool SealedTransport::insecure() const { return core_->sealer == nullptr; }
const SealStats& SealedTransport::stats() const { return core_->stats; }
const Address& SealedTransport::LocalAddress() const { return core_->inner->LocalAddress(); }

size_t SealedTransport::MaxPacketBytes() const {
  size_t inner = core_->inner->MaxPacketBytes();
  if (insecure()) return inner;
  size_t overhead = kSealOverhead + kSealHeaderBytes;
  return inner > overhead ? inner - overhead : 0;
}

void SealedTransport::SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) {
  if (insecure()) {
    core_->inner->SetHandlers(std::move(on_packet), std::move(on_exchange));
    return;
  }
  core_->on_packet = std::move(on_packet);
  core_->on_exchange = std::move(on_exchange);
  std::weak_ptr<Core> weak = core_;
  core_->inner->SetAdmission(
      kRequestHeadBytes,
      [weak](const Address&, std::span<const uint8_t> head, size_t frame_len) -> Status {
        auto core = weak.lock();
        if (!core) return Unavailable("mesh transport closed");
        return core->Admit(head, frame_len);
      });
  core_->inner->SetHandlers(
      [weak](const Address& from, std::span<const uint8_t> packet) {
        if (auto core = weak.lock()) core->OnPacket(from, packet);
      },
      [weak](const Address& from, std::span<const uint8_t> request, ExchangeReply reply) {
        auto core = weak.lock();
        if (!core) return reply(Unavailable("mesh transport closed"));
        core->OnExchange(core, from, request, std::move(reply));
      });
}

void SealedTransport::SendPacket(const Address& to, Bytes packet) {
  if (insecure()) return core_->inner->SendPacket(to, std::move(packet));
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<uint8_t*>(&id), sizeof id) != 1) {
    core_->stats.seal_failed++;
    return;
  }
  Result<Bytes> sealed = core_->Wrap(kPacket, id, 0, packet);
  if (sealed.ok()) core_->inner->SendPacket(to, std::move(*sealed));
}

void SealedTransport::Exchange(const Address& to, Bytes request, int64_t timeout_ns,
                               ExchangeDone done) {
  if (insecure())
    return core_->inner->Exchange(to, std::move(request), timeout_ns, std::move(done));
  uint64_t id = 0;
  if (RAND_bytes(reinterpret_cast<uint8_t*>(&id), sizeof id) != 1) {
    core_->stats.seal_failed++;
    return done(Internal("cannot seal an exchange request: RAND_bytes failed"));
  }
  Result<Bytes> body = core_->Wrap(kRequest, id, 0, request);
  if (!body.ok()) return done(body.status());
  uint8_t body_len[4];
  PutLe(body_len, body->size(), 4);
  Result<Bytes> sealed = core_->Wrap(kRequestHead, id, 0, body_len, /*count=*/false);
  if (!sealed.ok()) return done(sealed.status());
  sealed->insert(sealed->end(), body->begin(), body->end());
  std::weak_ptr<Core> weak = core_;
  core_->inner->Exchange(
      to, std::move(*sealed), timeout_ns,
      [weak, id, to, done = std::move(done)](Result<Bytes> response) {
        auto core = weak.lock();
        if (!core) return done(Unavailable("exchange with " + to + ": mesh transport closed"));
        if (!response.ok()) return done(response.status());
        done(core->OnResponse(to, id, *response));
      });
}

}  // namespace flowmesh::mesh
