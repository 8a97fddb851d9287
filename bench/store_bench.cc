// Store benchmark: ingests N connection records with realistic churn in
// flush-sized batches, compacts, and times the two queries meshctl makes of
// a node's history: the records of a 1-minute window (`flows --since`) and
// an endpoint's flows over the last hour (what `look` asks a node).
#include <stdlib.h>
#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/store/store.h"

namespace flowmesh {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kSec = 1'000'000'000;

struct Options {
  uint64_t records = 10'000'000;
  double rate = 2000;  // closes per second of virtual time
  double flush_s = 1;  // virtual seconds per batch (meshd's --flush-interval)
  int reps = 50;
  std::string dir;
  bool keep = false;
  bool queries_only = false;  // reuse a store a previous run kept (--dir D --keep)
  uint64_t memory_mb = StoreOptions{}.memory_bytes >> 20;  // meshd's --store-memory
};

struct Proc {
  uint32_t pid;
  uint64_t start_ticks;
  std::string comm;
  uint64_t cgroup_id;        // one cgroup per service (comm), as units and containers give
  std::vector<int> remotes;  // indices into the remote endpoints it talks to
};

struct Listener {
  IpAddr addr;
  uint16_t port;
  int owner;  // index into procs
};

// A node with a few hundred processes: ~40 of them serve, the rest are
// clients of ~2000 remote endpoints; ~3000 remote hosts connect in.
class Workload {
 public:
  explicit Workload(double rate) : rate_(rate), rng_(12345) {
    const char* comms[] = {"nginx", "python3", "java", "node",     "curl",     "redis-cli",
                           "psql",  "envoy",   "sshd", "postgres", "gunicorn", "ruby"};
    for (int i = 0; i < 300; ++i)
      procs_.push_back({static_cast<uint32_t>(1000 + i * 7),
                        50'000 + rng_() % 1'000'000,
                        comms[i % 12],
                        2000u + i % 12,
                        {}});
    const uint16_t ports[] = {80, 443, 5432, 6379, 8080, 9000, 3306, 9092, 11211, 27017};
    for (int i = 0; i < 2000; ++i)
      remotes_.push_back(
          {IpAddr::V4(10, static_cast<uint8_t>(100 + i / 250), static_cast<uint8_t>(i % 250), 10),
           ports[i % 10], -1});
    for (int i = 0; i < 40; ++i)
      listeners_.push_back({IpAddr::V4(10, 213, 0, 1), static_cast<uint16_t>(8000 + i), i});
    for (int i = 40; i < 300; ++i)  // each client process has its own few dependencies
      for (int k = 0; k < 8; ++k) procs_[i].remotes.push_back(static_cast<int>(rng_() % 2000));
    for (int i = 0; i < 3000; ++i) {
      clients_.push_back(
          IpAddr::V4(10, static_cast<uint8_t>(50 + i / 250), static_cast<uint8_t>(i % 250), 20));
      // A remote host uses one or two of our services, busy ones more often.
      client_listeners_.push_back({static_cast<int>(Skewed(40)), static_cast<int>(Skewed(40))});
    }
  }

  const std::vector<Proc>& procs() const { return procs_; }
  const std::vector<Listener>& listeners() const { return listeners_; }

