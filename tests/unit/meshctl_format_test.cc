// What meshctl prints: JSON escaping, watch lines and objects, the top table
// and its rates, status, endpoints with NAT fronts.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <limits>

#include "cli/format/format.h"
#include "cli/format/json.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh {
namespace {

ConnEvent Close80() {
  ConnEvent e;
  e.kind = EventKind::kClose;
  e.direction = Direction::kActive;
  e.source = EventSource::kKernel;
  e.ts_ns = 1'700'000'000'123'000'000;  // 2023-11-14T22:13:20.123Z
  e.key.netns = 4026531840u;
  e.key.laddr = IpAddr::V4(10, 213, 0, 1);
  e.key.raddr = IpAddr::V4(10, 213, 0, 2);
  e.key.lport = 51234;
  e.key.rport = 80;
  e.proc.pid = 5982;
  e.proc.set_comm("curl");
  e.counters = {2048, 10240, 5, 6, 1, 350, 120};
  e.duration_ns = 12'345'678;
  return e;
}

TEST(Json, EscapesWhatJsonRequires) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(JsonString(std::string("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonString(std::string("a\0b", 3)), "\"a\\u0000b\"");
}

TEST(Json, KeepsValidUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(JsonString("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"\\ufffd\\ufffd\"");                        // overlong '/'
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");             // surrogate
  EXPECT_EQ(JsonString("\xe2\x82"), "\"\\ufffd\\ufffd\"");                        // truncated
  EXPECT_EQ(JsonString("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
}

TEST(Json, ObjectWriter) {
  JsonObject o;
  o.Str("s", "x").Int("i", -3).Uint("u", 18446744073709551615ULL).Fixed("f", 1.23456, 3);
  o.Null("n")
      .Bool("b", true)
      .Raw("r", "[1,2]")
      .Fixed("nan", std::numeric_limits<double>::quiet_NaN(), 1);
  EXPECT_EQ(std::move(o).Finish(),
            "{\"s\":\"x\",\"i\":-3,\"u\":18446744073709551615,\"f\":1.235,\"n\":null,"
            "\"b\":true,\"r\":[1,2],\"nan\":null}");
  EXPECT_EQ(JsonObject().Finish(), "{}");
}

TEST(WatchFormat, JsonHasExactlyTheFlowFieldsPlusEventAndSource) {
  EXPECT_EQ(WatchJson(Close80()),
            "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"event\":\"close\",\"pid\":5982,"
            "\"comm\":\"curl\",\"family\":\"ipv4\",\"laddr\":\"10.213.0.1\",\"lport\":51234,"
            "\"raddr\":\"10.213.0.2\",\"rport\":80,\"direction\":\"active\",\"tx_bytes\":2048,"
            "\"rx_bytes\":10240,\"segs_out\":5,\"segs_in\":6,\"retrans\":1,\"rtt_us\":350,"
            "\"rttvar_us\":120,\"duration_ms\":12.346,\"netns\":4026531840,"
            "\"source\":\"kernel\",\"workload\":null}");
}

Workload Nginx() { return testing::SampleUnit(); }
Workload Web() { return testing::SampleContainer(); }

// WORKLOAD is the last column everywhere (its label has spaces); JSON has
// the object.
TEST(WorkloadFormat, WatchFlowsTopAndEndpointsShowTheWorkloadLast) {
  EXPECT_TRUE(WatchHeader().ends_with(" DIR WORKLOAD")) << WatchHeader();
  EXPECT_TRUE(WatchLine(Close80(), Web()).ends_with(" out container web (docker 3f2a1c4d5e6f)"))
      << WatchLine(Close80(), Web());
  EXPECT_TRUE(WatchLine(Close80()).ends_with(" out -")) << WatchLine(Close80());
  EXPECT_NE(WatchJson(Close80(), Nginx())
                .find(R"("workload":{"kind":"unit","runtime":"","id":"nginx.service","name":"",)"
                      R"("unit":"nginx.service","user_unit":false,"pod":null,)"
                      R"("cgroup":"/system.slice/nginx.service"}})"),
            std::string::npos);

  ConnRecord r;
  r.ts_ns = 1'700'000'000'000'000'000;
  r.proc.pid = 120;
  r.proc.set_comm("nginx");
  r.reconstructed = true;
  EXPECT_TRUE(FlowsHeader(0).ends_with(" RTT_US WORKLOAD"));
  EXPECT_TRUE(FlowsLine(r, 0, 0, Nginx()).ends_with(" nginx.service [reconstructed]"))
      << FlowsLine(r, 0, 0, Nginx());
  EXPECT_NE(FlowsJson(r, Web()).find(R"("reconstructed":true,"workload":{"kind":"container",)"
                                     R"("runtime":"docker","id":"3f2a1c4d)"),
            std::string::npos)
      << FlowsJson(r, Web());

  TopRow row;
  row.conn.proc = r.proc;
  row.workload = Nginx();
  EXPECT_TRUE(TopHeader().ends_with(" RTT_US WORKLOAD"));
  EXPECT_TRUE(TopLine(row).ends_with(" nginx.service")) << TopLine(row);
  EXPECT_NE(TopRowJson(row).find(R"("workload":{"kind":"unit")"), std::string::npos);
  RateTracker tracker;
  std::vector<TopRow> rows = tracker.Update({row.conn, row.conn}, {Web(), {}});
  EXPECT_EQ(rows[0].workload, Web());
  EXPECT_TRUE(rows[1].workload.empty());

  EndpointView e;
  e.endpoint.addr = IpAddr::V4(0, 0, 0, 0);
  e.endpoint.port = 80;
  e.process.pid = 120;
  e.process.comm = "nginx";
  e.process.exe = "/usr/sbin/nginx";
  e.process.workload = Nginx();
  EXPECT_TRUE(EndpointsHeader().ends_with(" EXE  WORKLOAD"));
  EXPECT_TRUE(EndpointsLine(e).ends_with("/usr/sbin/nginx  nginx.service")) << EndpointsLine(e);
  EXPECT_NE(EndpointsJson({e}).find(R"("exe":"/usr/sbin/nginx","workload":{"kind":"unit")"),
            std::string::npos);
}

TEST(WorkloadFormat, ControlCharactersInALabelAreNeutralised) {
  Workload w = Web();
  w.name = "we\x1b[2Jb";
  EXPECT_TRUE(WatchLine(Close80(), w).ends_with(" container we?[2Jb (docker 3f2a1c4d5e6f)"))
      << WatchLine(Close80(), w);
}

TEST(WatchFormat, JsonForOpensListenersAndUnknownProcesses) {
  ConnEvent open = Close80();
  open.kind = EventKind::kOpen;
  open.duration_ns = 0;
  open.proc = ProcessRef{};
  std::string j = WatchJson(open);
  EXPECT_NE(j.find("\"event\":\"open\",\"pid\":null,\"comm\":null,"), std::string::npos) << j;
  EXPECT_NE(j.find("\"duration_ms\":null"), std::string::npos) << j;

  ConnEvent listen = Close80();
  listen.kind = EventKind::kListen;
  listen.key.laddr = *IpAddr::Parse("::");
  listen.key.raddr = IpAddr{};
  listen.key.rport = 0;
  j = WatchJson(listen);
  EXPECT_NE(j.find("\"family\":\"ipv6\",\"laddr\":\"::\",\"lport\":51234,\"raddr\":\"::\","
                   "\"rport\":0"),
            std::string::npos)
      << j;
}

TEST(WatchFormat, CommWithQuotesAndEscapesStaysValid) {
  ConnEvent e = Close80();
  e.proc.set_comm("a\"b\\c\x1b[31m");
  EXPECT_NE(WatchJson(e).find("\"comm\":\"a\\\"b\\\\c\\u001b[31m\""), std::string::npos);
  // Text never passes a terminal escape through.
  EXPECT_EQ(WatchLine(e).find('\x1b'), std::string::npos);
  EXPECT_NE(WatchLine(e).find("a\"b\\c?[31m"), std::string::npos);
}

TEST(WatchFormat, TextColumnsLineUpWithTheHeader) {
  std::string header = WatchHeader();
  std::string line = WatchLine(Close80());
  EXPECT_EQ(header.rfind("TIME     EV       PID     COMM            IP LADDR", 0), 0u) << header;
  // Every column starts where its header does (values fit their widths here).
  for (const char* col : {"EV", "PID", "COMM", "IP", "LADDR", "LPORT", "RADDR", "RPORT"}) {
    size_t at = header.find(std::string(" ") + col + " ") + 1;
    EXPECT_NE(line[at], ' ') << col << "\n" << header << "\n" << line;
    EXPECT_EQ(line[at - 1], ' ') << col;
  }
  EXPECT_NE(line.find(" CLOSE    5982    curl            4  10.213.0.1      51234 10.213.0.2"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("    2.00    10.00     12.35 out"), std::string::npos) << line;
}

TEST(WatchFormat, TextForListenersAndOpens) {
  ConnEvent e = Close80();
  e.kind = EventKind::kUnlisten;
  e.key.raddr = IpAddr{};
  e.key.rport = 0;
  std::string line = WatchLine(e);
  EXPECT_NE(line.find("UNLISTEN"), std::string::npos);
  EXPECT_NE(line.find(" *               *    "), std::string::npos) << line;
  EXPECT_EQ(line.back(), '-');
  e = Close80();
  e.kind = EventKind::kOpen;
  e.direction = Direction::kPassive;
  line = WatchLine(e);
  EXPECT_NE(line.find("         - in"), std::string::npos) << line;
}

OpenConnection Conn(uint16_t lport, uint64_t tx, uint64_t rx, int64_t updated_s, uint32_t pid) {
  OpenConnection c;
  c.key.laddr = IpAddr::V4(127, 0, 0, 1);
  c.key.raddr = IpAddr::V4(127, 0, 0, 1);
  c.key.lport = lport;
  c.key.rport = 9000;
  c.proc.pid = pid;
  c.proc.set_comm("srv");
  c.direction = Direction::kPassive;
  c.counters.bytes_tx = tx;
  c.counters.bytes_rx = rx;
  c.counters.rtt_us = lport;
  c.updated_ns = updated_s * 1'000'000'000;
  return c;
}

TEST(TopFormat, RatesComeFromCounterTimestamps) {
  RateTracker t;
  std::vector<TopRow> rows = t.Update({Conn(1, 1000, 0, 10, 1)});
  EXPECT_FALSE(rows[0].tx_rate.has_value()) << "nothing to compare with yet";
  rows = t.Update({Conn(1, 5000, 2048, 12, 1)});
  ASSERT_TRUE(rows[0].tx_rate.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].tx_rate, 2000.0);
  EXPECT_DOUBLE_EQ(*rows[0].rx_rate, 1024.0);
  // A refresh without a new measurement keeps the last rate.
  rows = t.Update({Conn(1, 5000, 2048, 12, 1)});
  EXPECT_DOUBLE_EQ(*rows[0].tx_rate, 2000.0);
  // Counters going backwards: a new connection on the same 4-tuple.
  rows = t.Update({Conn(1, 10, 0, 13, 1)});
  EXPECT_FALSE(rows[0].tx_rate.has_value());
  // Gone, then back: starts over.
  t.Update({});
  EXPECT_FALSE(t.Update({Conn(1, 100, 0, 20, 1)})[0].tx_rate.has_value());
}

TEST(TopFormat, SortsByEachKeyWithStableTies) {
  RateTracker t;
  std::vector<TopRow> rows =
      t.Update({Conn(1, 10, 500, 1, 30), Conn(2, 300, 0, 1, 10), Conn(3, 10, 10, 1, 20)});
  auto order = [&](TopSort by) {
    SortTopRows(&rows, by);
    std::vector<uint16_t> ports;
    for (const TopRow& r : rows) ports.push_back(r.conn.key.lport);
    return ports;
  };
  EXPECT_EQ(order(TopSort::kBytes), (std::vector<uint16_t>{1, 2, 3}));
  EXPECT_EQ(order(TopSort::kTx), (std::vector<uint16_t>{2, 1, 3}));
  EXPECT_EQ(order(TopSort::kRx), (std::vector<uint16_t>{1, 3, 2}));
  EXPECT_EQ(order(TopSort::kPid), (std::vector<uint16_t>{2, 3, 1}));
  EXPECT_EQ(order(TopSort::kRtt), (std::vector<uint16_t>{3, 2, 1}));
  EXPECT_FALSE(ParseTopSort("size").ok());
  EXPECT_EQ(*ParseTopSort("rtt"), TopSort::kRtt);
}

TEST(TopFormat, TextAndJson) {
  RateTracker t;
  t.Update({Conn(8080, 0, 0, 1, 77)});
  std::vector<TopRow> rows = t.Update({Conn(8080, 10240, 2048, 2, 77)});
  std::string line = TopLine(rows[0]);
  EXPECT_EQ(
      line.rfind("77      srv             127.0.0.1       8080  127.0.0.1       9000  in ", 0), 0u)
      << line;
  EXPECT_NE(line.find("10.00     2.00     10.0      2.0"), std::string::npos) << line;
  EXPECT_EQ(TopHeader().rfind("PID     COMM            LADDR", 0), 0u);
  std::string j = TopJson(rows);
  EXPECT_EQ(j.front(), '[');
  EXPECT_EQ(j.back(), ']');
  EXPECT_NE(j.find("\"comm\":\"srv\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"tx_bytes\":10240"), std::string::npos) << j;
  EXPECT_NE(j.find("\"tx_bytes_per_s\":10240.0,\"rx_bytes_per_s\":2048.0"), std::string::npos) << j;
  EXPECT_EQ(TopJson({}), "[]");
  EXPECT_NE(TopTitle(2, 5, TopSort::kRx, 0).find("5 open connections (top 2), sorted by rx"),
            std::string::npos);
}

NodeStatus SampleStatus() {
  NodeStatus s;
  s.node_name = "web-1";
  s.version = "0.1.0";
  s.pid = 42;
  s.started_ns = 1'700'000'000'000'000'000;
  s.probe_mode = "polling";
  s.probe_reason = "fallback from eBPF: Operation not permitted";
  s.netns = "self (4026531840)";
  s.probe.events = 10;
  s.probe.lost = 2;
  s.probe.detail = {{"lost_ringbuf", 2}};
  s.table.open = 3;
  s.first_event_ns = s.started_ns + 12'500'000;
  return s;
}

TEST(StatusFormat, Json) {
  NodeStatus s = SampleStatus();
  std::string j = StatusJson(s, s.started_ns + 3'723'000'000'000);
  for (const char* want :
       {"\"node\":\"web-1\"", "\"probe_mode\":\"polling\"",
        "\"probe_reason\":\"fallback from eBPF: Operation not permitted\"", "\"events\":10",
        "\"lost\":2", "\"malformed\":0", "\"open_connections\":3", "\"uptime_s\":3723",
        "\"started\":\"2023-11-14T22:13:20.000Z\"", "\"first_event_after_ms\":12.500",
        "\"watchers\":0", "\"detail\":{\"lost_ringbuf\":2},\"bpf_maps\":null,\"store\":null,\"mesh\":null}"})
    EXPECT_NE(j.find(want), std::string::npos) << want << " in " << j;
  s.first_event_ns = 0;
  EXPECT_NE(StatusJson(s, s.started_ns).find("\"first_event_after_ms\":null"), std::string::npos);
}

TEST(StatusFormat, Text) {
  NodeStatus s = SampleStatus();
  std::string t = StatusText(s, s.started_ns + 3'723'000'000'000);
  EXPECT_NE(t.find("probe        polling: fallback from eBPF: Operation not permitted\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("uptime       1h2m (since 2023-11-14T22:13:20.000Z)"), std::string::npos) << t;
  EXPECT_NE(t.find("events       10 (first 12ms after start)"), std::string::npos) << t;
  EXPECT_NE(t.find("lost         2  <- see detail"), std::string::npos) << t;
  EXPECT_NE(t.find("  lost_ringbuf               2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("mesh         off (no --cluster-key-file)\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("reconciled"), std::string::npos) << "only once something was: " << t;
}

// The kernel memory of the streaming probe's maps on one line, and a full table with the flag
// that makes room; none of it when polling.
TEST(StatusFormat, BpfMapsMemoryAndFullTables) {
  NodeStatus s = SampleStatus();
  EXPECT_EQ(StatusText(s, s.started_ns).find("bpf maps"), std::string::npos);
  s.probe_mode = "streaming";
  s.probe.bpf_maps = {{"events", 2u << 20, 2u << 20}, {"socks", 900u << 10, 131072},
                      {"listeners", 200u << 10, 16384}};
  s.probe.detail = {{"lost_sockmap", 0}, {"lost_listenmap", 0}};
  std::string t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("bpf maps     3.1 MB locked (events 2.0 MB, socks 900.0 KB, listeners "
                   "200.0 KB)\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("map full"), std::string::npos) << "only once one was: " << t;
  s.probe.detail = {{"lost_sockmap", 24}, {"lost_listenmap", 0}};
  t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("map full     socks full: 24 connections recorded without their process; "
                   "raise --max-connections (now 131072)\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("--max-listeners"), std::string::npos) << t;
  std::string j = StatusJson(s, s.started_ns);
  EXPECT_NE(j.find("\"bpf_maps\":{\"memlock_bytes\":3223552,\"maps\":[{\"name\":\"events\","
                   "\"memlock_bytes\":2097152,\"max_entries\":2097152},"),
            std::string::npos)
      << j;
}

TEST(TerminalText, C0C1AndInvalidUtf8BecomeQuestionMarksValidUtf8Stays) {
  EXPECT_EQ(WithoutTerminalControls("web\x1b[2Jx\x7f"), "web?[2Jx?");
  // 0x9b alone is CSI to some terminals; U+009B (C2 9B) is the same in UTF-8.
  EXPECT_EQ(WithoutTerminalControls("a\x9b" "31mb"), "a?31mb");
  EXPECT_EQ(WithoutTerminalControls("a\xc2\x9b" "31mb"), "a??31mb");
  EXPECT_EQ(WithoutTerminalControls("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\xb3"),
            "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x90\xb3");
  // Overlong, surrogate and truncated sequences are not text.
  EXPECT_EQ(WithoutTerminalControls("\xc0\x80|\xed\xa0\x80|\xe2\x86"), "??|???|??");
  EXPECT_EQ(TerminalSafe(""), "-");
  EXPECT_EQ(TerminalSafe("\xc2\x85"), "??");
}

TEST(StatusFormat, WorkloadsLineSaysOnOrWhyOff) {
  NodeStatus s = SampleStatus();
  EXPECT_EQ(StatusText(s, s.started_ns).find("workloads"), std::string::npos)
      << "a meshd of before says nothing, so neither does meshctl";
  s.workloads = "off: no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup";
  EXPECT_NE(StatusText(s, s.started_ns)
                .find("workloads    off: no cgroup v2 hierarchy at /sys/fs/cgroup/unified or "
                      "/sys/fs/cgroup\n"),
            std::string::npos);
  s.workloads = "on: 6 cgroups named as units or containers, 0 not found";
  EXPECT_NE(StatusJson(s, s.started_ns)
                .find("\"workloads\":\"on: 6 cgroups named as units or containers, 0 not found\""),
            std::string::npos);
}

TEST(StatusFormat, ReconciledClosesAreShown) {
  NodeStatus s = SampleStatus();
  s.table.reconstructed_closes = 25;
  s.table.reconstructed_unlistens = 1;
  s.table.late_closes_dropped = 2;
  std::string t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("reconciled   25 closes and 1 unlistens the probe missed, made up from "
                   "sock_diag\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("  reconstructed_closes       25\n"), std::string::npos) << t;
  EXPECT_NE(t.find("  late_closes_dropped        2\n"), std::string::npos) << t;
  std::string j = StatusJson(s, s.started_ns);
  for (const char* want : {"\"reconstructed_closes\":25", "\"reconstructed_unlistens\":1",
                           "\"late_closes_dropped\":2"})
    EXPECT_NE(j.find(want), std::string::npos) << want << " in " << j;
}

TEST(StatusFormat, Mesh) {
  NodeStatus s = SampleStatus();
  s.mesh = MeshStatus{true, "10.213.0.2:7946", true, 2, 5, 1, 1, 0, 2048, 4096, 3, 7, 2, 9};
  std::string t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("mesh         10.213.0.2:7946, sealed, 2 keys\n"), std::string::npos) << t;
  EXPECT_NE(t.find("peers        5 alive, 1 suspect, 1 dead, 0 left\n"), std::string::npos) << t;
  EXPECT_NE(t.find("look         2 run here (9 queries sent), 7 queries answered for others\n"),
            std::string::npos)
      << t;
  std::string j = StatusJson(s, s.started_ns);
  EXPECT_NE(j.find("\"mesh\":{\"address\":\"10.213.0.2:7946\",\"sealed\":true,\"keys\":2,"
                   "\"alive\":5,\"suspect\":1,\"dead\":1,\"left\":0,\"bytes_in\":2048,"
                   "\"bytes_out\":4096,\"malformed\":3,\"queries_in\":7,\"looks\":2,"
                   "\"look_round_trips\":9,"),
            std::string::npos)
      << j;
  EXPECT_EQ(t.find("unanswered"), std::string::npos) << t;  // none: no line
  EXPECT_NE(t.find("refused      nothing\n"), std::string::npos) << t;
  EXPECT_NE(t.find("flapping     0 suspicions raised here, 0 received about others; 0 "
                   "alive<->suspect flaps, 0 false deaths\n"
                   "             this node refuted 0 suspicions of itself (incarnation raised 0 "
                   "times)\n"),
            std::string::npos)
      << t;
}

// Issue 13: the look's member queries without answers, by reason.
TEST(StatusFormat, LookUnansweredByReason) {
  NodeStatus s = SampleStatus();
  s.mesh = MeshStatus{true, "10.213.0.2:7946", true, 2, 5, 1, 1, 0, 2048, 4096, 3, 7, 2, 9};
  s.mesh.look_unanswered = {{"timeout", 2, "h"}, {"refused", 0, "h"}, {"member_gone", 1, "h"}};
  std::string t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("look         2 run here (9 queries sent), 7 queries answered for others\n"
                   "             unanswered (unreachable nodes): 2 timeout, 1 member_gone\n"),
            std::string::npos)
      << t;
  std::string j = StatusJson(s, s.started_ns);
  EXPECT_NE(j.find("\"look_unanswered\":{\"timeout\":2,\"refused\":0,\"member_gone\":1}"),
            std::string::npos)
      << j;
}

// Drops and refusals: the text lists those that happened with what they mean, JSON has all;
// flapping: the counters, then the members that flapped.
TEST(StatusFormat, MeshRefusalsAndFlapping) {
  NodeStatus s = SampleStatus();
  s.mesh.enabled = true;
  s.mesh.refusals = {{"udp_oversized", 2, "datagrams over the limit"},
                     {"udp_empty", 0, "empty datagrams"},
                     {"decode_field_too_long", 1, "a name over 128 bytes"}};
  s.mesh.suspicions_raised = 1;
  s.mesh.suspicions_received = 4;
  s.mesh.refutations = 3;
  s.mesh.incarnation_bumps = 3;
  s.mesh.flaps = 5;
  s.mesh.false_deaths = 1;
  s.mesh.flapping = {{"app-1", 4, 0}, {"cache-1", 1, 1}};
  std::string t = StatusText(s, s.started_ns);
  EXPECT_NE(t.find("refused      udp_oversized                       2  datagrams over the limit\n"
                   "             decode_field_too_long               1  a name over 128 bytes\n"),
            std::string::npos)
      << t;
  EXPECT_EQ(t.find("udp_empty"), std::string::npos) << t;
  EXPECT_NE(t.find("flapping     1 suspicion raised here, 4 received about others; 5 "
                   "alive<->suspect flaps, 1 false death\n"
                   "             this node refuted 3 suspicions of itself (incarnation raised 3 "
                   "times)\n"
                   "             app-1: 4 flaps, 0 false deaths\n"
                   "             cache-1: 1 flap, 1 false death\n"),
            std::string::npos)
      << t;
  std::string j = StatusJson(s, s.started_ns);
  EXPECT_NE(j.find("\"refusals\":{\"udp_oversized\":2,\"udp_empty\":0,"
                   "\"decode_field_too_long\":1}"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"flapping\":{\"suspicions_raised\":1,\"suspicions_received\":4,"
                   "\"refutations\":3,\"incarnation_bumps\":3,\"false_deaths\":1,\"flaps\":5,"
                   "\"members\":[{\"name\":\"app-1\",\"flaps\":4,\"false_deaths\":0},"
                   "{\"name\":\"cache-1\",\"flaps\":1,\"false_deaths\":1}]}"),
            std::string::npos)
      << j;
}

// `endpoints --all`: listeners keep their columns; a NAT front shows what it
// reaches, whose, and which kind.
TEST(EndpointsFormat, PublishedPortsAndBalancerFrontsWithTheirTargets) {
  EndpointView listener;
  listener.node = "docker-1";
  listener.endpoint.addr = IpAddr::V4(172, 18, 0, 2);
  listener.endpoint.port = 80;
  listener.process = {4656, 0, 4650, 1, "nginx", "/usr/sbin/nginx"};
  EndpointView published = listener;
  published.endpoint.addr = IpAddr::V4(10, 213, 0, 8);
  published.endpoint.port = 9090;
  published.targets = {*Endpoint::Parse("172.18.0.2:80")};
  EndpointView lb;
  lb.node = "lb-1";
  lb.endpoint.addr = IpAddr::V4(10, 213, 0, 9);
  lb.endpoint.port = 8000;
  lb.balancer = true;
  lb.targets = {*Endpoint::Parse("10.213.0.3:8000"), *Endpoint::Parse("10.213.0.4:8000")};
  EXPECT_EQ(EndpointsLine(listener, true),
            "docker-1         172.18.0.2:80          4656    4650    nginx           -          "
            "/usr/sbin/nginx  -");
  EXPECT_EQ(EndpointsLine(published, true),
            "docker-1         10.213.0.8:9090        -> 172.18.0.2:80 ('nginx', pid=4656) published");
  EXPECT_EQ(EndpointsLine(lb, true),
            "lb-1             10.213.0.9:8000        -> 10.213.0.3:8000, 10.213.0.4:8000 balancer");
  EXPECT_EQ(EndpointsLine(lb), "10.213.0.9:8000        -> 10.213.0.3:8000, 10.213.0.4:8000 balancer");

  std::string json = EndpointsJson({listener, published, lb}, true);
  EXPECT_NE(json.find(R"({"node":"docker-1","family":"ipv4","addr":"172.18.0.2","port":80,)"
                      R"("kind":"listen",)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("since":null,"targets":[]})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("port":9090,"kind":"published","netns":null,"pid":4656,)"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("targets":["172.18.0.2:80"]})"), std::string::npos) << json;
  EXPECT_NE(
      json.find(
          R"("kind":"balancer","netns":null,"pid":null,"pgid":null,"comm":null,)"
          R"("exe":null,"workload":null,"since":null,"targets":["10.213.0.3:8000","10.213.0.4:8000"]})"),
      std::string::npos)
      << json;
}

}  // namespace
}  // namespace flowmesh
