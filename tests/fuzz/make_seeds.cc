// Writes the seed corpora of tests/fuzz from real messages: each is made by
// the project's own encoders (mesh packets and exchanges, sealed as meshd
// seals them; look queries and answers; control requests and replies), read
// from the kernel (a sock_diag dump of this host's loopback sockets; the
// conntrack messages captured in tests/unit/testdata) or taken
// from the repository (packaging/meshd.toml). Each file is laid out as its
// harness reads it (the header comment of <name>_fuzz.cc).
//
//   fuzz_make_seeds SOURCE_DIR OUT_DIR   (scripts/fuzz.sh --seeds runs it)
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "node/control/convert.h"
#include "node/look/look_wire.h"
#include "node/look/map_wire.h"
#include "node/mesh/seal.h"
#include "node/mesh/wire.h"
#include "tests/fuzz/fuzz_mesh.h"
#include "tests/tools/conntrack_messages.h"

namespace flowmesh::fuzz {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

fs::path out_dir;

void Write(const std::string& harness, const std::string& name, const Bytes& bytes) {
  fs::create_directories(out_dir / harness);
  std::ofstream f(out_dir / harness / name, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + (out_dir / harness / name).string());
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) throw std::runtime_error(std::string(what) + ": " + r.status().ToString());
  return std::move(*r);
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }
void PutLe(Bytes& out, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; i++) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// ---- mesh ----------------------------------------------------------------

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

mesh::TableDeltaMsg Delta() {
  mesh::TableDeltaMsg d;
  d.owner = "n2";
  d.generation = 1;
  d.from_version = 0;
  d.to_version = 3;
  d.reset = true;
  mesh::TableEntryMsg address;
  address.version = 1;
  address.is_address = true;
  address.addr = Ip("10.0.0.2");
  mesh::TableEntryMsg listener;
  listener.version = 2;
  listener.addr = Ip("10.0.0.2");
  listener.port = 5432;
  listener.pid = 812;
  listener.pgid = 812;
  listener.comm = "postgres";
  listener.exe = "/usr/lib/postgresql/15/bin/postgres";
  mesh::TableEntryMsg gone = listener;
  gone.version = 3;
  gone.port = 6379;
  gone.deleted = true;
  d.entries = {address, listener, gone};
  return d;
}

std::vector<mesh::MemberEntryMsg> Members() {
  mesh::MemberEntryMsg a{"n1", "10.0.0.1:7946", "id-n1", 1, 0, mesh::MemberState::kAlive, 1, 2};
  mesh::MemberEntryMsg b{"n2", "10.0.0.2:7946", "id-n2", 1, 3, mesh::MemberState::kAlive, 1, 3};
  mesh::MemberEntryMsg c{"n3", "10.0.0.3:7946", "id-n3", 2, 1, mesh::MemberState::kSuspect, 0, 0};
  mesh::MemberEntryMsg d{"n4", "10.0.0.4:7946", "id-n4", 1, 5, mesh::MemberState::kDead, 0, 0};
  return {a, b, c, d};
}

Bytes Packet(const mesh::PrimaryMsg& primary, const std::vector<mesh::GossipMsg>& gossip) {
  std::vector<mesh::EncodedGossip> encoded;
  for (const mesh::GossipMsg& g : gossip) encoded.push_back(mesh::EncodeGossip(g));
  std::vector<const mesh::EncodedGossip*> ptrs;
  for (const mesh::EncodedGossip& e : encoded) ptrs.push_back(&e);
  return Must(mesh::EncodePacket(primary, ptrs), "mesh packet");
}

// The packets, requests and responses of a mesh at work.
struct MeshMessages {
  std::vector<std::pair<std::string, Bytes>> packets, requests, responses;
};

