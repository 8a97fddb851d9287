// The control socket's history requests end to end over a real Unix socket:
// flows streamed in batches with window, filter and limit; endpoints; look
// trees through the schema and back; store figures in status.
#include <sys/socket.h>

#include "cli/format/format.h"
#include "node/control/control_client.h"
#include "tests/unit/control_fixture.h"

namespace flowmesh::testing {
namespace {

ConnRecord Record(int64_t ts, uint32_t pid, uint16_t lport, uint16_t rport) {
  ConnRecord r;
  r.ts_ns = ts;
  r.key.laddr = IpAddr::V4(127, 0, 0, 1);
  r.key.raddr = IpAddr::V4(10, 0, 0, 2);
  r.key.lport = lport;
  r.key.rport = rport;
  r.key.netns = 4026531840u;
  r.direction = Direction::kActive;
  r.proc.pid = pid;
  r.proc.start_ticks = 77;
  r.proc.set_comm("curl");
  r.counters = {100, 2000, 5, 6, 1, 120, 30};
  r.duration_ns = 1'500'000;
  return r;
}

TEST_F(ControlTest, FlowsStreamEveryRecordInTheWindowAcrossManyFrames) {
  const size_t n = 3 * kRecordsPerFrame + 17;  // several frames and a partial one
  for (size_t i = 0; i < n; i++)
    backend_.records.push_back(Record(1000 + static_cast<int64_t>(i), 10, 40000, 80));
  backend_.records.push_back(Record(999'999, 10, 40000, 80));  // outside the window
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  std::vector<ConnRecord> got;
  bool truncated = true;
  Status s = client->Flows(
      {}, TimeWindow{1000, 500'000}, 0,
      [&](const ConnRecord& r, const Workload&) {
        got.push_back(r);
        return true;
      },
      &truncated);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(got.size(), n);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(got.front(), backend_.records.front());
  EXPECT_EQ(got.back().ts_ns, static_cast<int64_t>(1000 + n - 1));
  EXPECT_EQ(got.back().proc.comm_view(), "curl");
  EXPECT_EQ(got.back().counters, (TcpCounters{100, 2000, 5, 6, 1, 120, 30}));
}

TEST_F(ControlTest, FlowsCarryTheReconstructedMark) {
  backend_.records.push_back(Record(1000, 10, 40000, 80));
  backend_.records.push_back(Record(1001, 10, 40001, 80));
  backend_.records.back().reconstructed = true;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  std::vector<ConnRecord> got;
  bool truncated = false;
  Status s = client->Flows(
      {}, TimeWindow{0, 500'000}, 0,
      [&](const ConnRecord& r, const Workload&) {
        got.push_back(r);
        return true;
      },
      &truncated);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_FALSE(got[0].reconstructed);
  EXPECT_TRUE(got[1].reconstructed);
}

TEST_F(ControlTest, FlowsApplyFilterAndLimit) {
  for (int i = 0; i < 10; i++) backend_.records.push_back(Record(1000 + i, 10 + i % 2, 40000, 80));
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  WatchFilter only11;
  only11.pid = 11;
  std::vector<ConnRecord> got;
  auto collect = [&](const ConnRecord& r, const Workload&) {
    got.push_back(r);
    return true;
  };
  ASSERT_TRUE(client->Flows(only11, TimeWindow{}, 0, collect).ok());
  EXPECT_EQ(got.size(), 5u);
  got.clear();
  bool truncated = false;
  ASSERT_TRUE(client->Flows({}, TimeWindow{}, 3, collect, &truncated).ok());
  EXPECT_EQ(got.size(), 3u);
  EXPECT_TRUE(truncated);
}

TEST_F(ControlTest, EndpointsComeBackWithTheirProcesses) {
  EndpointView e;
  e.endpoint.addr = IpAddr::V4(0, 0, 0, 0);
  e.endpoint.port = 80;
  e.endpoint.netns = 1;
  e.endpoint.since_ns = 5;
  e.process = {4656, 99, 4656, 1, "nginx", "/usr/sbin/nginx"};
  e.endpoint.proc.pid = 4656;
  e.endpoint.proc.start_ticks = 99;
  backend_.endpoints = {e};
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<std::vector<EndpointView>> got = client->Endpoints();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].process, e.process);
  EXPECT_EQ((*got)[0].endpoint.port, 80);
  EXPECT_EQ((*got)[0].endpoint.since_ns, 5);
  EXPECT_EQ(EndpointsLine((*got)[0]).substr(0, 10), "0.0.0.0:80");
}

// Issue 14: a published port and a balancer's front cross the socket as
// fronts with their targets, and a listener still reads as one.
TEST_F(ControlTest, NatFrontsComeBackWithTheirTargets) {
  EndpointView published;
  published.endpoint.addr = IpAddr::V4(10, 213, 0, 8);
  published.endpoint.port = 9090;
  published.process = {4656, 0, 4656, 0, "nginx", "/usr/sbin/nginx"};
  published.targets = {*Endpoint::Parse("172.18.0.2:80")};
  EndpointView lb;
  lb.endpoint.addr = IpAddr::V4(10, 213, 0, 9);
  lb.endpoint.port = 8000;
  lb.balancer = true;
  lb.targets = {*Endpoint::Parse("10.213.0.3:8000"), *Endpoint::Parse("[2001:db8::4]:8000")};
  EndpointView listener;
  listener.endpoint.addr = IpAddr::V4(172, 18, 0, 2);
  listener.endpoint.port = 80;
  backend_.endpoints = {published, lb, listener};
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<std::vector<EndpointView>> got = client->Endpoints();
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].targets, published.targets);
  EXPECT_FALSE((*got)[0].balancer);
  EXPECT_EQ((*got)[0].process.comm, "nginx");
  EXPECT_EQ((*got)[1].targets, lb.targets);
  EXPECT_TRUE((*got)[1].balancer);
  EXPECT_FALSE((*got)[2].alias());
  EXPECT_EQ(EndpointsLine((*got)[1]),
            "10.213.0.9:8000        -> 10.213.0.3:8000, [2001:db8::4]:8000 balancer");
}

LookNode Leaf(const std::string& host, uint16_t port, LookStatus status, uint64_t conns) {
  LookNode n;
  n.host = host;
  n.addr = IpAddr::V4(10, 213, 0, 3);
  n.port = port;
  n.status = status;
  if (status == LookStatus::kOk) n.process = ProcessDetails{6111, 1, 6111, 1, "python3", ""};
  FlowStats st;
  st.connections = conns;
  st.bytes_tx = 10;
  st.first_seen_ns = 1;
  st.last_seen_ns = 2;
  n.stats = st;
  return n;
}

TEST_F(ControlTest, LookTreesCrossTheSocketIntact) {
  LookNode root;
  root.host = "web-1";
  root.addr = IpAddr::V4(10, 213, 0, 2);
  root.port = 80;
  root.process = ProcessDetails{4656, 9, 4656, 1, "nginx", "/usr/sbin/nginx"};
  root.process->workload.kind = WorkloadKind::kUnit;
  root.process->workload.id = root.process->workload.unit = "nginx.service";
  LookNode app = Leaf("app-1", 8000, LookStatus::kOk, 12);
  app.dependencies.push_back(Leaf("", 5432, LookStatus::kNoAgent, 3));
  root.dependencies.push_back(app);
  root.clients.push_back(Leaf("client-1", 0, LookStatus::kUnreachable, 4));
  root.clients.back().status_detail = "no answer from client-1 in time";
  root.clients.push_back(Leaf("client-2", 0, LookStatus::kUnconfirmed, 2));
  // Through NAT: the root's published port, a dependency dialled as a VIP,
  // a balancer's front.
  root.aliases = {*Endpoint::Parse("10.213.0.2:9090"), *Endpoint::Parse("[2001:db8::2]:9090")};
  root.dependencies[0].via = *Endpoint::Parse("10.213.250.1:80");
  LookNode lb = Leaf("lb-1", 8000, LookStatus::kOk, 5);
  lb.process.reset();
  lb.balancer = true;
  root.dependencies.push_back(lb);
  backend_.look_root = root;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  LookQuery q;
  q.target = {IpAddr::V4(10, 213, 0, 2), 80};
  q.depth = 4;
  q.direction = LookDirection::kOut;
  q.window = {5, 10};
  q.group_by = GroupBy::kPid;
  Result<LookNode> got = client->Look(q, std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(backend_.last_look.group_by, GroupBy::kPid);
  EXPECT_EQ(got->process->workload, root.process->workload);
  EXPECT_EQ(got->process->workload.id, "nginx.service");
  EXPECT_EQ(backend_.last_look.target.port, 80);
  EXPECT_EQ(backend_.last_look.depth, 4);
  EXPECT_EQ(backend_.last_look.direction, LookDirection::kOut);
  EXPECT_EQ(backend_.last_look.window.since_ns, 5);
  EXPECT_EQ(got->host, "web-1");
  EXPECT_FALSE(got->stats.has_value());
  ASSERT_TRUE(got->process.has_value());
  EXPECT_EQ(got->process->exe, "/usr/sbin/nginx");
  ASSERT_EQ(got->dependencies.size(), 2u);
  EXPECT_EQ(got->aliases, root.aliases);
  EXPECT_EQ(got->via.port, 0) << "not set, not made up";
  EXPECT_FALSE(got->balancer);
  EXPECT_EQ(got->dependencies[0].via, *Endpoint::Parse("10.213.250.1:80"));
  EXPECT_TRUE(got->dependencies[0].aliases.empty());
  EXPECT_TRUE(got->dependencies[1].balancer);
  EXPECT_FALSE(got->dependencies[1].process.has_value());
  EXPECT_EQ(got->dependencies[0].stats->connections, 12u);
  ASSERT_EQ(got->dependencies[0].dependencies.size(), 1u);
  EXPECT_EQ(got->dependencies[0].dependencies[0].status, LookStatus::kNoAgent);
  EXPECT_FALSE(got->dependencies[0].dependencies[0].process.has_value());
  ASSERT_EQ(got->clients.size(), 2u);
  EXPECT_EQ(got->clients[0].status, LookStatus::kUnreachable);
  EXPECT_EQ(got->clients[0].status_detail, "no answer from client-1 in time");
  EXPECT_EQ(got->clients[0].port, 0);
  EXPECT_EQ(got->clients[1].status, LookStatus::kUnconfirmed);
  EXPECT_EQ(got->clients[1].status_detail, "");
}

TEST_F(ControlTest, ALookErrorReachesTheClient) {
  backend_.look_root.host = "fail";
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  LookQuery q;
  q.target = {IpAddr::V4(10, 213, 0, 2), 80};
  Result<LookNode> got = client->Look(q, std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("look failed on purpose"), std::string::npos);
}

TEST_F(ControlTest, StatusCarriesTheStoreFigures) {
  backend_.status.store.stats.dir = "/var/lib/flowmesh";
  backend_.status.store.stats.records = 1234;
  backend_.status.store.stats.disk_bytes = 5 << 20;
  backend_.status.store.stats.oldest_ns = 1'700'000'000'000'000'000;
  backend_.status.store.stats.write_errors = 2;
  backend_.status.store.stats.last_error = "No space left on device";
  backend_.status.store.dropped_records = 7;
  backend_.status.store.stats.memory_limit_bytes = 16 << 20;
  backend_.status.store.stats.memtable_bytes = 3 << 20;
  backend_.status.store.stats.block_cache_bytes = 5 << 20;
  backend_.status.store.stats.table_readers_bytes = 4096;
  backend_.status.store.stats.memtable_flushes = 11;
  backend_.status.store.stats.write_stalls = 1;
  backend_.status.probe.polls = 3;
  backend_.status.table.close_without_open = 4;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<NodeStatus> st = client->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->store.stats.records, 1234u);
  EXPECT_EQ(st->store.dropped_records, 7u);
  EXPECT_EQ(st->probe.polls, 3u);
  EXPECT_EQ(st->table.close_without_open, 4u);
  std::string text = StatusText(*st, st->started_ns);
  EXPECT_NE(text.find("/var/lib/flowmesh: 5.0 MB, 1234 records since 2023-11-14T22:13:20"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("2 failed writes, 7 records dropped; last: No space left on device"),
            std::string::npos)
      << text;
  std::string json = StatusJson(*st, st->started_ns);
  EXPECT_NE(json.find("\"records\":1234"), std::string::npos) << json;
  for (const char* field : {"\"memory_limit_bytes\":16777216", "\"memtable_bytes\":3145728",
                            "\"block_cache_bytes\":5242880", "\"table_readers_bytes\":4096",
                            "\"memtable_flushes\":11", "\"write_stalls\":1"})
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
}

TEST(FlowsFormat, TcplifeColumnsAndDesignJsonFields) {
  ConnRecord r = Record(1'700'000'000'123'000'000, 4242, 51000, 443);
  std::string header = FlowsHeader(0);
  EXPECT_EQ(header.substr(0, 3), "PID");
  EXPECT_NE(header.find("RETRANS"), std::string::npos);
  EXPECT_EQ(FlowsHeader('T').substr(0, 4), "TIME");
  std::string line = FlowsLine(r, 0, r.ts_ns);
  EXPECT_NE(line.find("4242"), std::string::npos);
  EXPECT_NE(line.find("curl"), std::string::npos);
  EXPECT_NE(line.find("out"), std::string::npos);
  EXPECT_NE(line.find("1.95"), std::string::npos) << line;  // 2000 bytes in KB
  EXPECT_NE(line.find("1.50"), std::string::npos) << line;  // ms
  EXPECT_EQ(FlowsLine(r, 's', r.ts_ns - 2'500'000'000).substr(0, 5), "2.500");
  std::string json = FlowsJson(r);
  for (const char* field :
       {"\"ts\":", "\"pid\":4242", "\"comm\":\"curl\"", "\"family\":\"ipv4\"",
        "\"laddr\":\"127.0.0.1\"", "\"lport\":51000", "\"raddr\":\"10.0.0.2\"", "\"rport\":443",
        "\"direction\":\"active\"", "\"tx_bytes\":100", "\"rx_bytes\":2000", "\"segs_out\":5",
        "\"segs_in\":6", "\"retrans\":1", "\"rtt_us\":120", "\"rttvar_us\":30",
        "\"duration_ms\":1.500", "\"netns\":4026531840", "\"reconstructed\":false"})
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  EXPECT_EQ(line.find("reconstructed"), std::string::npos) << line;
}

TEST(FlowsFormat, ReconstructedCloseIsMarkedAfterTheColumns) {
  ConnRecord r = Record(1'700'000'000'123'000'000, 4242, 51000, 443);
  const std::string plain = FlowsLine(r, 0, r.ts_ns);
  r.reconstructed = true;
  EXPECT_EQ(FlowsLine(r, 0, r.ts_ns), plain + " [reconstructed]");
  EXPECT_NE(FlowsJson(r).find("\"reconstructed\":true"), std::string::npos) << FlowsJson(r);
}

}  // namespace
}  // namespace flowmesh::testing
