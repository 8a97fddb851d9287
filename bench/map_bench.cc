// Map benchmark (issue 16): `meshctl map`'s latency (median, p99) and the
// bytes moved per member per query, at 6 and at 1,000 members. Six real
// stores with synthetic flows answer with the real LocalQuerier::Map; at
// 1,000 members each member replays one of them with its addresses moved to
// its own, encoded with the real wire. LookService::RunMap runs for real (the
// bounded scatter-gather, decode, merge); each reply arrives after a network
// delay drawn as node/mesh/sim draws it (uniform per leg), the member's
// measured answer time and its bytes at 1 Gbit/s.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/look/look_service.h"
#include "node/look/map_wire.h"
#include "node/mesh/scatter_gather.h"
#include "node/store/store.h"

namespace flowmesh {
namespace {

constexpr int kTemplates = 6;
constexpr int kServices = 5;  // per host, each calling two services on the next two hosts
constexpr int64_t kT0 = 1'700'000'040'000'000'000;

IpAddr TemplateAddr(int t) { return *IpAddr::Parse("10.0.0." + std::to_string(t + 1)); }
IpAddr MemberAddr(int m) {
  return *IpAddr::Parse("10.1." + std::to_string(m / 250) + "." + std::to_string(m % 250 + 1));
}

// One template host's store: kServices listeners, each with clients from the
// two hosts before it and dependencies on the two after it, and one
// external dependency.
struct Host {
  std::string dir;
  std::unique_ptr<Store> store;
  std::vector<EndpointRecord> live;
};

// `addr(u)`: the address of template host u as this store's host sees it.
Status Fill(Host& h, int t, const std::function<IpAddr(int)>& addr) {
  Batch b;
  for (int k = 0; k < kServices; k++) {
    uint32_t pid = 100 + k;
    ProcessDetails p;
    p.pid = pid;
    p.start_ticks = pid * 10;
    p.pgid = pid;
    p.comm = "svc" + std::to_string(k);
    p.workload.kind = WorkloadKind::kUnit;
    p.workload.unit = "svc" + std::to_string(k) + ".service";
    p.workload.name = p.workload.unit;
    p.workload.id = p.workload.unit;
    b.processes.push_back(p);
    EndpointRecord l;
    l.netns = 1;
    l.port = static_cast<uint16_t>(8000 + k);
    l.proc.pid = pid;
    l.proc.start_ticks = p.start_ticks;
    l.since_ns = kT0;
    h.live.push_back(l);
    b.endpoints_added.push_back(l);
    auto flow = [&](Direction d, const IpAddr& laddr, uint16_t lport, const IpAddr& raddr,
                    uint16_t rport) {
      FlowDelta f;
      f.bucket_ns = kT0;
      f.key.direction = d;
      f.key.netns = 1;
      f.key.pid = pid;
      f.key.start_ticks = p.start_ticks;
      f.key.laddr = laddr;
      f.key.lport = lport;
      f.key.raddr = raddr;
      f.key.rport = rport;
      f.stats.connections = 10 + k;
      f.stats.closed = f.stats.connections;
      f.stats.bytes_tx = 1000 * (k + 1);
      f.stats.rtt_sum_us = 300;
      f.stats.rtt_samples = 1;
      f.stats.first_seen_ns = kT0 + 1'000'000'000;
      f.stats.last_seen_ns = kT0 + 2'000'000'000;
      b.flows.push_back(f);
    };
    for (int d = 1; d <= 2; d++) {
      const uint16_t to_port = static_cast<uint16_t>(8000 + (k + d) % kServices);
      flow(Direction::kActive, addr(t), 0, addr((t + d) % kTemplates), to_port);
      flow(Direction::kPassive, addr(t), l.port, addr((t - d + kTemplates) % kTemplates), 0);
    }
    flow(Direction::kActive, addr(t), 0, *IpAddr::Parse("203.0.113.9"), 443);
  }
  return h.store->Write(b);
}

Status Open(Host& h, const std::string& dir) {
  h.dir = dir;
  StoreOptions so;
  so.dir = dir;
  so.retention_interval_ns = 0;
  Result<std::unique_ptr<Store>> s = Store::Open(so);
  if (!s.ok()) return s.status();
  h.store = std::move(s).value();
  return Status::Ok();
}

// Template t's addresses as member m sees them: the host `d` after t is m+d.
IpAddr Move(const IpAddr& a, int t, int m, int n) {
  for (int u = 0; u < kTemplates; u++)
    if (a == TemplateAddr(u)) {
      int d = ((u - t + kTemplates + 3) % kTemplates) - 3;  // -3..2
      return MemberAddr(((m + d) % n + n) % n);
    }
  return a;
}

MemberMap Rewrite(MemberMap map, int t, int m, int n) {
  for (MapEntry& e : map.entries) {
    for (ClientEdge& c : e.clients) {
      c.addr = Move(c.addr, t, m, n);
      c.endpoint.addr = Move(c.endpoint.addr, t, m, n);
    }
    for (DependencyEdge& d : e.dependencies) d.remote.addr = Move(d.remote.addr, t, m, n);
  }
  return map;
}

// Delivers replies when they are due, as a network would.
class Wire {
 public:
  Wire() : thread_([this] { Loop(); }) {}
  ~Wire() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void At(int64_t due_ns, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      queue_.push({due_ns, seq_++, std::move(fn)});
    }
    cv_.notify_all();
  }