MeshMessages RealMeshMessages() {
  MeshMessages m;
  mesh::AliveMsg alive{"n2", "10.0.0.2:7946", "id-n2", 1, 3};
  mesh::SuspectMsg suspect{"n3", 2, 1, "n2"};
  mesh::DeadMsg dead{"n4", 1, 5, "n2"};
  mesh::DeadMsg left{"n5", 1, 0, "n5"};
  m.packets = {
      {"ping", Packet(mesh::PingMsg{7, "n1"}, {alive, suspect})},
      {"ack", Packet(mesh::AckMsg{7}, {dead, left})},
      {"nack", Packet(mesh::NackMsg{8}, {})},
      {"ping_req", Packet(mesh::PingReqMsg{9, "n3", "10.0.0.3:7946", true}, {alive})},
      {"table_notice", Packet(std::monostate{}, {Delta()})},
      {"table_request", Packet(mesh::TableRequestMsg{{{"n2", 1, 3}}}, {})},
      {"table_reply", Packet(mesh::TableReplyMsg{{Delta()}}, {})},
  };
  mesh::PushPullMsg join{true, Members(), {Delta()}};
  mesh::PushPullMsg sync{false, Members(), {Delta()}};
  m.requests = {
      {"join", Must(mesh::EncodeExchangeRequest(join), "join")},
      {"push_pull", Must(mesh::EncodeExchangeRequest(sync), "push-pull")},
      {"fallback_ping", Must(mesh::EncodeExchangeRequest(mesh::PingMsg{11, "n1"}), "ping")},
      {"table_push", Must(mesh::EncodeExchangeRequest(mesh::TablePushMsg{{Delta()}}), "push")},
      {"query", Must(mesh::EncodeExchangeRequest(mesh::QueryMsg{Text("look?")}), "query")},
      {"keys_install",
       Must(mesh::EncodeExchangeRequest(mesh::KeyRequestMsg{
                mesh::KeyOp::kInstall, TestKeyring().keys().front(), "n1"}),
            "key request")},
      {"keys_list", Must(mesh::EncodeExchangeRequest(mesh::KeyRequestMsg{mesh::KeyOp::kList, {}, "n1"}),
                         "key request")},
  };
  m.responses = {
      {"push_pull", Must(mesh::EncodeExchangeResponse(sync), "push-pull answer")},
      {"ack", Must(mesh::EncodeExchangeResponse(mesh::AckMsg{11}), "ack")},
      {"done", Must(mesh::EncodeExchangeResponse(mesh::DoneMsg{}), "done")},
      {"query", Must(mesh::EncodeExchangeResponse(mesh::QueryMsg{Text("answer")}), "answer")},
      {"keys", Must(mesh::EncodeExchangeResponse(mesh::KeyResponseMsg{"", {"1a2b3c4d", "99887766"}}),
                    "key answer")},
      {"keys_error",
       Must(mesh::EncodeExchangeResponse(mesh::KeyResponseMsg{"cannot remove the primary key", {}}),
            "key answer")},
  };
  return m;
}

// mesh_gossip: [op][length 2][bytes] steps.
Bytes Step(uint8_t op, const Bytes& bytes) {
  Bytes out{op};
  PutLe(out, bytes.size(), 2);
  out.insert(out.end(), bytes.begin(), bytes.end());
  return out;
}

void MeshGossipSeeds(const MeshMessages& m) {
  for (const auto& [name, bytes] : m.packets)
    Write("mesh_gossip", "packet_" + name, Step(0, bytes));
  for (const auto& [name, bytes] : m.requests)
    Write("mesh_gossip", "request_" + name, Step(1, bytes));
  // The join answered, then time for the protocols to probe and sync, and
  // the push-pull they start answered too.
  const Bytes& answer = m.responses.front().second;
  Write("mesh_gossip", "joined_then_synced",
        Cat({Step(2, answer), Step(3, {200}), Step(0, m.packets[0].second), Step(3, {255}),
             Step(2, answer), Step(2, m.responses[1].second)}));
}

