// What the mesh harnesses run a node on: a virtual clock and a transport that
// hands the harness every handler and every outgoing exchange, so fuzz bytes
// can arrive as packets, as requests (server side) and as responses (client
// side) without sockets or threads.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <span>
#include <utility>

#include "node/mesh/keyring.h"
#include "node/mesh/transport.h"

namespace flowmesh::fuzz {

// The seal harness's fixed cluster key, label and "now", which make_seeds.cc
// seals its seeds with.
inline mesh::Keyring TestKeyring() {
  mesh::Key key;
  for (size_t i = 0; i < key.size(); i++) key[i] = static_cast<uint8_t>(i * 7 + 1);
  return *mesh::Keyring::FromKeys({key});
}
constexpr const char* kTestLabel = "fuzz";
constexpr int64_t kTestWallNs = 1'780'000'000'000'000'000;  // 2026

// Timers in a map on a virtual clock; Random is a fixed sequence so a crash
// replays from its input alone.
class FakeRuntime : public mesh::Runtime {
 public:
  int64_t NowNs() const override { return now_ns_; }
  TimerId After(int64_t delay_ns, std::function<void()> fn) override {
    TimerId id = next_id_++;
    timers_.emplace(std::make_pair(now_ns_ + (delay_ns > 0 ? delay_ns : 0), id), std::move(fn));
    return id;
  }
  void Cancel(TimerId id) override {
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
      if (it->first.second == id) {
        timers_.erase(it);
        return;
      }
  }
  uint64_t Random() override {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }
  // Runs the timers due up to now + duration, at most `max_timers` of them
  // (a protocol that re-arms a zero-delay timer must not hang the fuzzer).
  void RunFor(int64_t duration_ns, int max_timers = 256) {
    int64_t until = now_ns_ + duration_ns;
    while (max_timers-- > 0 && !timers_.empty() && timers_.begin()->first.first <= until) {
      auto node = timers_.extract(timers_.begin());
      now_ns_ = node.key().first;
      node.mapped()();
    }
    if (now_ns_ < until) now_ns_ = until;
  }

 private:
  int64_t now_ns_ = 1'000'000'000;
  TimerId next_id_ = 1;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
  std::map<std::pair<int64_t, TimerId>, std::function<void()>> timers_;
};

class FakeTransport : public mesh::Transport {
 public:
  struct Outgoing {
    mesh::Address to;
    mesh::Bytes request;
    ExchangeDone done;
  };

  explicit FakeTransport(mesh::Address local) : local_(std::move(local)) {}

  const mesh::Address& LocalAddress() const override { return local_; }
  void SetHandlers(PacketHandler on_packet, ExchangeHandler on_exchange) override {
    on_packet_ = std::move(on_packet);
    on_exchange_ = std::move(on_exchange);
  }
  void SendPacket(const mesh::Address& to, mesh::Bytes packet) override { packets_sent_++; }
  // As the Asio transport does: the head is checked before the rest is read.
  void SetAdmission(size_t head_bytes, Admission admit) override {
    head_bytes_ = head_bytes;
    admit_ = std::move(admit);
  }
  void Exchange(const mesh::Address& to, mesh::Bytes request, int64_t timeout_ns,
                ExchangeDone done) override {
    // A node that keeps asking must not grow this without bound.
    if (outgoing_.size() >= 64) return done(Unavailable("fuzz: too many exchanges"));
    outgoing_.push_back({to, std::move(request), std::move(done)});
  }

  // Bytes from `from`, as the socket layer would deliver them.
  void DeliverPacket(const mesh::Address& from, std::span<const uint8_t> bytes) {
    if (on_packet_) on_packet_(from, bytes);
  }
  void DeliverRequest(const mesh::Address& from, std::span<const uint8_t> bytes,
                      ExchangeReply reply) {
    if (admit_) {
      if (bytes.size() < head_bytes_) return reply(Unavailable("fuzz: shorter than a head"));
      Status admitted = admit_(from, bytes.first(head_bytes_), bytes.size());
      if (!admitted.ok()) return reply(admitted);
    }
    if (on_exchange_) return on_exchange_(from, bytes, std::move(reply));
    reply(Unavailable("fuzz: no handler"));
  }
  // The oldest exchange this side started, answered with `response`.
  bool AnswerOldest(Result<mesh::Bytes> response) {
    if (outgoing_.empty()) return false;
    Outgoing o = std::move(outgoing_.front());
    outgoing_.pop_front();
    o.done(std::move(response));
    return true;
  }
  std::deque<Outgoing>& outgoing() { return outgoing_; }
  // Fails what is still pending, as a closing transport would.
  void FailAll() {
    while (AnswerOldest(Unavailable("fuzz: closed"))) {
    }
  }

 private:
  mesh::Address local_;
  PacketHandler on_packet_;
  ExchangeHandler on_exchange_;
  size_t head_bytes_ = 0;
  Admission admit_;
  std::deque<Outgoing> outgoing_;
  uint64_t packets_sent_ = 0;
};

}  // namespace flowmesh::fuzz