 private:
  struct Item {
    int64_t due;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Item& o) const { return std::tie(due, seq) > std::tie(o.due, o.seq); }
  };
  void Loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (queue_.empty()) {
        cv_.wait(lock);
        continue;
      }
      int64_t wait = queue_.top().due - MonotonicNs();
      if (wait > 0) {
        cv_.wait_for(lock, std::chrono::nanoseconds(wait));
        continue;
      }
      auto fn = queue_.top().fn;
      queue_.pop();
      lock.unlock();
      fn();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue_;
  uint64_t seq_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

struct Row {
  int members;
  double median_ms, p99_ms, max_ms;
  double bytes_per_member;
  size_t nodes, edges, both_seen;
  int unanswered;
};

Row Measure(const std::string& root, int n, int runs, int concurrency,
            const std::vector<Host>& hosts, const std::vector<MemberMap>& templates,
            const std::vector<int64_t>& answer_ns, int64_t delay_min_ns, int64_t delay_max_ns) {
  // Each member's answer on the wire, and its table as gossip has it.
  std::map<std::string, std::vector<uint8_t>> answers;
  std::map<std::string, int> template_of;
  std::vector<LookMember> members;
  for (int m = 0; m < n; m++) {
    const int t = m % kTemplates;
    LookMember lm;
    lm.name = "m" + std::to_string(m);
    lm.address = MemberAddr(m).ToString() + ":7946";
    lm.state = "alive";
    lm.addresses = {MemberAddr(m)};
    for (const EndpointRecord& l : hosts[t].live) {
      lm.endpoints.push_back({l.addr, l.port});
      ProcessDetails owner;
      owner.pid = l.proc.pid;
      owner.pgid = l.proc.pid;
      lm.owners.push_back(owner);
    }
    members.push_back(lm);
    template_of[lm.address] = t;
    if (m == 0) continue;  // the asking node answers itself from its store
    answers[lm.address] = *EncodeMapAnswer(Rewrite(templates[t], t, m, n));
  }
  // The asking node is m0, answering from a real store of template 0's
  // traffic at m0's addresses.
  Host asker;
  if (Status st = Open(asker, root + "/asker-" + std::to_string(n));
      !st.ok() ||
      !(st = Fill(asker, 0, [n](int u) { return Move(TemplateAddr(u), 0, 0, n); })).ok()) {
    std::fprintf(stderr, "cannot make the asking node's store: %s\n", st.message().c_str());
    std::exit(1);
  }

  Wire wire;
  std::mt19937_64 rng(16);
  std::mutex rng_mu;
  auto leg = [&] {
    std::lock_guard lock(rng_mu);
    return std::uniform_int_distribution<int64_t>(delay_min_ns, delay_max_ns)(rng);
  };
  LookServiceOptions o;
  o.node_name = "m0";
  const Host* self = &asker;
  o.live_endpoints = [self] { return self->live; };
  o.members = [&]() -> Result<std::vector<LookMember>> { return members; };
  o.scatter = [&](std::vector<MemberQuery> queries, int64_t timeout_ns,
                  const std::function<void()>& meanwhile, QueryLimits limits) {
    using Gather = mesh::ScatterGather<std::vector<uint8_t>, std::vector<uint8_t>>;
    std::vector<Gather::Target> targets;
    for (MemberQuery& q : queries) targets.push_back({q.address, std::move(q.bytes)});
    auto send = [&](const std::string& to, std::vector<uint8_t> q, int64_t, Gather::Done done) {
      // The member decodes the query and answers: what it costs there.
      Result<std::optional<MapAsk>> asked = DecodeMapQuery(q);
      const std::vector<uint8_t>& a = answers.at(to);
      const int64_t transfer = static_cast<int64_t>(a.size() * 8);  // ns at 1 Gbit/s
      const int64_t due = MonotonicNs() + leg() + answer_ns[template_of.at(to)] + leg() + transfer;
      wire.At(due, [done, a, ok = asked.ok()] {
        done(ok ? Result<std::vector<uint8_t>>(a)
                : Result<std::vector<uint8_t>>(Unavailable("bad query")));
      });
    };
    return Gather::Run(
        std::move(targets), send, timeout_ns, meanwhile,
        mesh::ScatterLimits{limits.max_in_flight, limits.total_timeout_ns, limits.latency_ns});
  };
  LookService svc(*asker.store, o);
  MapQuery q;
  q.concurrency = concurrency;
  std::vector<double> ms;
  Row row{n, 0, 0, 0, 0, 0, 0, 0, 0};
  uint64_t bytes = 0, answered = 0;
  for (int r = 0; r < runs; r++) {
    const int64_t t0 = MonotonicNs();
    Result<MapResult> result = svc.RunMap(q);
    ms.push_back(static_cast<double>(MonotonicNs() - t0) / 1e6);
    if (!result.ok()) {
      std::fprintf(stderr, "map failed: %s\n", result.status().message().c_str());
      std::exit(1);
    }
    row.nodes = result->graph.nodes.size();
    row.edges = result->graph.edges.size();
    row.both_seen = std::count_if(result->graph.edges.begin(), result->graph.edges.end(),
                                  [](const MapEdge& e) { return e.client_seen && e.server_seen; });
    row.unanswered = 0;
    for (const MapMember& m : result->graph.members) {
      if (!m.answered) row.unanswered++;
      bytes += m.answer_bytes;
      answered += m.answered && m.answer_bytes > 0;
    }
  }
  std::sort(ms.begin(), ms.end());
  row.median_ms = ms[ms.size() / 2];
  row.p99_ms = ms[std::min(ms.size() - 1, static_cast<size_t>(ms.size() * 0.99))];
  row.max_ms = ms.back();
  // Query bytes (tiny) plus the answer, per member asked.
  const double query_bytes =
      static_cast<double>(EncodeMapQuery(TimeWindow{}, GroupBy::kWorkload)->size());
  row.bytes_per_member = answered ? static_cast<double>(bytes) / answered + query_bytes : 0;
  return row;
}

}  // namespace
}  // namespace flowmesh