// mesh_stream: [mode][body], see mesh_stream_fuzz.cc.
void MeshStreamSeeds(const MeshMessages& m) {
  const mesh::Keyring keyring = TestKeyring();
  mesh::Sealer sealer(keyring, kTestLabel);
  auto header = [](uint8_t kind, uint64_t id, uint32_t seq) {
    Bytes h{kind};
    PutLe(h, static_cast<uint64_t>(kTestWallNs), 8);
    PutLe(h, id, 8);
    PutLe(h, seq, 4);
    return h;
  };
  auto framed = [](const Bytes& body) {
    Bytes out;
    PutLe(out, body.size(), 4);
    return Cat({out, body});
  };
  struct Dir {
    int direction;
    uint8_t kind;
    uint32_t seq;
    const std::vector<std::pair<std::string, Bytes>>* messages;
  };
  const Dir dirs[] = {{0, 1, 0, &m.packets}, {1, 2, 0, &m.requests}, {2, 3, 1, &m.responses}};
  const char* names[] = {"packet_", "request_", "response_"};
  for (const Dir& d : dirs) {
    for (const auto& [name, payload] : *d.messages) {
      std::string base = names[d.direction] + name;
      // Raw off the wire: sealed as a peer seals it (the response's id cannot
      // match a request made at run time: it exercises the refusal).
      Bytes sealed = Must(sealer.Seal(Cat({header(d.kind, 42, d.seq), payload})), "seal");
      if (d.direction == 1) {
        // A request is [sealed head][sealed body]: the head names the body's
        // id and length (kind 4, sealed_transport.h).
        Bytes length;
        PutLe(length, sealed.size(), 4);
        Bytes head = Must(sealer.Seal(Cat({header(4, 42, 0), length})), "seal head");
        sealed = Cat({head, sealed});
      }
      Write("mesh_stream", base + "_wire",
            Cat({{static_cast<uint8_t>(d.direction)}, d.direction ? framed(sealed) : sealed}));
      // Sealed by the harness: the whole plaintext, header included.
      Write("mesh_stream", base + "_plain",
            Cat({{static_cast<uint8_t>(3 + d.direction)}, header(d.kind, 42, d.seq), payload}));
      // Behind a good header: no skew, the request's own id.
      Write("mesh_stream", base + "_payload",
            Cat({{static_cast<uint8_t>(6 + d.direction), 0, 0}, payload}));
    }
  }
}

// ---- look queries --------------------------------------------------------

ProcessDetails Proc(uint32_t pid, const char* comm, const char* exe) {
  ProcessDetails p;
  p.pid = pid;
  p.start_ticks = 123456;
  p.pgid = pid;
  p.ppid = 1;
  p.comm = comm;
  p.exe = exe;
  return p;
}

FlowStats Stats() {
  FlowStats s;
  s.connections = 12;
  s.bytes_tx = 4096;
  s.bytes_rx = 1 << 20;
  s.segs_out = 40;
  s.segs_in = 800;
  s.retrans = 1;
  s.rtt_samples = 12;
  s.rtt_max_us = 900;
  s.last_seen_ns = kTestWallNs;
  return s;
}

void QueryWireSeeds() {
  Endpoint pg{Ip("10.0.0.2"), 5432};
  QueryBatch batch;
  batch.window = {kTestWallNs - 3'600'000'000'000, kTestWallNs};
  LookQuestion describe{LookQuestion::Kind::kDescribe, {}, pg, {}};
  LookQuestion clients{LookQuestion::Kind::kClients, {}, pg, Ip("10.0.0.1")};
  LookQuestion active{LookQuestion::Kind::kActive, {}, {}, Ip("fd00::2")};
  batch.questions = {describe, clients, active};
  Write("query_wire", "look_query", Cat({{0}, Must(EncodeQuery(batch), "query")}));

  LookAnswer a_describe;
  a_describe.description.found = true;
  a_describe.description.endpoint = pg;
  a_describe.description.process = Proc(812, "postgres", "/usr/lib/postgresql/15/bin/postgres");
  a_describe.description.clients = {{Ip("10.0.0.1"), Stats(), pg}};
  a_describe.description.dependencies = {{{Ip("10.0.0.9"), 443}, Stats()}};
  LookAnswer a_clients;
  ClientProcess api;  // by field: ClientProcess grew balancer and via (issue 14)
  api.process = Proc(77, "api", "/srv/api");
  api.stats = Stats();
  api.endpoints = {{Ip("10.0.0.1"), 8080}};
  api.clients = {{Ip("10.0.0.5"), Stats(), {Ip("10.0.0.1"), 8080}}};
  a_clients.clients = {api};
  LookAnswer a_active;
  a_active.active = {{Proc(90, "worker", "/srv/worker"), Stats(), {{pg, Stats()}}}};
  LookAnswer unreachable;
  unreachable.status = Unavailable("n3 did not answer within 2s");
  // [mode 1][asked: 3 questions, describe, clients, active][answers]
  const uint8_t asked = 3 | (0 << 2) | (1 << 4) | (2 << 6);
  Write("query_wire", "look_answers",
        Cat({{1, asked}, Must(EncodeAnswers({a_describe, a_clients, a_active}), "answers")}));
  Write("query_wire", "look_answer_unreachable",
        Cat({{1, 1}, Must(EncodeAnswers({unreachable}), "answers")}));

  // The map (issue 16): [mode 2][query], [mode 3][a member's answer].
  Write("query_wire", "map_query",
        Cat({{2}, Must(EncodeMapQuery(batch.window, GroupBy::kWorkload), "map query")}));
  MemberMap map;
  MapEntry server;
  server.process = Proc(812, "postgres", "/usr/lib/postgresql/15/bin/postgres");
  server.stats = Stats();
  server.endpoints = {pg};
  server.clients = {{Ip("10.0.0.1"), Stats(), pg}};
  server.dependencies = {{{Ip("10.0.0.9"), 443}, Stats(), {Ip("10.96.0.1"), 443}}};
  MapEntry lb;
  lb.balancer = true;
  lb.endpoints = {{Ip("10.0.0.20"), 80}};
  lb.dependencies = {{pg, Stats()}};
  map.entries = {server, lb};
  Write("query_wire", "map_answer", Cat({{3}, Must(EncodeMapAnswer(map), "map answer")}));
  Write("query_wire", "map_answer_error",
        Cat({{3}, Must(EncodeMapAnswer(Result<MemberMap>(Unavailable("refused: busy"))),
                       "map answer")}));
}

