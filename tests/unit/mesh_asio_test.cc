// The real mesh transport on loopback: packets both ways, exchanges, every
// timeout, hostile frames and datagrams from raw sockets, connection limits,
// bind errors, sealing end to end, and the Asio runtime's timers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <malloc.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/udp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "node/mesh/asio_runtime.h"
#include "node/mesh/asio_transport.h"
#include "node/mesh/frame.h"
#include "node/mesh/refusals.h"
#include "node/mesh/sealed_transport.h"

namespace flowmesh::mesh {
namespace {

using asio::ip::tcp;
using asio::ip::udp;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

constexpr int64_t kSecond = 1'000'000'000;

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(std::span<const uint8_t> b) { return std::string(b.begin(), b.end()); }

// Runs `io` until `done()` or two seconds, whichever is first.
bool RunUntil(asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds limit = 2000ms) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    if (io.stopped()) io.restart();
    io.run_one_for(10ms);
  }
  return done();
}

std::unique_ptr<AsioTransport> Loopback(asio::io_context& io, AsioTransportOptions options = {}) {
  Result<std::unique_ptr<AsioTransport>> t =
      AsioTransport::Bind(io, Endpoint{IpAddr::V4(127, 0, 0, 1), 0}, options);
  EXPECT_TRUE(t.ok()) << t.status().message();
  return t.ok() ? std::move(*t) : nullptr;
}

uint16_t PortOf(const Transport& t) { return Endpoint::Parse(t.LocalAddress())->port; }

// Echoes requests with a prefix and records packets.
struct Recorder {
  void Attach(Transport& t) {
    t.SetHandlers(
        [this](const Address& from, std::span<const uint8_t> p) {
          packets.push_back(S(p));
          froms.push_back(from);
        },
        AnswerAtOnce([this](const Address&, std::span<const uint8_t> r) -> Result<Bytes> {
          requests++;
          return B("re: " + S(r));
        }));
  }
  std::vector<std::string> packets;
  std::vector<Address> froms;
  int requests = 0;
};

TEST(MeshFrame, LengthIsLittleEndianAndCappedBeforeAnyAllocation) {
  Result<FrameHeader> h = EncodeFrameHeader(0x030201);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (FrameHeader{1, 2, 3, 0}));
  EXPECT_EQ(*DecodeFrameHeader(*h), 0x030201u);
  EXPECT_EQ(*DecodeFrameHeader(*EncodeFrameHeader(kMaxStreamFrameBytes)), kMaxStreamFrameBytes);
  EXPECT_EQ(*DecodeFrameHeader(FrameHeader{0, 0, 0, 0}), 0u);
  EXPECT_FALSE(EncodeFrameHeader(kMaxStreamFrameBytes + 1).ok());
  Result<size_t> huge = DecodeFrameHeader(FrameHeader{0xff, 0xff, 0xff, 0xff});
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), Status::Code::kResourceExhausted);
  EXPECT_FALSE(DecodeFrameHeader(FrameHeader{1, 0, 0, 0}, 0).ok());
}