int main(int argc, char** argv) {
  using namespace flowmesh;
  CLI::App app{"map latency and bytes per member at 6 and 1,000 members"};
  int runs_small = 50, runs_large = 20, concurrency = 64;
  double delay_min_ms = 0.2, delay_max_ms = 2.0;
  std::vector<int> sizes{6, 1000};
  app.add_option("--sizes", sizes, "member counts");
  app.add_option("--runs-small", runs_small, "maps per size under 100 members");
  app.add_option("--runs-large", runs_large, "maps per size of 100 members or more");
  app.add_option("--concurrency", concurrency, "member queries in flight (meshctl map's default)");
  app.add_option("--delay-min-ms", delay_min_ms, "one-way delay, uniform from");
  app.add_option("--delay-max-ms", delay_max_ms, "one-way delay, uniform to");
  CLI11_PARSE(app, argc, argv);
  log::SetLevel(log::Level::Warn);

  std::string root = std::filesystem::temp_directory_path() / "flowmesh_map_bench_XXXXXX";
  if (mkdtemp(root.data()) == nullptr) return 1;
  std::vector<Host> hosts(kTemplates);
  std::vector<MemberMap> templates;
  std::vector<int64_t> answer_ns;
  for (int t = 0; t < kTemplates; t++) {
    Host& h = hosts[t];
    if (Status st = Open(h, root + "/h" + std::to_string(t)); !st.ok()) {
      std::fprintf(stderr, "cannot open a store in %s: %s\n", h.dir.c_str(), st.message().c_str());
      return 1;
    }
    if (Status st = Fill(h, t, TemplateAddr); !st.ok()) {
      std::fprintf(stderr, "cannot fill the store: %s\n", st.message().c_str());
      return 1;
    }
    const std::vector<EndpointRecord> live = h.live;
    LocalQuerier q(*h.store, [live] { return live; });
    // The member's answer time: its own Map and encode, measured (median of 21).
    std::vector<int64_t> took;
    Result<MemberMap> map = MemberMap{};
    for (int i = 0; i < 21; i++) {
      int64_t t0 = MonotonicNs();
      map = q.Map(TimeWindow{}, GroupBy::kWorkload);
      (void)EncodeMapAnswer(map);
      took.push_back(MonotonicNs() - t0);
    }
    std::sort(took.begin(), took.end());
    answer_ns.push_back(took[took.size() / 2]);
    templates.push_back(*map);
  }
  std::printf("member answer (real LocalQuerier::Map + encode, median): %.3f ms; %zu entries\n",
              static_cast<double>(answer_ns[0]) / 1e6, templates[0].entries.size());
  std::printf("network: one-way delay uniform %.1f-%.1f ms per leg, 1 Gbit/s; %d in flight\n\n",
              delay_min_ms, delay_max_ms, concurrency);
  std::printf("%8s %6s %11s %9s %9s %14s %7s %7s %10s %10s\n", "members", "runs", "median_ms",
              "p99_ms", "max_ms", "bytes/member", "nodes", "edges", "both_ends", "unanswered");
  bool slow = false;
  for (int n : sizes) {
    int runs = n < 100 ? runs_small : runs_large;
    Row r =
        Measure(root, n, runs, concurrency, hosts, templates, answer_ns,
                static_cast<int64_t>(delay_min_ms * 1e6), static_cast<int64_t>(delay_max_ms * 1e6));
    std::printf("%8d %6d %11.1f %9.1f %9.1f %14.0f %7zu %7zu %10zu %10d\n", r.members, runs,
                r.median_ms, r.p99_ms, r.max_ms, r.bytes_per_member, r.nodes, r.edges, r.both_seen,
                r.unanswered);
    if (n >= 1000 && r.p99_ms > 2000) slow = true;
  }
  std::filesystem::remove_all(root);
  if (slow) std::printf("\nover the target: a 1,000-member map in under 2 s\n");
  return slow ? 2 : 0;
}
