// What reading conntrack costs per connection (issue 14): in a network
// namespace of its own (root), a DNAT rule on loopback (127.0.0.100:80 ->
// 127.0.0.1:PORT, output hook) and N real connections through it at full
// speed, while a ConntrackReader drains events into a NatTable on this
// thread. Prints this thread's CPU per event (recv + parse + table) and the
// connection rate with and without a reader, alternating runs.
//
//   conntrack_bench [--connections N] [--threads T] [--rounds R]
//   conntrack_bench --parse FILE   user-space cost alone, no root: ParseCtMessage
//                                  on the captured messages of FILE
//                                  (tests/unit/testdata/conntrack_messages.txt),
//                                  and NatTable::Apply of NEW and DESTROY
#include <linux/netlink.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "node/nat/conntrack.h"
#include "node/nat/nat_table.h"
#include "node/probe/netns.h"
#include "tests/kernel/conntrack_util.h"
#include "tests/tools/conntrack_messages.h"

namespace {

using namespace flowmesh;
using testing::Churn;

int64_t Ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

// ns per ParseCtMessage over the captured messages, and per NatTable
// Apply (NEW then DESTROY of distinct translated connections).
int ParseOnly(const std::string& file) {
  auto messages = testing::ReadConntrackMessages(file);
  if (messages.empty()) {
    std::fprintf(stderr, "conntrack_bench: no messages in %s\n", file.c_str());
    return 1;
  }
  std::vector<std::vector<uint32_t>> aligned;
  for (const auto& [name, bytes] : messages) {
    aligned.emplace_back((bytes.size() + 3) / 4);
    std::memcpy(aligned.back().data(), bytes.data(), bytes.size());
  }
  constexpr int kRounds = 200000;
  CtEvent ev;
  uint64_t ok = 0;
  int64_t t0 = Ns(CLOCK_PROCESS_CPUTIME_ID);
  for (int r = 0; r < kRounds; r++)
    for (const auto& m : aligned)
      ok += ParseCtMessage(reinterpret_cast<const nlmsghdr*>(m.data()), 1, &ev).ok();
  const double parse_ns =
      static_cast<double>(Ns(CLOCK_PROCESS_CPUTIME_ID) - t0) / (kRounds * aligned.size());
  if (!ParseCtMessage(reinterpret_cast<const nlmsghdr*>(aligned.front().data()), 1, &ev).ok())
    return 1;
  NatTable table;
  constexpr int kEntries = 200000;
  t0 = Ns(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < kEntries; i++) {
    ev.kind = CtEventKind::kNew;
    ev.entry.id = i + 1;
    ev.entry.original.src.port = static_cast<uint16_t>(i);
    ev.entry.original.src.addr.bytes[3] = static_cast<uint8_t>(i >> 16);
    ev.entry.reply.dst = ev.entry.original.src;
    // 20,000 connections a second: the graces (2 s) hold ~40,000 entries.
    const int64_t now = int64_t{i} * 50'000;
    table.Apply(ev, now);
    ev.kind = CtEventKind::kDestroy;
    table.Apply(ev, now);
    if (i % 1000 == 0) table.TakeForwarded(now);
  }
  table.TakeForwarded(int64_t{1} << 62);
  const double apply_ns = static_cast<double>(Ns(CLOCK_PROCESS_CPUTIME_ID) - t0) / (2.0 * kEntries);
  std::printf("ParseCtMessage      %.0f ns per message (%zu captured messages, %llu parsed)\n",
              parse_ns, aligned.size(), static_cast<unsigned long long>(ok));
  std::printf("NatTable::Apply     %.0f ns per event (NEW + DESTROY of %d translated entries "
              "at 20,000/s, unclaimed: with TakeForwarded's opens and closes)\n",
              apply_ns, kEntries);
  return 0;
}

struct Traced {
  int64_t wall_ns = 0;
  uint64_t news = 0, destroys = 0, lost = 0;
  int64_t cpu_ns = 0;  // this thread's CPU in Drain + NatTable
  ConntrackStats stats;
  NatTableStats table;
};

// One churn with a reader draining on this thread, until the churn is over
// and the DESTROYs of its last entries (1 s timeouts, evicted by a dump)
// are in. The reader is closed after: the next bare run has no listener.
Result<Traced> RunTraced(const std::string& ns, int total, int threads) {
  std::unique_ptr<ConntrackReader> reader;
  FM_RETURN_IF_ERROR(RunInNetns(ns, 0, [&] {
    auto r = ConntrackReader::Open();
    if (!r.ok()) return r.status();
    reader = std::move(*r);
    return Status::Ok();
  }));
  Traced out;
  NatTable table;
  std::atomic<bool> churning{true};
  std::thread load([&] {
    out.wall_ns = Churn(ns, 8080, total, threads);
    churning = false;
  });
  std::vector<CtEvent> batch;
  int64_t quiet_since = 0;
  bool dumped = false;
  for (;;) {
    pollfd p{reader->fd(), POLLIN, 0};
    int ready = poll(&p, 1, 100);
    const int64_t c0 = Ns(CLOCK_THREAD_CPUTIME_ID);
    batch.clear();
    bool lost = false;
    Status d = reader->Drain(&batch, 4096, &lost);
    const int64_t now = Ns(CLOCK_REALTIME);
    for (const CtEvent& ev : batch) table.Apply(ev, now);
    table.TakeForwarded(now);
    out.cpu_ns += Ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (!d.ok()) std::fprintf(stderr, "conntrack_bench: %s\n", d.ToString().c_str());
    out.lost += lost;
    for (const CtEvent& ev : batch) (ev.kind == CtEventKind::kNew ? out.news : out.destroys)++;
    if (churning || ready > 0 || !batch.empty()) {
      quiet_since = Ns(CLOCK_MONOTONIC);
      continue;
    }
    const int64_t quiet = Ns(CLOCK_MONOTONIC) - quiet_since;
    if (!dumped && quiet > 1'500'000'000) {
      std::vector<CtEntry> ignored;  // evicts the expired entries: their DESTROYs come
      (void)reader->Dump(&ignored);
      dumped = true;
      quiet_since = Ns(CLOCK_MONOTONIC);
    } else if (dumped && quiet > 1'000'000'000) {
      break;
    }
  }
  load.join();
  out.stats = reader->Stats();
  out.table = table.Stats();
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"conntrack reader cost per connection (root)"};
  int total = 20000;
  int threads = 2;
  int rounds = 3;
  app.add_option("--connections", total, "connections per run");
  app.add_option("--threads", threads, "client threads");
  app.add_option("--rounds", rounds, "bare/traced pairs, alternating, after one warm-up run");
  std::string parse_file;
  app.add_option("--parse", parse_file, "only the user-space cost, on these captured messages");
  CLI11_PARSE(app, argc, argv);
  if (!parse_file.empty()) return ParseOnly(parse_file);

