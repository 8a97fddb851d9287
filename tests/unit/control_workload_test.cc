// Workloads over the control socket: meshd resolves each record's, event's
// and connection's process once per request, sends each workload once, and
// filters by --unit and --container; bad filter values and a reply pointing
// past its workloads are clear errors.
#include <sys/socket.h>

#include "node/control/control_client.h"
#include "tests/unit/control_fixture.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh::testing {
namespace {

Workload Nginx() { return SampleUnit(); }
Workload Web() { return SampleContainer(); }

ConnRecord Record(int64_t ts, uint32_t pid) {
  ConnRecord r;
  r.ts_ns = ts;
  r.key.laddr = IpAddr::V4(127, 0, 0, 1);
  r.key.raddr = IpAddr::V4(10, 0, 0, 2);
  r.key.lport = 40000;
  r.key.rport = 80;
  r.direction = Direction::kActive;
  r.proc.pid = pid;
  r.proc.start_ticks = 7;
  return r;
}

class ControlWorkloadTest : public ControlTest {
 protected:
  void SetUp() override {
    ControlTest::SetUp();
    // pid 10: nginx.service (two processes' worth of records), 11: the web
    // container, 12: neither.
    backend_.workloads = {{10, Nginx()}, {11, Web()}};
    for (int i = 0; i < 9; i++) backend_.records.push_back(Record(1000 + i, 10 + i % 3));
  }
  // The pids and workloads of the records a flows request gets back.
  std::vector<std::pair<uint32_t, Workload>> Flows(WatchFilter f) {
    Result<ControlClient> client = ControlClient::Connect(path_);
    EXPECT_TRUE(client.ok());
    std::vector<std::pair<uint32_t, Workload>> got;
    Status s = client->Flows(f, TimeWindow{}, 0, [&](const ConnRecord& r, const Workload& w) {
      got.emplace_back(r.proc.pid, w);
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.message();
    return got;
  }
};

TEST_F(ControlWorkloadTest, FlowsCarryEachRecordsWorkloadAskedOncePerProcess) {
  auto all = Flows({});
  ASSERT_EQ(all.size(), 9u);
  for (const auto& [pid, w] : all) {
    if (pid == 10) EXPECT_EQ(w, Nginx());
    if (pid == 11) EXPECT_EQ(w, Web());
    if (pid == 12) EXPECT_TRUE(w.empty());
  }
  EXPECT_EQ(backend_.workload_asks, 3) << "once per process, not per record";
}

TEST_F(ControlWorkloadTest, FlowsFilterByUnitAndContainer) {
  WatchFilter unit;
  unit.unit = "nginx.service";
  auto got = Flows(unit);
  ASSERT_EQ(got.size(), 3u);
  for (const auto& [pid, w] : got) EXPECT_EQ(pid, 10u);

  WatchFilter by_name;
  by_name.container = "web";
  EXPECT_EQ(Flows(by_name).size(), 3u);
  WatchFilter by_id;
  by_id.container = "3f2a1c";
  got = Flows(by_id);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, 11u);
  WatchFilter other;
  other.container = "db";
  EXPECT_TRUE(Flows(other).empty());
  WatchFilter both;  // a unit and a container: no process is both
  both.unit = "nginx.service";
  both.container = "web";
  EXPECT_TRUE(Flows(both).empty());
}

TEST_F(ControlWorkloadTest, ConnectionsCarryAndFilterByWorkload) {
  for (uint32_t pid : {10u, 11u, 12u, 10u}) {
    OpenConnection c;
    c.key = TestEvent(EventKind::kOpen, static_cast<uint16_t>(8000 + pid), 40000).key;
    c.proc.pid = pid;
    backend_.connections.push_back(c);
  }
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  std::vector<Workload> workloads;
  Result<std::vector<OpenConnection>> all = client->Connections({}, &workloads);
  ASSERT_TRUE(all.ok()) << all.status().message();
  ASSERT_EQ(workloads.size(), 4u);
  EXPECT_EQ(workloads[0], Nginx());
  EXPECT_EQ(workloads[1], Web());
  EXPECT_TRUE(workloads[2].empty());
  EXPECT_EQ(workloads[3], Nginx());
  WatchFilter unit;
  unit.unit = "nginx.service";
  Result<std::vector<OpenConnection>> some = client->Connections(unit, &workloads);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->size(), 2u);
  EXPECT_EQ(workloads, (std::vector<Workload>{Nginx(), Nginx()}));
}

TEST_F(ControlWorkloadTest, WatchCarriesTheWorkloadAndFiltersByIt) {
  std::vector<std::pair<uint32_t, Workload>> got;
  Status result;
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    WatchFilter f;
    f.container = "web";
    result = client->Watch(
        f,
        [&](const ConnEvent& e, const Workload& w) {
          got.emplace_back(e.proc.pid, w);
          return got.size() < 2;
        },
        nullptr, std::chrono::seconds(10));
  });
  ASSERT_NE(backend_.WaitForSubscriber(1), nullptr);
  for (uint32_t pid : {10u, 11u, 12u, 11u}) {
    ConnEvent e = TestEvent(EventKind::kOpen, 80, 5000, pid);
    e.proc.pid = pid;
    backend_.hub.Publish(e);
  }
  watcher.join();
  EXPECT_TRUE(result.ok()) << result.message();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], std::make_pair(11u, Web()));
  EXPECT_EQ(got[1], std::make_pair(11u, Web()));
}