TEST(MeshAsio, PacketsBothWaysAndAnExchange) {
  asio::io_context io;
  auto a = Loopback(io);
  auto b = Loopback(io);
  ASSERT_TRUE(a && b);
  EXPECT_THAT(a->LocalAddress(), HasSubstr("127.0.0.1:"));
  EXPECT_NE(PortOf(*a), 0);
  Recorder ra, rb;
  ra.Attach(*a);
  rb.Attach(*b);
  a->SendPacket(b->LocalAddress(), B("ping"));
  b->SendPacket(a->LocalAddress(), B("pong"));
  ASSERT_TRUE(RunUntil(io, [&] { return ra.packets.size() == 1 && rb.packets.size() == 1; }));
  EXPECT_EQ(rb.packets[0], "ping");
  EXPECT_EQ(rb.froms[0], a->LocalAddress());
  EXPECT_EQ(ra.packets[0], "pong");

  std::vector<Result<Bytes>> answers;
  a->Exchange(b->LocalAddress(), B("sync"), kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  EXPECT_TRUE(answers.empty()) << "done never runs inside Exchange()";
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  ASSERT_TRUE(answers[0].ok()) << answers[0].status().message();
  EXPECT_EQ(S(*answers[0]), "re: sync");
  EXPECT_EQ(a->stats().packets_out, 1u);
  EXPECT_EQ(a->stats().bytes_out, 4u);
  EXPECT_EQ(b->stats().packets_in, 1u);
  EXPECT_EQ(a->stats().exchanges_out, 1u);
  ASSERT_TRUE(RunUntil(io, [&] { return b->stats().exchanges_in == 1; }));
  EXPECT_EQ(b->inbound_connections(), 0u);
  EXPECT_EQ(a->outbound_exchanges(), 0u);
}

TEST(MeshAsio, ExchangeWithNobodyListeningFailsFast) {
  asio::io_context io;
  auto a = Loopback(io);
  uint16_t dead_port;
  {
    auto gone = Loopback(io);
    dead_port = PortOf(*gone);
  }
  std::vector<Result<Bytes>> answers;
  a->Exchange("127.0.0.1:" + std::to_string(dead_port), B("x"), 5 * kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  a->Exchange("not an address", B("x"), kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntil(io, [&] { return answers.size() == 2; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  std::string messages;
  for (auto& r : answers) {
    EXPECT_FALSE(r.ok());
    messages += r.status().message() + "\n";
  }
  EXPECT_THAT(messages, HasSubstr("exchange with 127.0.0.1:" + std::to_string(dead_port) +
                                  ": cannot connect: Connection refused"));
  EXPECT_THAT(messages, HasSubstr("'not an address'"));
  EXPECT_EQ(a->stats().exchange_errors, 2u);
}

TEST(MeshAsio, ExchangeTimesOutWhenTheServerNeverAnswers) {
  asio::io_context io;
  auto a = Loopback(io);
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket held(io);
  silent.async_accept(held, [](const asio::error_code&) {});  // accepts, never reads
  std::vector<Result<Bytes>> answers;
  auto start = std::chrono::steady_clock::now();
  a->Exchange("127.0.0.1:" + std::to_string(silent.local_endpoint().port()), B("x"), 200'000'000,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1000ms);
  ASSERT_FALSE(answers[0].ok());
  EXPECT_THAT(answers[0].status().message(), HasSubstr("timed out after 200 ms"));
  EXPECT_EQ(a->stats().exchange_timeouts, 1u);
  EXPECT_EQ(a->outbound_exchanges(), 0u);
}

TEST(MeshAsio, OversizedFrameHeaderIsDroppedWithoutAllocating) {
  asio::io_context io;
  AsioTransportOptions options;
  auto b = Loopback(io, options);
  Recorder rb;
  rb.Attach(*b);
  size_t mapped_before = mallinfo2().hblkhd;
  // A raw client on its own io_context: blocking calls, no interplay.
  asio::io_context raw_io;
  tcp::socket raw(raw_io);
  raw.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), PortOf(*b)));
  const uint8_t header[4] = {0xff, 0xff, 0xff, 0xff};
  asio::write(raw, asio::buffer(header));
  ASSERT_TRUE(RunUntil(io, [&] { return b->stats().frames_oversized == 1; }));
  EXPECT_LT(mallinfo2().hblkhd, mapped_before + (64u << 20)) << "no 4 GiB buffer";
  EXPECT_EQ(b->stats().inbound_errors, 0u) << "a refusal, counted as frame_oversized only";
  EXPECT_EQ(b->inbound_connections(), 0u);
  EXPECT_EQ(rb.requests, 0);
  // The server closed the connection.
  uint8_t byte;
  asio::error_code ec;
  raw.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();

  // The server still serves.
  std::vector<Result<Bytes>> answers;
  auto a = Loopback(io);
  a->Exchange(b->LocalAddress(), B("ok?"), kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  EXPECT_TRUE(answers[0].ok());
}

TEST(MeshAsio, OversizedResponseIsRefusedByTheAsker) {
  asio::io_context io;
  auto a = Loopback(io);
  tcp::acceptor evil(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket conn(io);
  uint8_t request_header[4];
  const uint8_t huge[4] = {0x01, 0x00, 0x00, 0x10};  // 256 MiB + 1
  evil.async_accept(conn, [&](const asio::error_code& ec) {
    if (ec) return;
    asio::async_read(conn, asio::buffer(request_header), [&](const asio::error_code&, size_t) {
      asio::async_write(conn, asio::buffer(huge), [](const asio::error_code&, size_t) {});
    });
  });
  std::vector<Result<Bytes>> answers;
  a->Exchange("127.0.0.1:" + std::to_string(evil.local_endpoint().port()), B("x"), kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  ASSERT_FALSE(answers[0].ok());
  EXPECT_THAT(answers[0].status().message(), HasSubstr("exceeds the limit of 4194304 bytes"));
  EXPECT_EQ(a->stats().frames_oversized, 1u);
}

TEST(MeshAsio, BadDatagramsAreCountedAndDropped) {
  asio::io_context io;
  auto b = Loopback(io);
  Recorder rb;
  rb.Attach(*b);
  udp::socket raw(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  udp::endpoint to(asio::ip::make_address("127.0.0.1"), PortOf(*b));
  raw.send_to(asio::buffer(std::string(1401, 'x')), to);
  raw.send_to(asio::buffer(std::string(65507, 'y')), to);
  raw.send_to(asio::buffer(std::string()), to);
  raw.send_to(asio::buffer(std::string(1400, 'z')), to);
  ASSERT_TRUE(RunUntil(io, [&] { return rb.packets.size() == 1; }));
  EXPECT_EQ(rb.packets[0].size(), 1400u);
  EXPECT_EQ(b->stats().packets_oversized, 2u);
  EXPECT_EQ(b->stats().packets_malformed, 1u);
  EXPECT_EQ(b->stats().packets_in, 1u);

  // Nor do we send what a receiver would drop.
  b->SendPacket(raw.local_endpoint().address().to_string() + ":" +
                    std::to_string(raw.local_endpoint().port()),
                Bytes(1401));
  b->SendPacket("nowhere", B("x"));
  EXPECT_EQ(b->stats().packets_oversized, 3u);
  EXPECT_EQ(b->stats().packet_errors, 1u);
  EXPECT_EQ(b->stats().packets_out, 0u);
}

TEST(MeshAsio, ConnectionLimitAndSlowlorisTimeout) {
  asio::io_context io;
  AsioTransportOptions options;
  options.max_inbound_connections = 2;
  options.preauth_timeout_ns = 300'000'000;
  options.request_timeout_ns = 300'000'000;
  auto b = Loopback(io, options);
  Recorder rb;
  rb.Attach(*b);
  asio::io_context raw_io;
  std::vector<std::unique_ptr<tcp::socket>> raws;
  tcp::endpoint to(asio::ip::make_address("127.0.0.1"), PortOf(*b));
  for (int i = 0; i < 3; i++) {
    raws.push_back(std::make_unique<tcp::socket>(raw_io));
    raws.back()->connect(to);
  }
  ASSERT_TRUE(RunUntil(io, [&] { return b->stats().connections_rejected == 1; }));
  EXPECT_EQ(b->inbound_connections(), 2u);

  // One of the two trickles a valid header a byte at a time: the silent one
  // is cut off by the pre-authentication deadline, the trickler by the
  // request deadline that starts once its header is in.
  const uint8_t header[4] = {3, 0, 0, 0};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; i++) {
    asio::write(*raws[0], asio::buffer(&header[i], 1));
    RunUntil(
        io, [] { return false; }, 50ms);
  }
  ASSERT_TRUE(RunUntil(
      io, [&] { return b->stats().preauth_timeouts == 1 && b->stats().inbound_timeouts == 1; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  EXPECT_EQ(b->inbound_connections(), 0u);
  EXPECT_EQ(rb.requests, 0);
}

TEST(MeshAsio, BindErrorsSayWhatFailedAndWhatToDo) {
  asio::io_context io;
  auto a = Loopback(io);
  Result<std::unique_ptr<AsioTransport>> again =
      AsioTransport::Bind(io, *Endpoint::Parse(a->LocalAddress()));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), "cannot bind UDP " + a->LocalAddress() +
                                          ": Address already in use; another meshd? choose --bind");
  Result<std::unique_ptr<AsioTransport>> foreign =
      AsioTransport::Bind(io, *Endpoint::Parse("192.0.2.1:7946"));
  ASSERT_FALSE(foreign.ok());
  EXPECT_THAT(foreign.status().message(), HasSubstr("is 192.0.2.1 an address of this host?"));
}

TEST(MeshAsio, Ipv6Loopback) {
  asio::io_context io;
  // Port 0 (any) has no "ip:port" spelling, so the endpoint is built.
  Endpoint any_v6 = *Endpoint::Parse("[::1]:1");
  any_v6.port = 0;
  Result<std::unique_ptr<AsioTransport>> a = AsioTransport::Bind(io, any_v6);
  if (!a.ok()) GTEST_SKIP() << "no IPv6 loopback: " << a.status().message();
  auto b = AsioTransport::Bind(io, any_v6);
  ASSERT_TRUE(b.ok());
  EXPECT_THAT((*a)->LocalAddress(), HasSubstr("[::1]:"));
  Recorder rb;
  rb.Attach(**b);
  (*a)->SendPacket((*b)->LocalAddress(), B("v6"));
  std::vector<Result<Bytes>> answers;
  (*a)->Exchange((*b)->LocalAddress(), B("q"), kSecond,
                 [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return rb.packets.size() == 1 && answers.size() == 1; }));
  EXPECT_EQ(rb.froms[0], (*a)->LocalAddress());
  EXPECT_TRUE(answers[0].ok());
}

TEST(MeshAsio, SealedEndToEndAndGarbageCounted) {
  asio::io_context io;
  auto ia = Loopback(io);
  auto ib = Loopback(io);
  auto istranger = Loopback(io);
  Keyring ring = *Keyring::FromKeys({*GenerateKey()});
  Keyring wrong = *Keyring::FromKeys({*GenerateKey()});
  SealOptions options;
  options.label = "prod";
  SealedTransport a(*ia, ring, options), b(*ib, ring, options),
      stranger(*istranger, wrong, options);
  Recorder rb;
  rb.Attach(b);
  a.SendPacket(ib->LocalAddress(), B("hello"));
  stranger.SendPacket(ib->LocalAddress(), B("let me in"));
  udp::socket raw(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  raw.send_to(asio::buffer(std::string("garbage")),
              udp::endpoint(asio::ip::make_address("127.0.0.1"), PortOf(*ib)));
  std::vector<Result<Bytes>> answers;
  a.Exchange(ib->LocalAddress(), B("sync"), kSecond,
             [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  stranger.Exchange(ib->LocalAddress(), B("tables?"), kSecond,
                    [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] {
    return answers.size() == 2 && b.stats().open_failed == 3 && rb.packets.size() == 1;
  }));
  EXPECT_EQ(rb.packets, std::vector<std::string>{"hello"});
  EXPECT_EQ(rb.requests, 1);
  int ok = 0;
  for (auto& r : answers) ok += r.ok() && S(*r) == "re: sync";
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(ib->stats().packets_in, 3u);
}

TEST(MeshAsio, DestroyingTheTransportDropsPendingCallbacks) {
  asio::io_context io;
  auto a = Loopback(io);
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  int called = 0;
  a->Exchange("127.0.0.1:" + std::to_string(silent.local_endpoint().port()), B("x"), kSecond,
              [&](Result<Bytes>) { called++; });
  a->Exchange("bad", B("x"), kSecond, [&](Result<Bytes>) { called++; });
  RunUntil(
      io, [] { return false; }, 50ms);
  a.reset();
  RunUntil(
      io, [] { return false; }, 100ms);
  EXPECT_EQ(called, 1) << "only the error that was already delivered";
}

// A raw client connection from `source` (any 127/8 address is this host's).
std::unique_ptr<tcp::socket> RawConnect(asio::io_context& raw_io, uint16_t port,
                                        const char* source = "127.0.0.1") {
  auto raw = std::make_unique<tcp::socket>(raw_io);
  raw->open(tcp::v4());
  raw->bind(tcp::endpoint(asio::ip::make_address(source), 0));
  raw->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  return raw;
}

// True once the server has closed `raw` (EOF or reset), within a second.
bool ClosedByPeer(tcp::socket& raw) {
  raw.non_blocking(false);
  timeval tv{1, 0};
  setsockopt(raw.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  uint8_t byte;
  asio::error_code ec;
  raw.read_some(asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

Bytes Header(uint32_t len) {
  FrameHeader h = *EncodeFrameHeader(len, UINT32_MAX);
  return Bytes(h.begin(), h.end());
}

// Heap and mappings the allocator holds now.
size_t AllocatedBytes() {
  struct mallinfo2 mi = mallinfo2();
  return mi.hblkhd + mi.uordblks;
}

// A Transport that only records the requests it is asked to send, to get
// real sealed frames for raw sockets.
struct Capture : Transport {
  const Address& LocalAddress() const override { return address; }
  void SetHandlers(PacketHandler, ExchangeHandler) override {}
  void SendPacket(const Address&, Bytes) override {}
  void Exchange(const Address&, Bytes request, int64_t, ExchangeDone) override {
    requests.push_back(std::move(request));
  }
  Address address = "127.0.0.9:1";
  std::vector<Bytes> requests;
};

TEST(MeshAsio, StrangersAnnouncingLargeFramesCommitOnlyWhatTheySend) {
  // The attack of issue 11: connections that announce 4 MiB and send almost
  // nothing. Insecure (no admission check), so only the per-address limit
  // and the budget stand in the way.
  asio::io_context io;
  auto b = Loopback(io);
  Recorder rb;
  rb.Attach(*b);
  size_t before = AllocatedBytes();
  asio::io_context raw_io;
  std::vector<std::unique_ptr<tcp::socket>> raws;
  Bytes some = Header(4 << 20);
  some.resize(some.size() + 1000, 'x');
  for (int i = 0; i < 32; i++) {
    raws.push_back(RawConnect(raw_io, PortOf(*b)));
    asio::write(*raws.back(), asio::buffer(some));
  }
  ASSERT_TRUE(RunUntil(
      io, [&] { return b->stats().preauth_per_source == 24 && b->inbound_connections() == 8; }));
  RunUntil(
      io, [] { return false; }, 50ms);  // the 1000 bytes of each are read
  const AsioTransportStats& st = b->stats();
  // Each held frame has 1000 bytes in and room for the next read.
  const uint64_t per_frame = 2 * AsioTransportOptions{}.read_chunk_bytes;
  EXPECT_LE(st.inbound_buffered_peak, 8 * per_frame)
      << "buffers grow with what arrives, not with what is announced";
  EXPECT_LE(st.inbound_reserved_bytes, 8 * per_frame)
      << "an unproven sender holds budget only for what it sent";
  EXPECT_EQ(st.budget_refused, 0u);
  EXPECT_LT(AllocatedBytes(), before + (8u << 20)) << "not 32 x 4 MiB";
  raws.clear();
  ASSERT_TRUE(RunUntil(io, [&] { return b->inbound_connections() == 0; }));
  EXPECT_EQ(st.inbound_reserved_bytes, 0u);
  EXPECT_EQ(st.inbound_buffered_bytes, 0u);
  EXPECT_EQ(rb.requests, 0);
  std::map<std::string, uint64_t> refused;
  for (const Refusal& r : Refusals(st, SealStats{})) refused[r.reason] = r.count;
  EXPECT_EQ(refused["preauth_per_source"], 24u);
}

TEST(MeshAsio, TheBudgetRefusesAFrameThatWouldExceedIt) {
  asio::io_context io;
  AsioTransportOptions options;
  options.inbound_budget_bytes = 1 << 20;
  auto b = Loopback(io, options);
  Recorder rb;
  rb.Attach(*b);
  // Unproven: refused once what it sent outgrows the budget.
  asio::io_context raw_io;
  auto raw = RawConnect(raw_io, PortOf(*b));
  Bytes frame = Header(3 << 20);
  frame.resize(frame.size() + (3 << 20), 'x');
  std::thread writer([&] {
    asio::error_code ignored;
    asio::write(*raw, asio::buffer(frame), ignored);  // cut off midway
  });
  ASSERT_TRUE(RunUntil(io, [&] { return b->stats().budget_refused == 1; }));
  writer.join();
  EXPECT_LE(b->stats().inbound_buffered_peak, 1u << 20);
  EXPECT_EQ(rb.requests, 0);
  ASSERT_TRUE(RunUntil(io, [&] { return b->inbound_connections() == 0; }));
  EXPECT_EQ(b->stats().inbound_reserved_bytes, 0u);
  // What fits still goes through.
  std::vector<Result<Bytes>> answers;
  auto a = Loopback(io);
  a->Exchange(b->LocalAddress(), Bytes(512 << 10, 'y'), kSecond,
              [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  EXPECT_TRUE(answers[0].ok()) << answers[0].status().message();
}

TEST(MeshRefusals, EveryReasonOnceWithHelpAndItsOwnCounter) {
  AsioTransportStats t;
  SealStats s;
  // Distinct values, so each reason shows which counter it reads.
  uint64_t v = 100;
  for (uint64_t* f : {&t.packets_oversized,
                      &t.packets_malformed,
                      &t.packet_errors,
                      &t.frames_oversized,
                      &t.budget_refused,
                      &t.connections_rejected,
                      &t.preauth_per_source,
                      &t.preauth_full,
                      &t.preauth_evicted,
                      &t.preauth_timeouts,
                      &t.admission_failed,
                      &t.inbound_timeouts,
                      &t.inbound_errors,
                      &t.exchange_timeouts,
                      &s.open_failed,
                      &s.malformed,
                      &s.replayed,
                      &s.before_floor,
                      &s.too_old,
                      &s.too_new,
                      &s.seal_failed})
    *f = v++;
  t.exchange_errors = t.exchange_timeouts + 7;
  std::vector<Refusal> list = Refusals(t, s);
  std::map<std::string, uint64_t> by_reason;
  for (const Refusal& r : list) {
    EXPECT_FALSE(r.help.empty()) << r.reason;
    EXPECT_EQ(r.reason.find_first_not_of("abcdefghijklmnopqrstuvwxyz_"), std::string::npos);
    by_reason[r.reason] = r.count;
  }
  EXPECT_EQ(by_reason.size(), list.size()) << "no reason twice";
  EXPECT_EQ(list.size(), 22u);
  EXPECT_EQ(by_reason["exchange_failed"], 7u) << "timeouts are their own reason";
  std::set<uint64_t> counts;
  for (const Refusal& r : list) counts.insert(r.count);
  EXPECT_EQ(counts.size(), list.size()) << "each reason reads its own counter";
  EXPECT_EQ(by_reason["preauth_per_source"], t.preauth_per_source);
  EXPECT_EQ(by_reason["seal_before_start"], s.before_floor);
}

struct SealedPair {
  explicit SealedPair(asio::io_context& io, AsioTransportOptions server_options = {},
                      const char* client_ip = "127.0.0.1")
      : ring(*Keyring::FromKeys({*GenerateKey()})) {
    options.label = "prod";
    server_inner = Loopback(io, server_options);
    client_inner = AsioTransport::Bind(io, Endpoint{*IpAddr::Parse(client_ip), 0}).value();
    server = std::make_unique<SealedTransport>(*server_inner, ring, options);
    client = std::make_unique<SealedTransport>(*client_inner, ring, options);
    rec.Attach(*server);
  }
  Keyring ring;
  SealOptions options;
  std::unique_ptr<AsioTransport> server_inner, client_inner;
  std::unique_ptr<SealedTransport> server, client;
  Recorder rec;
};

TEST(MeshAsio, AHeadThatDoesNotOpenIsRefusedBeforeAnyLargeBuffer) {
  asio::io_context io;
  SealedPair p(io);
  AsioTransport& b = *p.server_inner;
  asio::io_context raw_io;
  // Garbage where the sealed head should be.
  auto garbage = RawConnect(raw_io, PortOf(b));
  Bytes frame = Header(4 << 20);
  frame.resize(frame.size() + kRequestHeadBytes + 1000, 1);
  asio::write(*garbage, asio::buffer(frame));
  // A real head from another cluster key.
  Keyring other = *Keyring::FromKeys({*GenerateKey()});
  Capture capture;
  SealedTransport stranger(capture, other, p.options);
  stranger.Exchange(b.LocalAddress(), Bytes(3 << 20, 's'), kSecond, [](Result<Bytes>) {});
  auto foreign = RawConnect(raw_io, PortOf(b));
  Bytes sent = Header(capture.requests.at(0).size());
  sent.insert(sent.end(), capture.requests[0].begin(), capture.requests[0].begin() + 4096);
  asio::write(*foreign, asio::buffer(sent));
  // Our own key, but a head that announces another length than the frame's.
  SealedTransport liar(capture, p.ring, p.options);
  liar.Exchange(b.LocalAddress(), Bytes(1000, 'l'), kSecond, [](Result<Bytes>) {});
  auto lying = RawConnect(raw_io, PortOf(b));
  Bytes longer = Header(capture.requests.at(1).size() + (2 << 20));
  longer.insert(longer.end(), capture.requests[1].begin(), capture.requests[1].end());
  asio::write(*lying, asio::buffer(longer));

  ASSERT_TRUE(RunUntil(io, [&] { return b.stats().admission_failed == 3; }));
  EXPECT_EQ(b.stats().inbound_buffered_peak, 0u) << "nothing past a head was ever buffered";
  EXPECT_EQ(b.stats().inbound_reserved_bytes, 0u);
  EXPECT_EQ(p.server->stats().open_failed, 2u);
  EXPECT_EQ(p.server->stats().malformed, 1u);
  EXPECT_TRUE(ClosedByPeer(*garbage));
  EXPECT_TRUE(ClosedByPeer(*foreign));
  EXPECT_TRUE(ClosedByPeer(*lying));
  EXPECT_EQ(p.rec.requests, 0);
}

TEST(MeshAsio, ALargeSealedExchangeStillWorksAndItsBuffersAreReturned) {
  asio::io_context io;
  SealedPair p(io);
  p.server->SetHandlers(nullptr, AnswerAtOnce([](const Address&, std::span<const uint8_t> r) {
                          return Result<Bytes>(Bytes(r.rbegin(), r.rend()));
                        }));
  Bytes big(3 << 20);
  for (size_t i = 0; i < big.size(); i++) big[i] = static_cast<uint8_t>(i * 7);
  std::vector<Result<Bytes>> answers;
  p.client->Exchange(p.server_inner->LocalAddress(), big, 5 * kSecond,
                     [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(
      io, [&] { return !answers.empty(); }, 5000ms));
  ASSERT_TRUE(answers[0].ok()) << answers[0].status().message();
  EXPECT_EQ(*answers[0], Bytes(big.rbegin(), big.rend()));
  ASSERT_TRUE(RunUntil(io, [&] { return p.server_inner->stats().exchanges_in == 1; }));
  for (AsioTransport* t : {p.server_inner.get(), p.client_inner.get()}) {
    EXPECT_GE(t->stats().inbound_buffered_peak, 3u << 20);
    EXPECT_LE(t->stats().inbound_buffered_peak, (3u << 20) + 4096);
    EXPECT_EQ(t->stats().inbound_buffered_bytes, 0u);
    EXPECT_EQ(t->stats().inbound_reserved_bytes, 0u);
  }
  EXPECT_EQ(p.server_inner->stats().admission_failed, 0u);
  EXPECT_EQ(p.server->stats().opened, 1u);
}

TEST(MeshAsio, AProvenFrameIsBookedInFullAndRefusedIfTheBudgetCannotHoldIt) {
  asio::io_context io;
  AsioTransportOptions options;
  options.inbound_budget_bytes = 2 << 20;
  SealedPair p(io, options);
  std::vector<Result<Bytes>> answers;
  for (size_t size : {size_t{3} << 20, size_t{1} << 20})
    p.client->Exchange(p.server_inner->LocalAddress(), Bytes(size, 'z'), 5 * kSecond,
                       [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(
      io, [&] { return answers.size() == 2; }, 5000ms));
  EXPECT_EQ(answers[0].ok() + answers[1].ok(), 1);
  EXPECT_EQ(p.server_inner->stats().budget_refused, 1u);
  EXPECT_EQ(p.server_inner->stats().admission_failed, 0u) << "it proved the key";
  EXPECT_LE(p.server_inner->stats().inbound_buffered_peak, 2u << 20);
  EXPECT_EQ(p.rec.requests, 1);
}

TEST(MeshAsio, PerSourceLimitAndThePreauthDeadline) {
  asio::io_context io;
  AsioTransportOptions options;
  options.max_preauth_per_source = 4;
  options.preauth_timeout_ns = 200'000'000;
  SealedPair p(io, options);
  AsioTransport& b = *p.server_inner;
  asio::io_context raw_io;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 6; i++) idle.push_back(RawConnect(raw_io, PortOf(b), "127.0.0.2"));
  ASSERT_TRUE(RunUntil(io, [&] { return b.stats().preauth_per_source == 2; }));
  EXPECT_EQ(b.preauth_connections(), 4u);
  // Another address is not held back by that one, and proves the key fast.
  std::vector<Result<Bytes>> answers;
  p.client->Exchange(b.LocalAddress(), B("still there?"), kSecond,
                     [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
  ASSERT_TRUE(RunUntil(io, [&] { return !answers.empty(); }));
  EXPECT_TRUE(answers[0].ok()) << answers[0].status().message();
  // The idle ones are cut off at the short deadline, not the request one.
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(RunUntil(io, [&] { return b.stats().preauth_timeouts == 4; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(b.preauth_connections(), 0u);
  EXPECT_EQ(b.stats().inbound_timeouts, 0u);
}

TEST(MeshAsio, AKnownMemberEvictsAStrangerWhenUnauthenticatedSlotsAreFull) {
  asio::io_context io;
  AsioTransportOptions options;
  options.max_preauth_connections = 4;
  options.max_preauth_per_source = 4;
  SealedPair p(io, options, "127.0.0.3");
  AsioTransport& b = *p.server_inner;
  asio::io_context raw_io;
  std::vector<std::unique_ptr<tcp::socket>> idle;
  for (int i = 0; i < 4; i++) idle.push_back(RawConnect(raw_io, PortOf(b), "127.0.0.2"));
  ASSERT_TRUE(RunUntil(io, [&] { return b.preauth_connections() == 4; }));
  auto ask = [&] {
    std::vector<Result<Bytes>> answers;
    p.client->Exchange(b.LocalAddress(), B("let me in"), kSecond,
                       [&](Result<Bytes> r) { answers.push_back(std::move(r)); });
    RunUntil(io, [&] { return !answers.empty(); });
    return answers.empty() ? Result<Bytes>(Unavailable("no answer")) : answers[0];
  };
  // Not yet known: refused like any stranger.
  EXPECT_FALSE(ask().ok());
  EXPECT_EQ(b.stats().preauth_full, 1u);
  b.SetKnownPeers({*IpAddr::Parse("127.0.0.3")});
  Result<Bytes> answer = ask();
  ASSERT_TRUE(answer.ok()) << answer.status().message();
  EXPECT_EQ(S(*answer), "re: let me in");
  EXPECT_EQ(b.stats().preauth_evicted, 1u);
  EXPECT_EQ(b.preauth_connections(), 3u);
  int closed = 0;
  for (auto& raw : idle) {
    raw->non_blocking(true);
    uint8_t byte;
    asio::error_code ec;
    raw->read_some(asio::buffer(&byte, 1), ec);
    closed += ec == asio::error::eof || ec == asio::error::connection_reset;
  }
  EXPECT_EQ(closed, 1) << "the oldest stranger, and only it";
}

TEST(MeshAsioRuntime, TimersFireInOrderNeverInlineAndCancel) {
  asio::io_context io;
  AsioRuntime rt(io);
  std::vector<int> fired;
  int64_t start = rt.NowNs();
  rt.After(30'000'000, [&] { fired.push_back(3); });
  rt.After(0, [&] { fired.push_back(1); });
  Runtime::TimerId cancelled = rt.After(10'000'000, [&] { fired.push_back(99); });
  rt.After(20'000'000, [&] { fired.push_back(2); });
  EXPECT_TRUE(fired.empty());
  rt.Cancel(cancelled);
  rt.Cancel(12345);  // unknown ids are ignored
  EXPECT_EQ(rt.pending_timers(), 3u);
  ASSERT_TRUE(RunUntil(io, [&] { return fired.size() == 3; }));
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
  EXPECT_GE(rt.NowNs() - start, 30'000'000);
  EXPECT_EQ(rt.pending_timers(), 0u);
  EXPECT_NE(rt.Random(), rt.Random());
}

TEST(MeshAsioRuntime, CancelFromInsideACallbackAndDestroyWithPendingTimers) {
  asio::io_context io;
  int fired = 0;
  {
    AsioRuntime rt(io);
    Runtime::TimerId second = 0;
    rt.After(0, [&] {
      fired++;
      rt.Cancel(second);
    });
    second = rt.After(0, [&] { fired += 100; });
    rt.After(10'000'000, [&] { fired += 1000; });
    RunUntil(io, [&] { return fired > 0; });
  }
  RunUntil(
      io, [] { return false; }, 50ms);
  EXPECT_EQ(fired, 1);
}

}  // namespace
}  // namespace flowmesh::mesh
