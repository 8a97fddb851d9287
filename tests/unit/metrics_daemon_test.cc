// meshd's side of the metrics: the --metrics-listen flag, its status rendered
// as Prometheus series, and the peer look latency timed where the mesh
// answers (two MeshServices over loopback).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "node/daemon/config.h"
#include "node/daemon/daemon_metrics.h"
#include "node/daemon/mesh_service.h"
#include "node/look/look_wire.h"

namespace flowmesh {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

TEST(MetricsRender, StatusBecomesNamedTypedSeries) {
  NodeStatus st;
  st.version = "0.1.0";
  st.started_ns = 1'700'000'000'500'000'000;
  st.probe_mode = "streaming";
  st.probe.events = 1234;
  st.probe.lost = 5;
  st.table.open = 7;
  st.store.records_written = 99;
  st.store.flows = 42;
  st.store.stats.disk_bytes = 65536;
  st.store.stats.write_errors = 2;
  st.store.stats.memory_limit_bytes = 16 << 20;
  st.store.stats.memtable_bytes = 1 << 20;
  st.store.stats.write_stalls = 3;
  st.mesh.alive = 3;
  st.mesh.dead = 1;
  st.mesh.bytes_in = 1000;
  st.mesh.bytes_out = 2000;
  st.mesh.malformed = 4;
  LookLatency looks;
  looks.meshctl.ObserveNs(2'000'000);
  std::string text = RenderMetrics(st, looks, DrainBarrier(1'000'000'000));
  for (const char* line : {
           "flowmesh_build_info{version=\"0.1.0\"} 1",
           "process_start_time_seconds 1700000000.5",
           "# TYPE flowmesh_probe_mode gauge",
           "flowmesh_probe_mode{mode=\"streaming\"} 1",
           "flowmesh_probe_mode{mode=\"polling\"} 0",
           "# TYPE flowmesh_probe_events_total counter",
           "flowmesh_probe_events_total 1234",
           "flowmesh_probe_events_lost_total 5",
           "flowmesh_connections_open 7",
           "flowmesh_flow_updates_total 42",
           "flowmesh_store_records_written_total 99",
           "flowmesh_store_size_bytes 65536",
           "flowmesh_store_write_errors_total 2",
           "flowmesh_store_memory_limit_bytes 16777216",
           "flowmesh_store_memtable_bytes 1048576",
           "flowmesh_store_write_stalls_total 3",
           "flowmesh_mesh_peers{state=\"alive\"} 3",
           "flowmesh_mesh_peers{state=\"suspect\"} 0",
           "flowmesh_mesh_peers{state=\"dead\"} 1",
           "flowmesh_mesh_peers{state=\"left\"} 0",
           "flowmesh_mesh_bytes_total{direction=\"in\"} 1000",
           "flowmesh_mesh_bytes_total{direction=\"out\"} 2000",
           "flowmesh_mesh_malformed_packets_total 4",
           "# TYPE flowmesh_look_duration_seconds histogram",
           "flowmesh_look_duration_seconds_bucket{kind=\"meshctl\",le=\"0.001\"} 0",
           "flowmesh_look_duration_seconds_bucket{kind=\"meshctl\",le=\"0.0025\"} 1",
           "flowmesh_look_duration_seconds_count{kind=\"meshctl\"} 1",
           "flowmesh_look_duration_seconds_count{kind=\"peer\"} 0",
       })
    EXPECT_TRUE(HasLine(text, line)) << "missing: " << line << "\nin:\n" << text;
}

// Every drop and refusal by reason in one family, and the flapping counters, as status has them.
TEST(MetricsRender, RefusalsAndFlappingBecomeSeries) {
  NodeStatus st;
  st.mesh.enabled = true;
  st.mesh.refusals = {{"udp_oversized", 2, "h"}, {"udp_empty", 0, "h"}, {"seal_replayed", 7, "h"}};
  st.mesh.look_unanswered = {{"timeout", 3, "h"}, {"refused", 1, "h"}};
  st.mesh.suspicions_raised = 1;
  st.mesh.suspicions_received = 4;
  st.mesh.refutations = 3;
  st.mesh.incarnation_bumps = 5;
  st.mesh.false_deaths = 1;
  st.mesh.flaps = 6;
  st.mesh.flapping = {{"app-1", 4, 0}, {"we\"ird", 2, 1}};
  LookLatency looks;
  std::string text = RenderMetrics(st, looks, DrainBarrier(1'000'000'000));
  for (const char* line : {
           "# TYPE flowmesh_mesh_refusals_total counter",
           "flowmesh_mesh_refusals_total{reason=\"udp_oversized\"} 2",
           "flowmesh_mesh_refusals_total{reason=\"udp_empty\"} 0",
           "flowmesh_mesh_refusals_total{reason=\"seal_replayed\"} 7",
           "# TYPE flowmesh_look_unanswered_total counter",
           "flowmesh_look_unanswered_total{reason=\"timeout\"} 3",
           "flowmesh_look_unanswered_total{reason=\"refused\"} 1",
           "flowmesh_mesh_suspicions_total{origin=\"probe\"} 1",
           "flowmesh_mesh_suspicions_total{origin=\"peer\"} 4",
           "flowmesh_mesh_refutations_total 3",
           "flowmesh_mesh_incarnation_bumps_total 5",
           "flowmesh_mesh_false_deaths_total 1",
           "flowmesh_mesh_flaps_total 6",
           "flowmesh_mesh_member_flaps_total{member=\"app-1\"} 4",
           "flowmesh_mesh_member_flaps_total{member=\"we\\\"ird\"} 2",
       })
    EXPECT_TRUE(HasLine(text, line)) << "missing: " << line << "\nin:\n" << text;
  // The help no longer claims oversized packets are in the malformed count.
  size_t help = text.find("# HELP flowmesh_mesh_malformed_packets_total ");
  ASSERT_NE(help, std::string::npos);
  std::string line = text.substr(help, text.find('\n', help) - help);
  EXPECT_NE(line.find("Oversized and empty datagrams, oversized frames, refused connections and "
                      "timeouts are not counted here"),
            std::string::npos)
      << line;
}

TEST(MetricsRender, LostEventsByCauseAndReconstructedCloses) {
  NodeStatus st;
  st.probe_mode = "streaming";
  st.probe.lost = 7;
  st.probe.lost_causes = {{"ring_buffer_full", 3}, {"recursion", 4}};
  st.table.reconstructed_closes = 25;
  st.table.reconstructed_unlistens = 1;
  std::string text = RenderMetrics(st, LookLatency{}, DrainBarrier(1'000'000'000));
  for (const char* line : {
           "flowmesh_probe_events_lost_total 7",
           "# TYPE flowmesh_probe_events_lost_by_cause_total counter",
           "flowmesh_probe_events_lost_by_cause_total{cause=\"ring_buffer_full\"} 3",
           "flowmesh_probe_events_lost_by_cause_total{cause=\"recursion\"} 4",
           "# TYPE flowmesh_probe_events_reconstructed_total counter",
           "flowmesh_probe_events_reconstructed_total{kind=\"close\"} 25",
           "flowmesh_probe_events_reconstructed_total{kind=\"unlisten\"} 1",
       })
    EXPECT_TRUE(HasLine(text, line)) << "missing: " << line << "\nin:\n" << text;
}

// Every sample belongs to the family whose TYPE came last, every family has
// HELP, counters end in _total and no family is declared twice: the
// structure promtool checks, held here for every change to RenderMetrics.
TEST(MetricsRender, EverySampleBelongsToADeclaredFamily) {
  NodeStatus st;
  st.probe_mode = "polling";
  LookLatency looks;
  std::string text = RenderMetrics(st, looks, DrainBarrier(1'000'000'000));
  std::string family, type;
  std::vector<std::string> seen;
  size_t samples = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t nl = text.find('\n', pos);
    ASSERT_NE(nl, std::string::npos) << "text must end with a newline";
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.starts_with("# HELP ")) {
      family = line.substr(7, line.find(' ', 7) - 7);
      ASSERT_EQ(std::count(seen.begin(), seen.end(), family), 0) << family << " declared twice";
      seen.push_back(family);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      ASSERT_TRUE(line.starts_with("# TYPE " + family + " ")) << "TYPE without HELP: " << line;
      type = line.substr(8 + family.size());
      if (type == "counter") {
        EXPECT_TRUE(family.ends_with("_total")) << family;
      }
      continue;
    }
    std::string name = line.substr(0, line.find_first_of("{ "));
    bool ok = name == family;
    if (type == "histogram")
      ok = name == family + "_bucket" || name == family + "_sum" || name == family + "_count";
    EXPECT_TRUE(ok) << "sample " << name << " outside its family " << family;
    ++samples;
  }
  EXPECT_GT(samples, 20u);
  EXPECT_TRUE(HasLine(text, "flowmesh_probe_mode{mode=\"polling\"} 1"));
}

std::optional<DaemonConfig> ParseFlags(std::vector<std::string> args, int* code) {
  args.insert(args.begin(), "meshd");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseDaemonArgs(static_cast<int>(argv.size()), argv.data(), code);
}

TEST(MetricsFlag, OffByDefaultAndTakesIpPort) {
  int code = -1;
  std::optional<DaemonConfig> c = ParseFlags({}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->metrics_listen, "");
  c = ParseFlags({"--metrics-listen", "127.0.0.1:9464"}, &code);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9464");
  c = ParseFlags({"--metrics-listen", "[::1]:9464"}, &code);
  ASSERT_TRUE(c);
  setenv("MESHD_METRICS_LISTEN", "0.0.0.0:9100", 1);
  c = ParseFlags({}, &code);
  unsetenv("MESHD_METRICS_LISTEN");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->metrics_listen, "0.0.0.0:9100");
}

TEST(MetricsFlag, BadAddressIsAUsageErrorNamingTheFlag) {
  for (const char* bad : {"9479", "localhost:9479", "127.0.0.1", "127.0.0.1:0", "1.2.3.4:99999"}) {
    int code = -1;
    ::testing::internal::CaptureStderr();
    std::optional<DaemonConfig> c = ParseFlags({"--metrics-listen", bad}, &code);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_FALSE(c) << bad;
    EXPECT_EQ(code, 2) << bad;
    EXPECT_NE(err.find("--metrics-listen: '" + std::string(bad) + "'"), std::string::npos) << err;
    EXPECT_NE(err.find("e.g. 127.0.0.1:9464"), std::string::npos) << err;
  }
}

// A port free for both UDP and TCP on 127.0.0.1 (the mesh binds both).
uint16_t FreeMeshPort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int t = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a);
    getsockname(t, reinterpret_cast<sockaddr*>(&a), &len);
    int u = socket(AF_INET, SOCK_DGRAM, 0);
    bool udp_free = bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(t);
    close(u);
    if (udp_free) return ntohs(a.sin_port);
  }
  return 0;
}

struct MeshNodeForTest {
  std::unique_ptr<Store> store;
  std::unique_ptr<MeshService> mesh;
};

MeshNodeForTest StartMesh(const std::string& dir, const std::string& name, uint16_t port,
                          MeshServiceOptions o) {
  MeshNodeForTest n;
  StoreOptions so;
  so.dir = dir + "/" + name;
  so.retention_interval_ns = 0;
  Result<std::unique_ptr<Store>> store = Store::Open(so);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return n;
  n.store = std::move(*store);
  o.node_name = name;
  o.bind = Endpoint{IpAddr::V4(127, 0, 0, 1), port};
  o.insecure = true;
  Result<std::unique_ptr<MeshService>> mesh =
      MeshService::Start(o, *n.store, [] { return LocalTable{}; });
  EXPECT_TRUE(mesh.ok()) << mesh.status().message();
  if (mesh.ok()) n.mesh = std::move(*mesh);
  return n;
}

TEST(MetricsPeerLatency, LookQueriesAnsweredForPeersAreTimedFromArrival) {
  char tmpl[] = "/tmp/fm-metrics-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  metrics::Histogram latency(metrics::Histogram::LatencyBuckets());
  uint16_t port_b = FreeMeshPort();
  ASSERT_NE(port_b, 0);
  MeshServiceOptions ob;
  ob.query_latency = &latency;
  ob.answer_query = [](std::span<const uint8_t> q) -> Result<mesh::Bytes> {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a slow store
    FM_ASSIGN_OR_RETURN(QueryBatch batch, DecodeQuery(q));
    return EncodeAnswers({});
  };
  MeshNodeForTest b = StartMesh(dir, "b", port_b, ob);
  uint16_t port_a = FreeMeshPort();
  MeshNodeForTest a = StartMesh(dir, "a", port_a, {});
  ASSERT_TRUE(a.mesh && b.mesh);

  Result<std::vector<uint8_t>> query = EncodeQuery(QueryBatch{});
  ASSERT_TRUE(query.ok()) << query.status().message();
  std::promise<Status> answered;
  a.mesh->Query("127.0.0.1:" + std::to_string(port_b), *query, 5'000'000'000,
                [&](Result<mesh::Bytes> r) { answered.set_value(r.status()); });
  Status st = answered.get_future().get();
  ASSERT_TRUE(st.ok()) << st.message();

  metrics::HistogramSnapshot s = latency.Snapshot();
  EXPECT_EQ(s.count, 1u);
  EXPECT_GE(s.sum, 0.030);
  // Buckets are 1, 2.5, 5, 10, 25 ms, ...: 30 ms is above the first five.
  ASSERT_GE(s.cumulative.size(), 5u);
  EXPECT_EQ(s.cumulative[4], 0u);
  a.mesh->Stop();
  b.mesh->Stop();
  a = {};
  b = {};
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flowmesh