// A process's first connect may come before its cgroup is resolved: "none"
// is asked again (at most once a second), a known workload never.
TEST_F(ControlWorkloadTest, AWatchSeesAWorkloadResolvedAfterTheFirstEvent) {
  std::vector<Workload> got;
  std::thread watcher([&] {
    Result<ControlClient> client = ControlClient::Connect(path_);
    ASSERT_TRUE(client.ok());
    Status s = client->Watch(
        {},
        [&](const ConnEvent&, const Workload& w) {
          got.push_back(w);
          return got.size() < 3;
        },
        nullptr, std::chrono::seconds(10));
    EXPECT_TRUE(s.ok()) << s.message();
  });
  ASSERT_NE(backend_.WaitForSubscriber(1), nullptr);
  ConnEvent e = TestEvent(EventKind::kOpen, 80, 5000);
  e.proc.pid = 13;
  backend_.hub.Publish(e);
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(backend_.workloads_mu);
    return backend_.workload_asks == 1;
  }));
  {
    std::lock_guard<std::mutex> lock(backend_.workloads_mu);
    backend_.workloads[13] = Nginx();
  }
  backend_.hub.Publish(e);  // within the second: still none, not asked again
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  backend_.hub.Publish(e);
  watcher.join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].empty());
  EXPECT_TRUE(got[1].empty());
  EXPECT_EQ(got[2], Nginx());
  EXPECT_EQ(backend_.workload_asks, 2);
}

TEST(WorkloadFilter, ValuesAreCheckedWithTheirOptionNamed) {
  EXPECT_EQ(*ParseUnitFilter("nginx"), "nginx.service") << "as systemctl reads it";
  EXPECT_EQ(*ParseUnitFilter("session-2.scope"), "session-2.scope");
  Result<std::string> empty = ParseUnitFilter("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(), "--unit: empty; e.g. nginx.service");
  Result<std::string> spaced = ParseContainerFilter("my web");
  ASSERT_FALSE(spaced.ok());
  EXPECT_EQ(spaced.status().message(),
            "--container: 'my web' has a space, a slash or a control character; e.g. web, or an "
            "id prefix 3f2a1c");
  EXPECT_FALSE(ParseUnitFilter("system.slice/nginx.service").ok());
  Result<std::string> escape = ParseContainerFilter("we\x1b[2Jb");
  ASSERT_FALSE(escape.ok());
  EXPECT_NE(escape.status().message().find("'we?[2Jb'"), std::string::npos)
      << "no control character reaches the terminal";
  EXPECT_FALSE(ParseContainerFilter(std::string(300, 'a')).ok());

  WatchFilter f;
  f.unit = "nginx.service";
  EXPECT_TRUE(f.MatchesWorkload(Nginx()));
  EXPECT_FALSE(f.MatchesWorkload(Web()));
  EXPECT_FALSE(f.MatchesWorkload({}));
  f.unit = Web().unit;  // a container's scope is its unit too
  EXPECT_TRUE(f.MatchesWorkload(Web()));
  // A user's manager can run a unit of any name: --unit means the system's.
  Workload user = Nginx();
  user.user_unit = true;
  f.unit = "nginx.service";
  EXPECT_FALSE(f.MatchesWorkload(user));
  WatchFilter none;
  EXPECT_TRUE(none.MatchesWorkload({}));
}

TEST(WorkloadFilter, TravelsInTheRequestAndABadOneIsRefused) {
  ControlRequest req{RequestKind::kFlows, WatchFilter{0, AF_INET, {}, {}, "nginx.service", "web"}};
  FrameDecoder decoder(kMaxRequestBytes);
  std::vector<uint8_t> bytes = *EncodeRequest(req);
  ASSERT_TRUE(decoder.Feed(bytes.data(), bytes.size()).ok());
  Frame frame;
  ASSERT_TRUE(decoder.Next(&frame));
  Result<ControlRequest> back = DecodeRequest(frame);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->filter, req.filter);

  req.filter.container = "a/b";
  bytes = *EncodeRequest(req);
  ASSERT_TRUE(decoder.Feed(bytes.data(), bytes.size()).ok());
  ASSERT_TRUE(decoder.Next(&frame));
  Result<ControlRequest> bad = DecodeRequest(frame);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--container: 'a/b'"), std::string::npos)
      << bad.status().message();
}

TEST(WorkloadWire, EachWorkloadOnceAndAnIndexPastThemIsAnError) {
  std::vector<ConnRecord> records = {Record(1, 10), Record(2, 10), Record(3, 11), Record(4, 12)};
  std::vector<uint8_t> one = *EncodeRecordsResponse(records, true, false, {Nginx(), Nginx()});
  std::vector<uint8_t> many =
      *EncodeRecordsResponse(records, true, false, {Nginx(), Nginx(), Nginx(), Nginx()});
  EXPECT_EQ(one.size(), many.size()) << "the same workload travels once";
  std::vector<uint8_t> bytes = *EncodeRecordsResponse(records, true, false, {Nginx(), {}, Web()});
  FrameDecoder decoder(kMaxResponseBytes);
  ASSERT_TRUE(decoder.Feed(bytes.data(), bytes.size()).ok());
  Frame frame;
  ASSERT_TRUE(decoder.Next(&frame));
  Result<ControlResponse> r = DecodeResponse(frame);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->workloads, (std::vector<Workload>{Nginx(), {}, Web(), {}}));

  capnp::MallocMessageBuilder m;
  auto resp = m.initRoot<schema::Response>();
  ToCapnp(Record(1, 10), resp.initRecords().initRecords(1)[0]);
  resp.getRecords().getRecords()[0].getProcess().setWorkload(2);
  resp.initWorkloads(1);
  std::vector<uint8_t> past = *EncodeFrame(m, kMaxResponseBytes);
  ASSERT_TRUE(decoder.Feed(past.data(), past.size()).ok());
  ASSERT_TRUE(decoder.Next(&frame));
  Result<ControlResponse> refused = DecodeResponse(frame);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "malformed response: workload 2 of 1");
}

}  // namespace
}  // namespace flowmesh::testing