  // The next `flush` seconds of closes, and the flow deltas the aggregator
  // would make of them.
  Batch Next(double flush_s, uint64_t max_records) {
    Batch b;
    const int64_t end = now_ + static_cast<int64_t>(flush_s * kSec);
    std::exponential_distribution<double> gap(rate_);
    std::unordered_map<FlowKey, std::pair<int64_t, FlowStats>, FlowKeyHash> deltas;
    while (b.records.size() < max_records) {
      now_ += std::max<int64_t>(1, static_cast<int64_t>(gap(rng_) * kSec));
      if (now_ >= end) break;
      ConnRecord r = Record();
      FlowKey k;
      k.direction = r.direction;
      k.netns = r.key.netns;
      k.pid = r.proc.pid;
      k.start_ticks = r.proc.start_ticks;
      k.laddr = r.key.laddr;
      k.raddr = r.key.raddr;
      if (r.direction == Direction::kPassive)
        k.lport = r.key.lport;
      else
        k.rport = r.key.rport;
      FlowStats s{.connections = 1,
                  .bytes_tx = r.counters.bytes_tx,
                  .bytes_rx = r.counters.bytes_rx,
                  .segs_out = r.counters.segs_out,
                  .segs_in = r.counters.segs_in,
                  .retrans = r.counters.retrans,
                  .rtt_sum_us = r.counters.rtt_us,
                  .rtt_samples = 1,
                  .rtt_max_us = r.counters.rtt_us,
                  .first_seen_ns = r.ts_ns,
                  .last_seen_ns = r.ts_ns};
      auto& d = deltas[k];
      if (d.second.connections == 0) d.first = FlowBucketOf(r.ts_ns);
      if (FlowBucketOf(r.ts_ns) != d.first) {  // crossed a minute: flush that delta
        b.flows.push_back({d.first, k, d.second});
        d = {FlowBucketOf(r.ts_ns), {}};
      }
      d.second.Merge(s);
      b.records.push_back(r);
    }
    for (auto& [k, d] : deltas) b.flows.push_back({d.first, k, d.second});
    now_ = std::max(now_, end);
    return b;
  }

  int64_t now() const { return now_; }
  void set_now(int64_t t) { now_ = t; }

 private:
  ConnRecord Record() {
    ConnRecord r;
    r.ts_ns = now_;
    r.key.netns = 4026531840u;
    std::uniform_int_distribution<int> ephemeral(32768, 60999);
    std::lognormal_distribution<double> small(6.0, 1.5), large(8.5, 2.0), dur(3.0, 1.5);
    if (rng_() % 10 < 4) {  // passive: a remote host connects to one of our servers
      const size_t client = Skewed(clients_.size());
      const Listener& l = listeners_[client_listeners_[client][rng_() % 2]];
      r.direction = Direction::kPassive;
      r.key.laddr = l.addr;
      r.key.lport = l.port;
      r.key.raddr = clients_[client];
      r.key.rport = static_cast<uint16_t>(ephemeral(rng_));
      r.proc.pid = procs_[l.owner].pid;
      r.proc.start_ticks = procs_[l.owner].start_ticks;
      r.proc.cgroup_id = procs_[l.owner].cgroup_id;
      r.counters.bytes_tx = static_cast<uint64_t>(large(rng_));
      r.counters.bytes_rx = static_cast<uint64_t>(small(rng_));
    } else {  // active: one of our clients connects out
      const Proc& p = procs_[40 + Skewed(260)];
      const Listener& remote = remotes_[p.remotes[rng_() % p.remotes.size()]];
      r.direction = Direction::kActive;
      r.key.laddr = IpAddr::V4(10, 213, 0, 1);
      r.key.lport = static_cast<uint16_t>(ephemeral(rng_));
      r.key.raddr = remote.addr;
      r.key.rport = remote.port;
      r.proc.pid = p.pid;
      r.proc.start_ticks = p.start_ticks;
      r.proc.cgroup_id = p.cgroup_id;
      r.counters.bytes_tx = static_cast<uint64_t>(small(rng_));
      r.counters.bytes_rx = static_cast<uint64_t>(large(rng_));
    }
    TcpCounters& c = r.counters;
    c.segs_out = static_cast<uint32_t>(c.bytes_tx / 1448 + 2 + rng_() % 3);
    c.segs_in = static_cast<uint32_t>(c.bytes_rx / 1448 + 2 + rng_() % 3);
    c.retrans = rng_() % 20 == 0 ? 1 + rng_() % 3 : 0;
    c.rtt_us = 80 + rng_() % 2000;
    c.rttvar_us = c.rtt_us / 4 + rng_() % 50;
    r.duration_ns = static_cast<uint64_t>(dur(rng_) * 1e6);
    return r;
  }

  // A few hot choices and a long tail, like real traffic.
  size_t Skewed(size_t n) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng_);
    return std::min(n - 1, static_cast<size_t>(static_cast<double>(n) * u * u * u));
  }

  double rate_;
  std::mt19937_64 rng_;
  int64_t now_ = 0;
  std::vector<Proc> procs_;
  std::vector<Listener> remotes_;
  std::vector<Listener> listeners_;
  std::vector<IpAddr> clients_;
  std::vector<std::array<int, 2>> client_listeners_;
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Timing {
  double median_ms = 0, p99_ms = 0;
};

