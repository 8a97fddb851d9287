// ControlServer and ControlClient end to end over a real Unix socket:
// status, connections and watch round trips, filters, drops, hang-ups and
// malformed clients.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "node/control/control_client.h"
#include "node/control/convert.h"
#include "tests/unit/control_fixture.h"

namespace flowmesh::testing {
namespace {

using std::chrono::milliseconds;

// Decodes the single response a raw client got before the server closed.
Result<ControlResponse> OnlyResponse(const std::vector<uint8_t>& bytes) {
  FrameDecoder decoder(kMaxResponseBytes);
  Status s = decoder.Feed(bytes.data(), bytes.size());
  if (!s.ok()) return s;
  Frame frame;
  if (!decoder.Next(&frame))
    return Internal("no complete response in " + std::to_string(bytes.size()) + " bytes");
  return DecodeResponse(frame);
}

TEST_F(ControlTest, StatusRoundTrip) {
  backend_.status.node_name = "web-1";
  backend_.status.probe_mode = "streaming";
  backend_.status.probe_reason = "eBPF (tp_btf/inet_sock_set_state)";
  backend_.status.probe.events = 12;
  backend_.status.probe.lost = 1;
  backend_.status.probe.detail = {{"lost_ringbuf", 1}};
  backend_.status.table.open = 3;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok()) << client.status().message();
  Result<NodeStatus> st = client->Status();
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->node_name, "web-1");
  EXPECT_EQ(st->probe_reason, "eBPF (tp_btf/inet_sock_set_state)");
  EXPECT_EQ(st->probe.events, 12u);
  EXPECT_EQ(st->probe.lost, 1u);
  EXPECT_EQ(st->table.open, 3u);
  ASSERT_EQ(st->probe.detail.size(), 3u);
  EXPECT_EQ(st->probe.detail[0].first, "lost_ringbuf");
  EXPECT_EQ(st->probe.detail[1].first, "control_maps_refused");
  EXPECT_EQ(st->probe.detail[2].first, "control_malformed_frames");
  // The same client object can ask again (a new connection underneath).
  EXPECT_TRUE(client->Status().ok());
}

TEST_F(ControlTest, ConnectionsAreFilteredByMeshd) {
  for (uint16_t lport : {80, 443, 8080}) {
    OpenConnection c;
    ConnEvent e = TestEvent(EventKind::kOpen, lport, 40000);
    c.key = e.key;
    c.proc = e.proc;
    c.counters.bytes_tx = lport;
    backend_.connections.push_back(c);
  }
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<std::vector<OpenConnection>> all = client->Connections({});
  ASSERT_TRUE(all.ok()) << all.status().message();
  EXPECT_EQ(all->size(), 3u);
  Result<std::vector<OpenConnection>> some = client->Connections({0, 0, {443, 8080}, {}});
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ((*some)[0].key.lport, 443);
  EXPECT_EQ((*some)[1].counters.bytes_tx, 8080u);
  Result<std::vector<OpenConnection>> none = client->Connections({0, AF_INET6, {}, {}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(ControlTest, WatchGetsEventsPublishedAfterSubscribingFilteredWithoutUpdates) {
  std::vector<ConnEvent> got;
  Status result;
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    result = client->Watch(
        WatchFilter{0, 0, {80}, {}},
        [&](const ConnEvent& e, const Workload&) {
          got.push_back(e);
          return got.size() < 3;
        },
        nullptr, std::chrono::seconds(10));
  });
  std::shared_ptr<Subscriber> sub = backend_.WaitForSubscriber(1);
  ASSERT_NE(sub, nullptr);
  backend_.hub.Publish(TestEvent(EventKind::kUpdate, 80, 5000, 1));  // internal: never sent
  backend_.hub.Publish(TestEvent(EventKind::kOpen, 81, 5000, 2));    // filtered out
  backend_.hub.Publish(TestEvent(EventKind::kOpen, 80, 5000, 3));
  backend_.hub.Publish(TestEvent(EventKind::kClose, 80, 5000, 4));
  backend_.hub.Publish(TestEvent(EventKind::kListen, 80, 0, 5));
  watcher.join();
  EXPECT_TRUE(result.ok()) << result.message();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].kind, EventKind::kOpen);
  EXPECT_EQ(got[0].ts_ns, 3);
  EXPECT_EQ(got[1].kind, EventKind::kClose);
  EXPECT_EQ(got[2].kind, EventKind::kListen);
  EXPECT_EQ(got[2].proc.comm_view(), "curl");
  // The client stopped reading and closed: meshd lets go of the queue.
  EXPECT_TRUE(WaitUntil([&] { return sub->closed(); }));
}

TEST_F(ControlTest, WatchDeliversLongStreamsInOrder) {
  constexpr int kEvents = 3000;  // several drain batches and gathered writes
  std::vector<int64_t> ts;
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    Status s = client->Watch(
        {},
        [&](const ConnEvent& e, const Workload&) {
          ts.push_back(e.ts_ns);
          return ts.size() < kEvents;
        },
        nullptr, std::chrono::seconds(20));
    EXPECT_TRUE(s.ok()) << s.message();
  });
  ASSERT_NE(backend_.WaitForSubscriber(1), nullptr);
  for (int i = 0; i < kEvents; i++) backend_.hub.Publish(TestEvent(EventKind::kOpen, 80, 1, i));
  watcher.join();
  ASSERT_EQ(ts.size(), size_t{kEvents});
  for (int i = 0; i < kEvents; i++) ASSERT_EQ(ts[static_cast<size_t>(i)], i);
}