  testing::NatNetns nets("bench");
  std::string err;
  if (!nets.Add("n", &err) || !nets.LoopbackVip("n", 8080, &err)) {
    std::fprintf(stderr, "conntrack_bench: %s\n", err.c_str());
    return 1;
  }
  const std::string ns = nets.Path("n");
  Churn(ns, 8080, total, threads);  // warm-up: the namespace's conntrack table, the rule
  usleep(2'000'000);
  std::printf("connections %d per run (%d client threads), DNAT 127.0.0.100:80 -> "
              "127.0.0.1:8080, loopback\n", total, threads);
  std::printf("%-6s %12s %12s %10s %10s %12s %9s\n", "round", "bare conn/s", "traced c/s",
              "NEW", "DESTROY", "us/event", "overflow");
  double cpu_sum = 0, events_sum = 0, bare_sum = 0, traced_sum = 0;
  for (int r = 1; r <= rounds; r++) {
    const int64_t bare = Churn(ns, 8080, total, threads);
    usleep(2'000'000);  // the bare run's entries expire; the traced run starts alike
    auto t = RunTraced(ns, total, threads);
    if (!t.ok()) {
      std::fprintf(stderr, "conntrack_bench: %s\n", t.status().ToString().c_str());
      return 1;
    }
    const uint64_t events = t->news + t->destroys;
    std::printf("%-6d %12.0f %12.0f %10llu %10llu %12.2f %9llu\n", r, total / (bare / 1e9),
                total / (t->wall_ns / 1e9), static_cast<unsigned long long>(t->news),
                static_cast<unsigned long long>(t->destroys),
                events ? t->cpu_ns / 1e3 / events : 0.0,
                static_cast<unsigned long long>(t->stats.overflows));
    cpu_sum += t->cpu_ns;
    events_sum += events;
    bare_sum += bare;
    traced_sum += t->wall_ns;
  }
  std::printf("all    conn/s traced/bare %.3f; reader CPU %.2f us per event (recv + parse + "
              "NatTable), %.2f us per connection\n",
              bare_sum / traced_sum, cpu_sum / 1e3 / events_sum,
              cpu_sum / 1e3 / (static_cast<double>(total) * rounds));
  return 0;
}