template <typename F>
Timing Repeat(int reps, F&& f) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto start = Clock::now();
    f();
    ms.push_back(Ms(Clock::now() - start));
  }
  std::sort(ms.begin(), ms.end());
  size_t p99 = std::min(ms.size() - 1, static_cast<size_t>(std::ceil(0.99 * ms.size())) - 1);
  return {ms[ms.size() / 2], ms[p99]};
}

double Mb(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

struct PeakMemory {
  uint64_t memtable = 0, memtable_plus_cache = 0;
  uint64_t flushes = 0, stalls = 0;  // as of the last sample
  void Sample(const StoreStats& st) {
    flushes = st.memtable_flushes;
    stalls = st.write_stalls;
    memtable = std::max(memtable, st.memtable_bytes);
    memtable_plus_cache = std::max(memtable_plus_cache, st.memtable_bytes + st.block_cache_bytes);
  }
};

size_t SstFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.path().extension() == ".sst";
  return n;
}

int Run(const Options& opt) {
  std::string dir = opt.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/store_bench_XXXXXX";
    if (!mkdtemp(tmpl)) return perror("mkdtemp"), 1;
    dir = tmpl;
  }
  StoreOptions so;
  so.dir = dir;
  so.retention_interval_ns = 0;  // measure ingest and queries, not retention
  so.retention_bytes = 0;
  so.read_only = opt.queries_only;
  so.memory_bytes = opt.memory_mb << 20;
  auto opened = Store::Open(so);
  if (!opened.ok()) return fprintf(stderr, "%s\n", opened.status().message().c_str()), 1;
  Store& store = **opened;
  fprintf(stderr, "store_bench: store in %s\n", dir.c_str());

  Workload w(opt.rate);
  double ingest = 0, compact_s = 0;
  PeakMemory peak;
  size_t sst_files_written = 0;
  if (!opt.queries_only) {
    // Start the virtual clock so the data ends about now: the 1-hour query
    // then covers real buckets.
    const double span_s = static_cast<double>(opt.records) / opt.rate;
    w.set_now(FlowBucketOf(std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count()) -
              static_cast<int64_t>(span_s * kSec));
    Batch first;
    for (const Proc& p : w.procs())
      first.processes.push_back(
          {p.pid, p.start_ticks, p.pid, 1, p.comm, "/usr/bin/" + p.comm, p.cgroup_id, {}});
    if (Status s = store.Write(first); !s.ok())
      return fprintf(stderr, "%s\n", s.message().c_str()), 1;

    uint64_t written = 0, batches = 0;
    Clock::duration write_time{};
    const auto wall_start = Clock::now();
    while (written < opt.records) {
      Batch b = w.Next(opt.flush_s, opt.records - written);
      auto start = Clock::now();
      if (Status s = store.Write(b); !s.ok())
        return fprintf(stderr, "%s\n", s.message().c_str()), 1;
      write_time += Clock::now() - start;
      written += b.records.size();
      if (++batches % 20 == 0) peak.Sample(store.Stats());
    }
    peak.Sample(store.Stats());
    sst_files_written = SstFiles(dir);
    const double wall_s = Ms(Clock::now() - wall_start) / 1000;
    ingest = static_cast<double>(written) / (Ms(write_time) / 1000);
    fprintf(stderr,
            "store_bench: wrote %llu records in %.1f s (%.1f s in Store::Write), compacting\n",
            static_cast<unsigned long long>(written), wall_s, Ms(write_time) / 1000);
    auto cstart = Clock::now();
    if (Status s = store.CompactAll(); !s.ok())
      return fprintf(stderr, "%s\n", s.message().c_str()), 1;
    compact_s = Ms(Clock::now() - cstart) / 1000;
    (void)store.PutMeta("store_bench.end", std::to_string(w.now()));
  } else {
    auto end = store.GetMeta("store_bench.end");
    if (!end.ok() || !end->has_value())
      return fprintf(stderr, "%s: no store kept by an earlier run\n", dir.c_str()), 1;
    w.set_now(std::stoll(**end));
  }
  StoreStats st = store.Stats();
  const double bpr = static_cast<double>(st.disk_bytes) / static_cast<double>(st.records);

  // (a) `flows --since`: the last complete minute before the end.
  const int64_t end = w.now();
  const TimeWindow minute{FlowBucketOf(end) - 60 * kSec, FlowBucketOf(end) - 1};
  uint64_t in_window = 0;
  Timing scan = Repeat(opt.reps, [&] {
    in_window = 0;
    (void)store.ScanRecords(minute, {}, [&](const ConnRecord&) {
      ++in_window;
      return true;
    });
  });
  // (b) what `look` asks this node about its busiest endpoint: the clients
  // of the endpoint and the dependencies of its process over the last hour.
  const Listener& ep = w.listeners()[0];
  const uint32_t owner = w.procs()[ep.owner].pid;
  const TimeWindow hour{end - 3600 * kSec, end};
  size_t flows = 0;
  Timing look = Repeat(opt.reps, [&] {
    auto r = store.ReadFlows(hour, [&](const FlowKey& k) {
      return (k.direction == Direction::kPassive && k.lport == ep.port && k.laddr == ep.addr) ||
             (k.direction == Direction::kActive && k.pid == owner);
    });
    flows = r.ok() ? r->size() : 0;
  });
  size_t all_flows = 0, rows = 0;
  Timing all = Repeat(std::min(opt.reps, 5), [&] {
    rows = 0;
    auto r = store.ReadFlows(hour, [&](const FlowKey&) { return ++rows > 0; });
    all_flows = r.ok() ? r->size() : 0;
  });

  printf(
      "store_bench: records=%llu rate=%.0f/s span=%.0fs ingest=%.0f rec/s compact_s=%.1f "
      "disk_bytes=%llu bytes_per_record=%.1f window_1m_records=%llu window_1m_median_ms=%.2f "
      "window_1m_p99_ms=%.2f flows_1h_matches=%zu flows_1h_median_ms=%.2f flows_1h_p99_ms=%.2f "
      "flows_1h_rows=%zu flows_1h_all=%zu flows_1h_all_median_ms=%.2f\n",
      static_cast<unsigned long long>(st.records), opt.rate,
      static_cast<double>(st.records) / opt.rate, ingest, compact_s,
      static_cast<unsigned long long>(st.disk_bytes), bpr,
      static_cast<unsigned long long>(in_window), scan.median_ms, scan.p99_ms, flows,
      look.median_ms, look.p99_ms, rows, all_flows, all.median_ms);
  // What the memory budget costs and holds: flushes and stalls while
  // writing (not compacting), the peaks sampled every 20 batches, the cache after the queries.
  StoreStats after = store.Stats();
  printf(
      "store_bench: memory_limit_mb=%.1f memtable_flushes=%llu write_stalls=%llu "
      "peak_memtable_mb=%.1f peak_memtable_plus_cache_mb=%.1f sst_files_written=%zu "
      "sst_files_compacted=%zu block_cache_mb_after_queries=%.1f table_readers_mb=%.2f\n",
      Mb(after.memory_limit_bytes), static_cast<unsigned long long>(peak.flushes),
      static_cast<unsigned long long>(peak.stalls), Mb(peak.memtable), Mb(peak.memtable_plus_cache),
      sst_files_written, SstFiles(dir), Mb(after.block_cache_bytes), Mb(after.table_readers_bytes));
  opened->reset();
  if (!opt.keep && opt.dir.empty()) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace flowmesh

int main(int argc, char** argv) {
  flowmesh::Options opt;
  CLI::App app{"RocksDB store benchmark: ingest, size per record, query latency"};
  app.add_option("--records", opt.records, "connection records to write");
  app.add_option("--rate", opt.rate, "closes per second of virtual time (sets the data's span)");
  app.add_option("--flush", opt.flush_s, "virtual seconds per batch (meshd's --flush-interval)");
  app.add_option("--reps", opt.reps, "repetitions of each query");
  app.add_option("--dir", opt.dir, "store directory (default: a temporary one, removed after)");
  app.add_flag("--keep", opt.keep, "keep the temporary directory");
  app.add_flag("--queries-only", opt.queries_only,
               "only time the queries, on the store an earlier --keep run left in --dir");
  app.add_option("--store-memory-mb", opt.memory_mb,
                 "RocksDB's memory budget in MB (meshd's --store-memory)");
  CLI11_PARSE(app, argc, argv);
  return flowmesh::Run(opt);
}
