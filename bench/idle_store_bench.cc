// What idle open connections cost the store, in virtual time: N connections
// opened at start-up and held idle for --hours, through a real Aggregator
// (hourly checkpoints, Tick every 20 s of virtual time) into a real store.
// Prints the flow rows written per hour, the disk bytes after compaction,
// and how long windows take to read: a minute at the start of an hour (its
// checkpoint is in it), a minute 59 minutes in (rebuilt from the checkpoint
// an hour back) and a whole hour (look's default). bench/idle_pool.py
// measures the same with a real meshd, in real time.
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "node/flow/aggregator.h"
#include "node/store/store.h"

namespace flowmesh {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMin = 60 * kSec;

struct Options {
  int connections = 50'000;
  int sources = 50'000;  // distinct client addresses: each one a flow
  int hours = 3;
  int reps = 20;
  uint64_t memory_mb = StoreOptions{}.memory_bytes >> 20;  // meshd's --store-memory
};

double MedianMs(int reps, const std::function<void()>& f) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto start = Clock::now();
    f();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

int Run(const Options& opt) {
  char tmpl[] = "/tmp/idle_store_bench_XXXXXX";
  if (!mkdtemp(tmpl)) return perror("mkdtemp"), 1;
  const std::string dir = tmpl;
  StoreOptions so;
  so.dir = dir;
  so.retention_interval_ns = 0;
  so.memory_bytes = opt.memory_mb << 20;
  auto opened = Store::Open(so);
  if (!opened.ok()) return fprintf(stderr, "%s\n", opened.status().message().c_str()), 1;
  Store& store = **opened;
  Aggregator agg(nullptr);

  // Start a minute into an hour, as a meshd would at any time.
  const int64_t t0 = FlowCheckpointOf(1'700'000'000 * kSec) + kMin;
  int64_t now = t0;
  uint64_t deltas = 0;
  auto flush = [&]() -> bool {
    Batch b = agg.TakeBatch();
    deltas += b.flows.size();
    Status s = store.Write(b);
    if (!s.ok()) fprintf(stderr, "%s\n", s.message().c_str());
    return s.ok();
  };
  // The server's end of each connection: one passive flow per client address.
  for (int i = 0; i < opt.connections; ++i) {
    ConnEvent e;
    e.kind = EventKind::kOpen;
    e.source = EventSource::kSeed;
    e.direction = Direction::kPassive;
    e.ts_ns = now;
    const uint32_t client = 0x7f010001u + static_cast<uint32_t>(i % std::max(1, opt.sources));
    auto byte = [&](int shift) { return static_cast<uint8_t>((client >> shift) & 255); };
    e.key = ConnKey{1, IpAddr::V4(127, 0, 0, 1), IpAddr::V4(byte(24), byte(16), byte(8), byte(0)),
                    5432, static_cast<uint16_t>(10000 + i % 50000)};
    e.proc.pid = 100;
    e.proc.start_ticks = 1;
    agg.Add(e);
  }
  agg.Checkpoint(now);
  if (!flush()) return 1;
  const uint64_t seed_deltas = deltas;
  deltas = 0;
  const int64_t end = t0 + opt.hours * 60 * kMin;
  for (; now < end; now += 20 * kSec) {
    agg.Tick(now);
    if ((now - t0) % kMin == 0 && !flush()) return 1;
  }
  if (!flush()) return 1;
  const uint64_t flushes = store.Stats().memtable_flushes;  // before CompactAll's own
  if (Status s = store.CompactAll(); !s.ok())
    return fprintf(stderr, "%s\n", s.message().c_str()), 1;
  const uint64_t disk = store.Stats().disk_bytes;

  const int64_t last_hour = FlowCheckpointOf(end - kMin);
  size_t found = 0;
  auto read = [&](TimeWindow w) {
    return [&store, &found, w] {
      auto r = store.ReadFlows(w, [](const FlowKey& k) { return k.lport == 5432; });
      found = r.ok() ? r->size() : 0;
    };
  };
  const double at_checkpoint = MedianMs(opt.reps, read({last_hour, last_hour + kMin - 1}));
  const size_t found_at_checkpoint = found;
  const double rebuilt = MedianMs(opt.reps, read({last_hour - kMin, last_hour - 1}));
  const size_t found_rebuilt = found;
  const double hour = MedianMs(opt.reps, read({end - 60 * kMin, end}));
  const size_t found_hour = found;
  printf(
      "idle_store_bench: connections=%d flows=%d hours=%d seed_rows=%llu rows_per_hour=%.0f "
      "disk_bytes=%llu disk_mb_per_hour=%.2f read_minute_at_checkpoint_ms=%.2f (%zu flows) "
      "read_minute_59_in_ms=%.2f (%zu flows) read_hour_ms=%.2f (%zu flows)\n",
      opt.connections, std::min(opt.connections, opt.sources), opt.hours,
      static_cast<unsigned long long>(seed_deltas), static_cast<double>(deltas) / opt.hours,
      static_cast<unsigned long long>(disk), static_cast<double>(disk) / 1e6 / opt.hours,
      at_checkpoint, found_at_checkpoint, rebuilt, found_rebuilt, hour, found_hour);
  const StoreStats st = store.Stats();
  printf(
      "idle_store_bench: memory_limit_mb=%.1f memtable_flushes=%llu write_stalls=%llu "
      "block_cache_mb_after_reads=%.1f\n",
      static_cast<double>(st.memory_limit_bytes) / (1 << 20),
      static_cast<unsigned long long>(flushes), static_cast<unsigned long long>(st.write_stalls),
      static_cast<double>(st.block_cache_bytes) / (1 << 20));
  opened->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace flowmesh

int main(int argc, char** argv) {
  flowmesh::Options opt;
  CLI::App app{"What idle open connections cost the store: rows, bytes and window reads"};
  app.add_option("--connections", opt.connections, "idle connections held open");
  app.add_option("--sources", opt.sources, "distinct client addresses (flows) among them");
  app.add_option("--hours", opt.hours, "virtual hours to hold them");
  app.add_option("--reps", opt.reps, "repetitions of each read");
  app.add_option("--store-memory-mb", opt.memory_mb,
                 "RocksDB's memory budget in MB (meshd's --store-memory)");
  CLI11_PARSE(app, argc, argv);
  return flowmesh::Run(opt);
}
