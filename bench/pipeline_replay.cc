// Replays synthetic ring-buffer records of loopback churn through meshd's
// user-space data path (decode, connection table, aggregator, flusher,
// RocksDB store), with no kernel and no threads, so `valgrind --tool=callgrind`
// counts the instructions per connection repeatably however busy the machine
// is. Each connection is what bench/churn makes: active OPEN, passive OPEN,
// passive CLOSE (the server closes first), active CLOSE, delivered in runs as
// BpfProbe delivers a ring-buffer drain.
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "bpf/flowmesh.h"
#include "node/flow/aggregator.h"
#include "node/flow/pipeline.h"
#include "node/store/flusher.h"
#include "node/store/store.h"

namespace flowmesh {
namespace {

struct Options {
  uint64_t connections = 100'000;
  double rate = 25'000;  // connections per second of virtual time
  size_t batch = 1024;   // events per delivery (BpfProbe::kMaxBatch)
  double flush_s = 1;    // virtual seconds between flushes (--flush-interval)
  uint64_t idle = 0;     // pooled connections opened first and left open
  std::string dir;       // store directory; a temp dir by default
};

fm_event Event(uint8_t kind, uint8_t direction, uint64_t ts, uint32_t pid, uint16_t lport,
               uint8_t laddr_last, uint16_t rport, uint8_t raddr_last) {
  fm_event e{};
  e.ts_ns = ts;
  e.kind = kind;
  e.direction = direction;
  e.family = AF_INET;
  e.netns = 4026531840u;
  e.pid = pid;
  e.pgid = pid;
  e.proc_start_ns = 123'000'000'000ull;
  std::strcpy(e.comm, "churn");
  e.lport = lport;
  e.rport = rport;
  const uint8_t l[4] = {127, 0, 0, laddr_last}, r[4] = {127, 0, 0, raddr_last};
  std::memcpy(e.laddr, l, 4);
  std::memcpy(e.raddr, r, 4);
  if (kind == FM_EV_CLOSE) {
    e.duration_ns = 150'000;
    e.bytes_acked = direction == FM_DIR_ACTIVE ? 3 : 2;
    e.bytes_received = 2;
    e.segs_out = 4;
    e.segs_in = 4;
    e.srtt_us = 20;
    e.rttvar_us = 10;
    e.tcp_flags = FM_TCP_FIN_ACKED | FM_TCP_FIN_RECEIVED;
  }
  return e;
}

// Decodes and delivers as BpfProbe does; written against both the per-event
// interface and the batched one (EventSink::OnEvents, DecodeEventInto), so
// the same replay measures the code before and after batching.
template <typename E = fm_event>
bool Decode(const E& e, ConnEvent* out) {
  if constexpr (requires { DecodeEventInto(&e, sizeof e, out); }) {
    return DecodeEventInto(&e, sizeof e, out).ok();
  } else {
    Result<ConnEvent> ev = DecodeEvent(&e, sizeof e);
    if (!ev.ok()) return false;
    *out = *ev;
    return true;
  }
}

template <typename P>
void Deliver(P& pipeline, std::vector<ConnEvent>& batch, size_t n) {
  if (n == 0) return;
  if constexpr (requires { pipeline.OnEvents(std::span<ConnEvent>(batch.data(), n)); }) {
    pipeline.OnEvents(std::span<ConnEvent>(batch.data(), n));
  } else {
    for (size_t i = 0; i < n; ++i) pipeline.OnEvent(batch[i]);
  }
}

int Run(const Options& o) {
  std::string dir = o.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/pipeline_replay.XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = tmpl;
  }
  StoreOptions so;
  so.dir = dir;
  so.retention_interval_ns = 0;
  auto store = Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().message().c_str());
    return 1;
  }
  Aggregator aggregator(nullptr);
  aggregator.set_remember_kernel_closes(false);
  Pipeline pipeline;
  pipeline.set_aggregator(&aggregator);
  Flusher flusher(
      FlusherOptions{.interval_ns = 0}, [&] { return aggregator.TakeBatch(); },
      Flusher::WriteTo(store->get()));

  // Raw records first (the kernel's work), then only the user-space path.
  const uint64_t step_ns = static_cast<uint64_t>(1e9 / o.rate);
  const uint64_t t0 = 1'000'000'000'000ull;
  std::vector<fm_event> raw;
  raw.reserve(o.connections * 4);
  for (uint64_t i = 0; i < o.connections; ++i) {
    const uint64_t ts = t0 + i * step_ns;
    const uint16_t eph = static_cast<uint16_t>(32768 + i % 28000);
    const uint8_t server = static_cast<uint8_t>(1 + i % 4);
    const uint32_t pid = 4242;
    raw.push_back(Event(FM_EV_OPEN, FM_DIR_ACTIVE, ts, pid, eph, 1, 18473, server));
    raw.push_back(Event(FM_EV_OPEN, FM_DIR_PASSIVE, ts + 1000, pid, 18473, server, eph, 1));
    raw.push_back(Event(FM_EV_CLOSE, FM_DIR_PASSIVE, ts + 100'000, pid, 18473, server, eph, 1));
    raw.push_back(Event(FM_EV_CLOSE, FM_DIR_ACTIVE, ts + 150'000, pid, eph, 1, 18473, server));
  }

  // The ring buffer holds events in the order they happened.
  std::stable_sort(raw.begin(), raw.end(),
                   [](const fm_event& a, const fm_event& b) { return a.ts_ns < b.ts_ns; });

  std::vector<ConnEvent> batch(o.batch);
  // Idle pooled connections (both ends, to 127.0.1.x:6379), open before the
  // churn and never closed: what every event's table lookups then live among.
  for (uint64_t i = 0; i < o.idle; ++i) {
    const uint64_t ts = t0 - 1'000'000'000ull + i;
    const uint16_t eph = static_cast<uint16_t>(32768 + i % 28000);
    const uint8_t server = static_cast<uint8_t>(100 + i / 28000);
    const fm_event pair[2] = {Event(FM_EV_OPEN, FM_DIR_ACTIVE, ts, 4343, eph, 1, 6379, server),
                              Event(FM_EV_OPEN, FM_DIR_PASSIVE, ts, 4444, 6379, server, eph, 1)};
    for (const fm_event& e : pair)
      if (Decode(e, &batch[0])) Deliver(pipeline, batch, 1);
  }

  const auto start = std::chrono::steady_clock::now();
  const uint64_t flush_ns = static_cast<uint64_t>(o.flush_s * 1e9);
  uint64_t next_flush = t0 + flush_ns;
  size_t n = 0;
  uint64_t malformed = 0;
  for (const fm_event& e : raw) {
    if (!Decode(e, &batch[n])) {
      ++malformed;
      continue;
    }
    if (++n == batch.size()) {
      Deliver(pipeline, batch, n);
      n = 0;
    }
    if (e.ts_ns >= next_flush) {
      Deliver(pipeline, batch, n);
      n = 0;
      if (Status s = flusher.FlushNow(); !s.ok()) std::fprintf(stderr, "%s\n", s.message().c_str());
      next_flush += flush_ns;
    }
  }
  Deliver(pipeline, batch, n);
  if (Status s = flusher.FlushNow(); !s.ok()) std::fprintf(stderr, "%s\n", s.message().c_str());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const uint64_t stored = (*store)->Stats().records;
  std::printf(
      "pipeline_replay: connections=%llu events=%zu records_stored=%llu malformed=%llu "
      "seconds=%.3f us_per_connection=%.3f\n",
      static_cast<unsigned long long>(o.connections), raw.size(),
      static_cast<unsigned long long>(stored), static_cast<unsigned long long>(malformed), secs,
      secs * 1e6 / static_cast<double>(o.connections));
  flusher.Stop();
  store->reset();
  if (o.dir.empty()) std::filesystem::remove_all(dir);
  return stored == o.connections * 2 ? 0 : 1;
}

}  // namespace
}  // namespace flowmesh

int main(int argc, char** argv) {
  flowmesh::Options o;
  CLI::App app{"Replay synthetic churn through meshd's user-space data path"};
  app.add_option("--connections", o.connections, "connections to replay (4 events each)");
  app.add_option("--rate", o.rate, "connections per second of virtual time");
  app.add_option("--batch", o.batch, "events per delivery to the pipeline")
      ->check(CLI::PositiveNumber);
  app.add_option("--flush", o.flush_s, "virtual seconds between flushes");
  app.add_option("--idle", o.idle, "idle connections opened before the churn and left open")
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--dir", o.dir, "store directory (default: a temp dir, removed)");
  CLI11_PARSE(app, argc, argv);
  return flowmesh::Run(o);
}