TEST_F(ControlTest, WatchReportsEventsDroppedForASlowWatcher) {
  backend_.small_capacity = 2;
  for (int i = 0; i < 5; i++) backend_.prefill.push_back(TestEvent(EventKind::kOpen, 80, 1, i));
  std::vector<ConnEvent> got;
  std::vector<uint64_t> dropped;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Status s = client->Watch(
      {},
      [&](const ConnEvent& e, const Workload&) {
        got.push_back(e);
        return true;
      },
      [&](uint64_t total) { dropped.push_back(total); }, milliseconds(500));
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(got.size(), 2u);
  EXPECT_EQ(dropped, (std::vector<uint64_t>{3}));
}

TEST_F(ControlTest, WatchTimeoutEndsQuietly) {
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  Status s = client->Watch(
      {}, [](const ConnEvent&, const Workload&) { return true; }, nullptr, milliseconds(200));
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(190));
}

TEST_F(ControlTest, ClientHangingUpMidWatchClosesItsSubscriber) {
  int fd = RawConnect(path_);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAllRaw(fd, *EncodeRequest({RequestKind::kWatch, {}})));
  std::shared_ptr<Subscriber> sub = backend_.WaitForSubscriber(1);
  ASSERT_NE(sub, nullptr);
  backend_.hub.Publish(TestEvent(EventKind::kOpen, 80, 1));
  EXPECT_FALSE(sub->closed());
  close(fd);
  // No event needs to flow for meshd to notice: the pending read sees EOF.
  EXPECT_TRUE(WaitUntil([&] { return sub->closed(); }));
  backend_.hub.Publish(TestEvent(EventKind::kOpen, 80, 1));
  EXPECT_EQ(backend_.hub.subscriber_count(), 0u);
}

TEST_F(ControlTest, WatchEndsWithAnErrorWhenMeshdStops) {
  Status result;
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    result = client->Watch(
        {}, [](const ConnEvent&, const Workload&) { return true; }, nullptr);
    done = true;
  });
  ASSERT_NE(backend_.WaitForSubscriber(1), nullptr);
  StopServer();
  watcher.join();
  EXPECT_TRUE(done);
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.message().find("meshd closed the connection"), std::string::npos)
      << result.message();
}

TEST_F(ControlTest, MalformedFramesAreCountedAnsweredAndTheServerKeepsServing) {
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
  };
  std::vector<Case> cases = {
      {"zero length", {0, 0, 0, 0}},
      {"oversized", {0, 0, 0x10, 0}},  // 1 MiB request
      {"garbage", {16, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}},
  };
  uint64_t n = 0;
  for (const Case& c : cases) {
    int fd = RawConnect(path_);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAllRaw(fd, c.bytes));
    Result<ControlResponse> r = OnlyResponse(ReadUntilEof(fd));
    close(fd);
    ASSERT_TRUE(r.ok()) << c.what << ": " << r.status().message();
    EXPECT_EQ(r->kind, ControlResponse::Kind::kError) << c.what;
    EXPECT_NE(r->error.find("could not decode the request"), std::string::npos) << r->error;
    EXPECT_EQ(server_->malformed_frames(), ++n) << c.what;
  }
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<NodeStatus> st = client->Status();
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->probe.detail.back(),
            (std::pair<std::string, uint64_t>{"control_malformed_frames", 3}));
}

TEST_F(ControlTest, DataSentDuringAWatchIsMalformed) {
  int fd = RawConnect(path_);
  ASSERT_TRUE(WriteAllRaw(fd, *EncodeRequest({RequestKind::kWatch, {}})));
  std::shared_ptr<Subscriber> sub = backend_.WaitForSubscriber(1);
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(WriteAllRaw(fd, {1, 2, 3}));
  EXPECT_TRUE(WaitUntil([&] { return sub->closed(); }));
  EXPECT_EQ(server_->malformed_frames(), 1u);
  close(fd);
}

TEST_F(ControlTest, ASlowBackendDoesNotBlockOtherClients) {
  backend_.Block();
  Result<std::vector<OpenConnection>> slow = Internal("not yet");
  std::thread top([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    slow = client->Connections({});
  });
  // While GetConnections is stuck, a watcher still subscribes and gets events.
  int got = 0;
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    EXPECT_TRUE(client
                    ->Watch(
                        {}, [&](const ConnEvent&, const Workload&) { return ++got < 1; }, nullptr,
                        std::chrono::seconds(5))
                    .ok());
  });
  ASSERT_NE(backend_.WaitForSubscriber(1), nullptr);
  backend_.hub.Publish(TestEvent(EventKind::kOpen, 80, 1));
  watcher.join();
  EXPECT_EQ(got, 1);
  backend_.Release();
  top.join();
  EXPECT_TRUE(slow.ok()) << slow.status().message();
}

TEST_F(ControlTest, ClientTimesOutOnAStuckMeshd) {
  backend_.Block();
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  client->set_io_timeout(milliseconds(200));
  Result<std::vector<OpenConnection>> r = client->Connections({});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("did not answer within 200ms"), std::string::npos)
      << r.status().message();
}

TEST_F(ControlTest, TooManyConnectionsAreRefusedThenServedAgain) {
  std::vector<int> idle;
  for (int i = 0; i < 64; i++) {
    idle.push_back(RawConnect(path_));
    ASSERT_GE(idle.back(), 0);
  }
  ASSERT_TRUE(WaitUntil([&] { return server_->accepted() >= 64; }));
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<NodeStatus> refused = client->Status();
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("too many control connections"), std::string::npos)
      << refused.status().message();
  for (int fd : idle) close(fd);
  EXPECT_TRUE(WaitUntil([&] { return client->Status().ok(); }));
}

}  // namespace
}  // namespace flowmesh::testing