// ---- control socket ------------------------------------------------------

ConnKey Key(const char* l, uint16_t lport, const char* r, uint16_t rport) {
  ConnKey k;
  k.netns = 4026531840u;
  k.laddr = Ip(l);
  k.lport = lport;
  k.raddr = Ip(r);
  k.rport = rport;
  return k;
}

ProcessRef Ref(uint32_t pid, const char* comm) {
  ProcessRef p;
  p.pid = pid;
  p.start_ticks = 4242;
  p.pgid = pid;
  p.set_comm(comm);
  return p;
}

void ControlSeeds() {
  WatchFilter filter;
  filter.pid = 812;
  filter.lports = {5432};
  filter.rports = {443, 8080};
  std::deque<std::pair<std::string, ControlRequest>> requests;  // add() keeps pointers
  auto add = [&](const char* name, RequestKind kind) {
    ControlRequest r;
    r.kind = kind;
    requests.push_back({name, r});
    return &requests.back().second;
  };
  add("status", RequestKind::kStatus);
  add("connections", RequestKind::kConnections)->filter = filter;
  add("watch", RequestKind::kWatch)->filter = filter;
  ControlRequest* flows = add("flows", RequestKind::kFlows);
  flows->filter = filter;
  flows->window = {kTestWallNs - 60'000'000'000, kTestWallNs};
  flows->limit = 1000;
  add("endpoints", RequestKind::kEndpoints);
  ControlRequest* look = add("look", RequestKind::kLook);
  look->look.target = {Ip("10.0.0.2"), 5432};
  look->look.direction = LookDirection::kIn;
  look->look.depth = 4;
  add("peers", RequestKind::kPeers);
  add("mesh_endpoints", RequestKind::kMeshEndpoints);
  ControlRequest* keys = add("keys_install", RequestKind::kKeys);
  keys->key_op = KeyOp::kInstall;
  keys->key = mesh::EncodeKey(TestKeyring().keys().front());
  for (const auto& [name, r] : requests)
    Write("control_frame", "request_" + name, Cat({{0}, Must(EncodeRequest(r), "request")}));
  // A request that arrives a few bytes at a time.
  Write("control_frame", "request_look_trickled",
        Cat({{static_cast<uint8_t>(3 << 1)}, Must(EncodeRequest(*look), "request")}));

  NodeStatus status;
  status.node_name = "n1";
  status.version = "0.1.0";
  status.pid = 4242;
  status.probe_mode = "streaming";
  status.netns = "all";
  OpenConnection conn;
  conn.key = Key("10.0.0.1", 43210, "10.0.0.2", 5432);
  conn.direction = Direction::kActive;
  conn.proc = Ref(77, "api");
  ConnEvent event;
  event.kind = EventKind::kClose;
  event.direction = Direction::kActive;
  event.key = conn.key;
  event.proc = conn.proc;
  ConnRecord record;
  record.ts_ns = kTestWallNs;
  record.key = conn.key;
  record.direction = Direction::kActive;
  record.proc = conn.proc;
  record.duration_ns = 1'500'000'000;
  EndpointView endpoint;
  endpoint.endpoint.addr = Ip("10.0.0.2");
  endpoint.endpoint.port = 5432;
  endpoint.endpoint.proc = Ref(812, "postgres");
  endpoint.process = Proc(812, "postgres", "/usr/lib/postgresql/15/bin/postgres");
  endpoint.node = "n2";
  LookNode root;
  root.host = "n2";
  root.addr = Ip("10.0.0.2");
  root.port = 5432;
  root.process = endpoint.process;
  LookNode client;
  client.host = "n1";
  client.addr = Ip("10.0.0.1");
  client.process = Proc(77, "api", "/srv/api");
  client.stats = Stats();
  LookNode unknown;
  unknown.addr = Ip("192.0.2.7");
  unknown.status = LookStatus::kNoAgent;
  client.clients = {unknown};
  root.clients = {client};
  PeerView peer{"n2", "10.0.0.2:7946", "alive", 3, 12, kTestWallNs, 1, "id-n2"};
  NodeKeys node_keys{"n1", "", {{"a1b2c3d4", true}, {"99887766", false}}};

  std::vector<std::pair<std::string, Bytes>> responses = {
      {"error", Must(EncodeErrorResponse("no such process"), "error")},
      {"status", Must(EncodeStatusResponse(status), "status")},
      {"connections", Must(EncodeConnectionsResponse({conn, conn}), "connections")},
      {"endpoints", Must(EncodeEndpointsResponse({endpoint}), "endpoints")},
      {"look", Must(EncodeLookResponse(root), "look")},
      {"peers", Must(EncodePeersResponse({peer}), "peers")},
      {"keys", Must(EncodeKeysResponse({node_keys}), "keys")},
  };
  for (const auto& [name, bytes] : responses)
    Write("control_frame", "response_" + name, Cat({{1}, bytes}));
  // Streams: watch events and a drop notice; a flows scan in two batches.
  Write("control_frame", "response_watch_stream",
        Cat({{1},
             Must(EncodeEventResponse(event), "event"),
             Must(EncodeDroppedResponse(3), "drop"),
             Must(EncodeEventResponse(event), "event")}));
  Write("control_frame", "response_flows_stream",
        Cat({{1},
             Must(EncodeRecordsResponse({record, record}, false, false), "records"),
             Must(EncodeRecordsResponse({record}, true, true), "records")}));
}

// ---- sock_diag -----------------------------------------------------------

bool Loopback(const inet_diag_msg& m) {
  const auto* src = reinterpret_cast<const uint8_t*>(m.id.idiag_src);
  if (m.idiag_family == AF_INET) return src[0] == 127;
  static const uint8_t kLo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(src, kLo6, 16) == 0;
}

// A real dump of this host's TCP sockets of `family`, as SockDiag requests it
// (with a listener and a connection of our own on loopback so there is
// something), cut down to the loopback sockets so no host's addresses end up
// in the repository.
void SockDiagSeeds(uint16_t family) {
  int listener = socket(family, SOCK_STREAM, 0);
  sockaddr_storage ss{};
  socklen_t len;
  if (family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  int client = socket(family, SOCK_STREAM, 0);
  if (bind(listener, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(listener, 4) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len) != 0 ||
      connect(client, reinterpret_cast<sockaddr*>(&ss), len) != 0)
    throw std::runtime_error("cannot make a loopback connection for the sock_diag seed");
  int server = accept(listener, nullptr, nullptr);

  mnl_socket* nl = mnl_socket_open(NETLINK_SOCK_DIAG);
  if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
    throw std::runtime_error("cannot open NETLINK_SOCK_DIAG");
  char req_buf[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(inet_diag_req_v2))] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(req_buf);
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = 1;
  auto* req =
      static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
  req->sdiag_family = static_cast<uint8_t>(family);
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = ~0u;
  req->idiag_ext = 1 << (INET_DIAG_INFO - 1);
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) throw std::runtime_error("sock_diag send");

  Bytes kept;
  std::vector<char> buf(64 * 1024);
  for (bool done = false; !done;) {
    ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
    if (n <= 0) throw std::runtime_error("sock_diag receive");
    int left = static_cast<int>(n);
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, left);
         m = mnl_nlmsg_next(m, &left)) {
      bool keep = m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR;
      done = done || keep;
      if (m->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
          m->nlmsg_len >= NLMSG_HDRLEN + sizeof(inet_diag_msg))
        keep = Loopback(*static_cast<const inet_diag_msg*>(mnl_nlmsg_get_payload(m)));
      if (keep)
        kept.insert(kept.end(), reinterpret_cast<const uint8_t*>(m),
                    reinterpret_cast<const uint8_t*>(m) + NLMSG_ALIGN(m->nlmsg_len));
    }
  }
  mnl_socket_close(nl);
  close(server);
  close(client);
  close(listener);
  Write("sock_diag", family == AF_INET ? "dump_ipv4_loopback" : "dump_ipv6_loopback", kept);
}

