// `map` on the control socket: the query and the whole map through the schema
// and a real Unix socket, a meshd of before, and answers that break the
// bounds (huge texts and lists, unknown enums, flipped bytes).
#include <capnp/message.h>
#include <sys/socket.h>

#include <cmath>
#include <random>
#include <thread>

#include "cli/format/map_format.h"
#include "node/control/control_client.h"
#include "tests/unit/control_fixture.h"
#include "tests/unit/map_samples.h"

namespace flowmesh::testing {
namespace {

MapQuery FullQuery() {
  MapQuery q;
  q.window = {kMapSince, kMapUntil};
  q.group_by = GroupBy::kPgid;
  q.host = "web-1";
  q.workload = "nginx";
  q.depth = 3;
  q.concurrency = 16;
  q.hop_timeout_ns = 1'500'000'000;
  q.timeout_ns = 4'000'000'000;
  q.baseline = TimeWindow{kMapSince - 86'400'000'000'000, kMapUntil - 86'400'000'000'000};
  q.change_factor = 3.5;
  return q;
}

Result<MapResult> ThroughFrames(const MapResult& m) {
  FM_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, EncodeMapResponse(m));
  FrameDecoder decoder(kMaxResponseBytes);
  FM_RETURN_IF_ERROR(decoder.Feed(bytes.data(), bytes.size()));
  Frame frame;
  if (!decoder.Next(&frame)) return Internal("no frame");
  FM_ASSIGN_OR_RETURN(ControlResponse r, DecodeResponse(frame));
  if (r.kind != ControlResponse::Kind::kMap) return Internal("not a map: " + r.error);
  return std::move(r.map);
}

TEST_F(ControlTest, AMapQueryReachesTheBackendAsAsked) {
  backend_.map_result = SampleMap();
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  const MapQuery q = FullQuery();
  Result<MapResult> got = client->Map(q, std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.status().message();
  const MapQuery& asked = backend_.last_map;
  EXPECT_EQ(asked.window.since_ns, q.window.since_ns);
  EXPECT_EQ(asked.window.until_ns, q.window.until_ns);
  EXPECT_EQ(asked.group_by, GroupBy::kPgid);
  EXPECT_EQ(asked.host, "web-1");
  EXPECT_EQ(asked.workload, "nginx");
  EXPECT_EQ(asked.depth, 3);
  EXPECT_EQ(asked.concurrency, 16);
  EXPECT_EQ(asked.hop_timeout_ns, 1'500'000'000);
  EXPECT_EQ(asked.timeout_ns, 4'000'000'000);
  ASSERT_TRUE(asked.baseline.has_value());
  EXPECT_EQ(asked.baseline->since_ns, q.baseline->since_ns);
  EXPECT_EQ(asked.baseline->until_ns, q.baseline->until_ns);
  EXPECT_EQ(asked.change_factor, 3.5);
  // The answer's query is the one meshd ran.
  EXPECT_EQ(got->query.host, "web-1");
  EXPECT_EQ(got->query.change_factor, 3.5);
}

TEST_F(ControlTest, TheWholeMapCrossesTheSocketIntact) {
  backend_.map_result = SampleMap();
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  MapQuery q = FullQuery();
  q.host.clear();
  q.workload.clear();
  Result<MapResult> got = client->Map(q, std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.status().message();
  MapResult want = SampleMap();
  want.query = backend_.last_map;
  // The JSON prints every field a reader sees; equal JSON, equal maps.
  EXPECT_EQ(FormatMapJson(*got), FormatMapJson(want));
  ASSERT_EQ(got->graph.nodes.size(), want.graph.nodes.size());
  EXPECT_EQ(got->graph.nodes[0].process->workload, want.graph.nodes[0].process->workload);
  EXPECT_EQ(got->graph.nodes[0].process->start_ticks, 77u);
  EXPECT_FALSE(got->graph.nodes[1].process.has_value());
  EXPECT_EQ(got->graph.edges[0].via, *Endpoint::Parse("10.213.250.1:80"));
  EXPECT_EQ(got->graph.edges[1].via.port, 0) << "not translated, not made up";
  EXPECT_EQ(got->graph.edges[1].stats.carried, 2u);
  EXPECT_EQ(got->graph.members[1].latency_ns, 2'000'000'000);
  ASSERT_TRUE(got->baseline.has_value());
  EXPECT_EQ(got->baseline->window.since_ns, want.baseline->window.since_ns);
  EXPECT_EQ(got->baseline->edges.size(), want.baseline->edges.size());
  ASSERT_EQ(got->changes.size(), 3u);
  EXPECT_FALSE(got->changes[0].before.has_value());
  EXPECT_EQ(got->changes[2].before->connections, 1u);
  EXPECT_EQ(got->changes[2].factor, 3.0);
}

TEST_F(ControlTest, AMapWithoutABaselineHasNoneOnTheOtherSide) {
  backend_.map_result = SampleMap(/*with_baseline=*/false);
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<MapResult> got = client->Map(MapQuery{}, std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_FALSE(got->query.baseline.has_value());
  EXPECT_FALSE(got->baseline.has_value());
  EXPECT_TRUE(got->changes.empty());
  EXPECT_EQ(got->query.depth, 1);
  EXPECT_EQ(got->query.change_factor, 2.0);
}

TEST_F(ControlTest, AMapErrorReachesTheClient) {
  backend_.map_error = "no member answered in time";
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<MapResult> got = client->Map(MapQuery{}, std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "meshd: no member answered in time");
}

TEST_F(ControlTest, AMapTooBigForOneReplySaysHowToCutIt) {
  MapResult big;
  // 20,000 edges with 2,000-byte ids: about 80 MB, past the 64 MiB reply.
  for (int i = 0; i < 20'000; i++)
    big.graph.edges.push_back(MapLink(std::string(2000, 'a') + std::to_string(i),
                                      std::string(2000, 'b'), "10.0.0.1:80", MapStats(1, 1, 1)));
  backend_.map_result = std::move(big);
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<MapResult> got = client->Map(MapQuery{}, std::chrono::seconds(20));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("20000 edges does not fit in one reply"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("--host, --workload and --depth"), std::string::npos);
}

TEST_F(ControlTest, MeshdRefusesAMapQueryPastItsBounds) {
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  MapQuery q;
  q.host = std::string(kMaxMapQueryTextBytes + 1, 'h');
  Result<MapResult> got = client->Map(q, std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("map --host of 1025 bytes is over the 1024-byte limit"),
            std::string::npos)
      << got.status().message();
  // Past the request frame's cap, meshctl itself refuses to send it.
  q.host = std::string(100'000, 'h');
  got = client->Map(q, std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("65536"), std::string::npos) << got.status().message();
}

// A map holds its worker for up to its timeout: two at once at most, so
// status and look always find a worker; the third is refused, and counted.
TEST_F(ControlTest, AtMostTwoMapsAtOnceAndStatusStillAnswers) {
  std::mutex mu;
  std::condition_variable cv;
  int drawing = 0;
  bool release = false;
  backend_.map_hook = [&] {
    std::unique_lock lock(mu);
    drawing++;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  };
  backend_.map_result = SampleMap(false);
  std::vector<std::thread> slow;
  std::atomic<int> drawn{0};
  for (int i = 0; i < 2; i++)
    slow.emplace_back([&] {
      Result<ControlClient> c = ControlClient::Connect(path_);
      if (c.ok() && c->Map(MapQuery{}, std::chrono::seconds(10)).ok()) drawn++;
    });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return drawing == 2; }));
  }
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  Result<MapResult> third = client->Map(MapQuery{}, std::chrono::seconds(5));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().message(),
            "meshd: meshd is already drawing 2 maps; try again when one is done");
  Result<NodeStatus> st = client->Status();
  ASSERT_TRUE(st.ok()) << st.status().message();
  bool counted = false;
  for (const auto& [name, value] : st->probe.detail)
    counted |= name == "control_maps_refused" && value == 1;
  EXPECT_TRUE(counted);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (std::thread& t : slow) t.join();
  EXPECT_EQ(drawn.load(), 2);
  // Both done: the next map is drawn again.
  EXPECT_TRUE(client->Map(MapQuery{}, std::chrono::seconds(5)).ok());
}

// The scale: 1,000 members, 2,000 workloads and 10,000 edges cross
// the socket and print in every format well within the map's deadline.
TEST_F(ControlTest, AThousandMemberMapCrossesTheSocketAndPrintsQuickly) {
  MapResult big;
  for (int m = 0; m < 1000; m++) {
    const std::string host = "host-" + std::to_string(m);
    big.graph.members.push_back(
        MapPeer(host, "10.1." + std::to_string(m / 250) + "." + std::to_string(m % 250) + ":7946",
                m % 100 != 0, m % 100 != 0 ? "" : "no answer in 2s"));
    for (int w = 0; w < 2; w++)
      big.graph.nodes.push_back(MapWorkload(host, "wunit:svc" + std::to_string(w) + ".service",
                                            "svc" + std::to_string(w) + ".service", "svc", 100 + w,
                                            SampleUnit(), "10.1.0.1:" + std::to_string(8000 + w)));
  }
  for (int e = 0; e < 10'000; e++)
    big.graph.edges.push_back(MapLink(big.graph.nodes[e % 2000].id,
                                      big.graph.nodes[(e * 7 + 1) % 2000].id, "10.1.0.1:8000",
                                      MapStats(e % 50 + 1, 1000, 2000)));
  backend_.map_result = big;
  Result<ControlClient> client = ControlClient::Connect(path_);
  ASSERT_TRUE(client.ok());
  const auto start = std::chrono::steady_clock::now();
  Result<MapResult> got = client->Map(MapQuery{}, std::chrono::seconds(30));
  const auto crossed = std::chrono::steady_clock::now();
  ASSERT_TRUE(got.ok()) << got.status().message();
  const size_t text = FormatMapText(*got).size(), json = FormatMapJson(*got).size();
  const size_t dot = FormatMapDot(*got).size();
  const auto printed = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf(
      "1000 members, 2000 nodes, 10000 edges: reply %zu bytes, socket round trip %lld ms, "
      "text+json+dot (%zu+%zu+%zu bytes) %lld ms\n",
      EncodeMapResponse(big)->size(), static_cast<long long>(ms(crossed - start)), text, json, dot,
      static_cast<long long>(ms(printed - crossed)));
  EXPECT_EQ(got->graph.edges.size(), 10'000u);
  EXPECT_LT(ms(crossed - start), 2000);
  EXPECT_LT(ms(printed - crossed), 2000);
}

// A meshd of before decodes a map request as a request it does not know
// (messages.cc before issue 16), answers that and hangs up.
TEST(ControlMap, AMeshdOfBeforeIsToldToUpgrade) {
  char tmpl[] = "/tmp/fm-oldmeshd-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/meshd.sock";
  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  std::thread old_meshd([listener] {
    int fd = accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    // Its words: Session::Malformed("unknown request 9 (...)").
    std::vector<uint8_t> reply = *EncodeErrorResponse(
        "meshd could not decode the request: unknown request 9 (is meshctl newer than meshd?)");
    uint8_t buf[4096];
    (void)read(fd, buf, sizeof buf);
    WriteAllRaw(fd, reply);
    close(fd);
  });
  Result<ControlClient> client = ControlClient::Connect(path);
  ASSERT_TRUE(client.ok());
  Result<MapResult> got = client->Map(MapQuery{}, std::chrono::seconds(5));
  old_meshd.join();
  close(listener);
  std::filesystem::remove_all(tmpl);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message().rfind("this meshd does not know `map`; upgrade it", 0), 0u)
      << got.status().message();
}

TEST(ControlMap, MapQueryDecodingChecksEveryField) {
  auto decode = [](const std::function<void(schema::MapQuery::Builder)>& edit) {
    capnp::MallocMessageBuilder message;
    auto b = message.initRoot<schema::MapQuery>();
    ToCapnp(MapQuery{}, b);
    edit(b);
    return FromCapnp(b.asReader());
  };
  auto error = [&](const std::function<void(schema::MapQuery::Builder)>& edit) {
    Result<MapQuery> q = decode(edit);
    return q.ok() ? std::string("ok") : q.status().message();
  };
  EXPECT_TRUE(decode([](auto) {}).ok());
  EXPECT_EQ(error([](auto b) { b.setUntilNs(-1); }), "the map window ends before it starts");
  EXPECT_EQ(error([](auto b) {
              b.setHasBaseline(true);
              b.setBaselineSinceNs(5);
              b.setBaselineUntilNs(4);
            }),
            "the map baseline window ends before it starts");
  EXPECT_EQ(error([](auto b) { b.setDepth(65); }), "map depth 65 is over 64");
  EXPECT_EQ(error([](auto b) { b.setConcurrency(1u << 30); }),
            "map concurrency 1073741824 is over 4096");
  EXPECT_EQ(error([](auto b) { b.setTimeoutNs(-1); }), "map timeouts must not be negative");
  EXPECT_EQ(error([](auto b) { b.setTimeoutNs(3'600'000'000'000); }),
            "a map timeout of 3600s is over the limit of 60s");
  EXPECT_NE(error([](auto b) { b.setGroupBy("cgroup"); }).find("cgroup"), std::string::npos);
  EXPECT_NE(error([](auto b) { b.setGroupBy(std::string(100, 'w')); }).find("over the 16-byte"),
            std::string::npos);
  for (double bad : {0.5, 1.0, -2.0, double(NAN), double(INFINITY)})
    EXPECT_NE(error([bad](auto b) { b.setChangeFactor(bad); }).find("not a number above 1"),
              std::string::npos)
        << bad;
  // Zero is "the default", as a meshctl that leaves it unset sends it.
  Result<MapQuery> q = decode([](auto b) {
    b.setChangeFactor(0);
    b.setTimeoutNs(1'000'000'000);
    b.setHopTimeoutNs(0);
    b.setConcurrency(0);
  });
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->change_factor, 2.0);
  EXPECT_EQ(q->concurrency, 64);
  EXPECT_EQ(q->hop_timeout_ns, 1'000'000'000) << "one member never gets longer than the map";
}

// An answer whose texts or lists are past the bounds, or whose enums are a
// newer meshd's, is an error naming what; never a crash or a huge line.
TEST(ControlMap, MapAnswersPastTheBoundsAreErrors) {
  auto error = [](const std::function<void(schema::MapResult::Builder)>& edit) {
    capnp::MallocMessageBuilder message;
    auto b = message.initRoot<schema::MapResult>();
    ToCapnp(SampleMap(), b);
    edit(b);
    Result<MapResult> m = FromCapnp(b.asReader());
    return m.ok() ? std::string("ok") : m.status().message();
  };
  EXPECT_EQ(error([](auto) {}), "ok");
  EXPECT_EQ(error([](auto b) { b.getGraph().getNodes()[0].setLabel(std::string(1 << 20, 'x')); }),
            "map node app-1/wcontainer:web's label of 1048576 bytes is over the 2048-byte limit");
  EXPECT_EQ(error([](auto b) { b.getGraph().getNodes()[0].setId(std::string(5000, 'x')); }),
            "a map node's id of 5000 bytes is over the 2048-byte limit");
  EXPECT_EQ(error([](auto b) { b.getGraph().getEdges()[0].setFrom(std::string(3000, 'x')); }),
            "a map edge's from of 3000 bytes is over the 2048-byte limit");
  EXPECT_EQ(error([](auto b) { b.getGraph().getMembers()[1].setError(std::string(5000, 'x')); }),
            "member cache-1's error of 5000 bytes is over the 4096-byte limit");
  EXPECT_EQ(error([](auto b) { b.getGraph().getNodes()[0].setKind(schema::MapNodeKind(7)); }),
            "map node app-1/wcontainer:web has the unknown kind 7 (is meshd newer than meshctl?)");
  EXPECT_EQ(error([](auto b) { b.getGraph().getNodes()[0].setStatus(schema::LookStatus(9)); }),
            "map node status 9 is unknown (is meshd newer than meshctl?)");
  EXPECT_EQ(error([](auto b) { b.getChanges()[0].setKind(schema::MapChangeKind(3)); }),
            "map change kind 3 is unknown (is meshd newer than meshctl?)");
  EXPECT_EQ(error([](auto b) { b.getChanges()[2].setFactor(NAN); }).substr(0, 17),
            "map change factor");
  EXPECT_EQ(error([](auto b) { b.getGraph().setUntilNs(0); }),
            "the map window ends before it starts");
  EXPECT_EQ(error([](auto b) { b.getBaseline().setUntilNs(0); }),
            "the baseline window ends before it starts");
  EXPECT_EQ(error([](auto b) {
              b.getGraph().getNodes()[0].getEndpoints()[0].getAddr().setBytes(
                  kj::arrayPtr(reinterpret_cast<const kj::byte*>("abc"), 3));
            }),
            "endpoint address of 3 bytes (expected 4 or 16)");
  // Counted before anything is read: a list of empty structs costs the
  // sender almost nothing and would cost the reader a struct each.
  EXPECT_EQ(error([](auto b) { b.getGraph().initNodes(kMaxMapNodes + 1); }),
            "a map with 262145 nodes is over the limit of 262144");
  EXPECT_EQ(error([](auto b) { b.getGraph().initMembers(kMaxMapMembers + 1); }),
            "a map with 65537 members is over the limit of 65536");
  EXPECT_EQ(
      error([](auto b) { b.getGraph().getNodes()[0].initEndpoints(kMaxMapNodeEndpoints + 1); }),
      "a map with 4097 endpoints on one node is over the limit of 4096");
}

TEST(ControlMap, FlippedBytesAreErrorsOrMapsNeverCrashes) {
  std::vector<uint8_t> good = *EncodeMapResponse(SampleMap());
  std::mt19937 rng(16);
  int errors = 0, maps = 0;
  for (int round = 0; round < 3000; round++) {
    std::vector<uint8_t> bytes = good;
    for (int k = 0; k < 1 + round % 8; k++)
      bytes[4 + rng() % (bytes.size() - 4)] ^= static_cast<uint8_t>(1u << (rng() % 8));
    FrameDecoder decoder(kMaxResponseBytes);
    Frame frame;
    if (!decoder.Feed(bytes.data(), bytes.size()).ok() || !decoder.Next(&frame)) {
      errors++;
      continue;
    }
    Result<ControlResponse> r = DecodeResponse(frame);
    (r.ok() ? maps : errors)++;
  }
  EXPECT_EQ(errors + maps, 3000);
  EXPECT_GT(errors, 0);
  // A truncated frame never decodes as a map.
  FrameDecoder decoder(kMaxResponseBytes);
  ASSERT_TRUE(decoder.Feed(good.data(), good.size() / 2).ok());
  Frame frame;
  EXPECT_FALSE(decoder.Next(&frame));
}

TEST(ControlMap, ARoundTripKeepsHostileTextsAsTheyCame) {
  MapResult m = SampleMap();
  m.graph.nodes[0].label = "web\x1b[2J\"quoted\"\nnext";
  m.graph.nodes[0].status_detail = std::string("nul\0inside", 10);
  Result<MapResult> got = ThroughFrames(m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  // Escaping is the formats' job; the protocol carries bytes.
  EXPECT_EQ(got->graph.nodes[0].label, m.graph.nodes[0].label);
  // A capnp Text ends at its first NUL on the way out; nothing reads past it.
  EXPECT_EQ(got->graph.nodes[0].status_detail, "nul");
}

// What a process or a peer named may be longer than the decoder takes; the
// encoder cuts it (not inside a character), so meshctl still reads the map
// /api/map shows, and an edge still names the node it cut the same way.
TEST(ControlMap, TextsOverTheLimitsAreCutOnTheWayOutNotRefused) {
  MapResult m = SampleMap();
  m.graph.nodes[0].label = std::string(2047, 'x') + "\xc3\xa9tail";
  m.graph.nodes[0].id = std::string(3000, 'i');
  m.graph.edges[0].from = m.graph.nodes[0].id;
  m.graph.nodes[0].status_detail = std::string(9000, 'd');
  m.graph.members[1].error = std::string(5000, 'e');
  Result<MapResult> got = ThroughFrames(m);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->graph.nodes[0].label, std::string(2047, 'x')) << "not half a character";
  EXPECT_EQ(got->graph.nodes[0].id.size(), kMaxMapTextBytes);
  EXPECT_EQ(got->graph.edges[0].from, got->graph.nodes[0].id);
  EXPECT_EQ(got->graph.nodes[0].status_detail.size(), kMaxMapDetailBytes);
  EXPECT_EQ(got->graph.members[1].error.size(), kMaxMapDetailBytes);
}

}  // namespace
}  // namespace flowmesh::testing