// ---- config file and metrics HTTP ----------------------------------------

std::string ReadText(const fs::path& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  if (!f) throw std::runtime_error("cannot read " + path.string());
  return s.str();
}

void ConfigSeeds(const fs::path& source) {
  std::string shipped = ReadText(source / "packaging/meshd.toml");
  Write("config_file", "packaging_meshd_toml", Text(shipped));
  // The same file with every key set: its commented-out `# key = value` lines.
  std::istringstream in(shipped);
  std::string line, every;
  while (std::getline(in, line)) {
    if (line.rfind("# ", 0) == 0 && line.find(" = ") != std::string::npos &&
        line.find(' ', 2) == line.find(" = "))
      line = line.substr(2);
    every += line + "\n";
  }
  Write("config_file", "every_key_set", Text(every));
}

void MetricsHttpSeeds() {
  const std::pair<const char*, std::string> heads[] = {
      {"get",
       "GET /metrics HTTP/1.1\r\nHost: 10.0.0.1:9090\r\nUser-Agent: Prometheus/2.45.0\r\n"
       "Accept: text/plain;version=0.0.4\r\n\r\n"},
      {"head", "HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"},
      {"post", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"},
      {"not_found", "GET / HTTP/1.1\r\n\r\n"},
      {"bare_lf", "GET /metrics HTTP/1.1\nHost: x\n\n"},
      {"http2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
  };
  for (const auto& [name, head] : heads) Write("metrics_http", name, Cat({{0}, Text(head)}));
  Write("metrics_http", "get_trickled", Cat({{5}, Text(heads[0].second)}));
}

// ---- conntrack -------------------------------------------------------------

// The messages captured from a real kernel (tests/tools/conntrack_capture.sh)
// one per seed, and the dump reply with an event after it as one datagram.
void ConntrackSeeds(const fs::path& source) {
  auto messages =
      flowmesh::testing::ReadConntrackMessages(source / "tests/unit/testdata/conntrack_messages.txt");
  if (messages.empty())
    throw std::runtime_error("cannot read tests/unit/testdata/conntrack_messages.txt");
  for (const auto& [name, bytes] : messages) Write("conntrack", name, bytes);
  if (messages.count("dump_v4_dnat") && messages.count("destroy_v6_dnat"))
    Write("conntrack", "datagram_of_two",
          Cat({messages["dump_v4_dnat"], messages["destroy_v6_dnat"]}));
}

// ---- cgroup_path ---------------------------------------------------------
// Every path of the parser's testdata, real and malformed alike.
void CgroupPathSeeds(const fs::path& source) {
  std::ifstream in(source / "tests/unit/testdata/cgroup_paths.tsv");
  if (!in) throw std::runtime_error("cannot read tests/unit/testdata/cgroup_paths.tsv");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::string path = line.substr(0, line.find('\t'));
    Write("cgroup_path", "path_" + std::to_string(n++), Bytes(path.begin(), path.end()));
  }
}

}  // namespace
}  // namespace flowmesh::fuzz

int main(int argc, char** argv) {
  using namespace flowmesh::fuzz;
  if (argc != 3) {
    std::cerr << "usage: fuzz_make_seeds SOURCE_DIR OUT_DIR\n";
    return 2;
  }
  try {
    out_dir = argv[2];
    MeshMessages mesh = RealMeshMessages();
    MeshGossipSeeds(mesh);
    MeshStreamSeeds(mesh);
    QueryWireSeeds();
    ControlSeeds();
    SockDiagSeeds(AF_INET);
    SockDiagSeeds(AF_INET6);
    ConfigSeeds(argv[1]);
    MetricsHttpSeeds();
    ConntrackSeeds(argv[1]);
    CgroupPathSeeds(argv[1]);
  } catch (const std::exception& e) {
    std::cerr << "fuzz_make_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
