// Mesh benchmark on the simulated network (node/mesh/sim/sim_network.h): for
// each mesh size it measures how fast a new endpoint reaches 99.99% of the
// nodes, how long until a killed node is declared dead by all, false
// positives under 10% packet loss, and bytes per node per second, next to
// memberlist/Serf's published figures. Virtual time; deterministic per seed.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "node/common/log.h"
#include "node/mesh/sim/sim_cluster.h"

namespace flowmesh::mesh {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<size_t> nodes = {1000, 10000};
  uint64_t seed = 1;
  int endpoint_trials = 5;
  int kills = 3;
  double window_s = 60;    // steady-state bandwidth window
  double loss_s = 60;      // virtual seconds under 10% loss
  bool cold_join = false;  // also time N real joins (slow beyond a few thousand)
};

// Reference figures: Serf's convergence simulator (memberlist LAN config) and
// the targets.
struct Reference {
  const char* converge;
  const char* detect;
  const char* bandwidth;
};
Reference ReferenceFor(size_t n) {
  if (n <= 1000) return {"2.2 s", "14-17 s", "~41 KB/s ceiling"};
  return {"2.6 s", "~20 s (est.)", "~41 KB/s ceiling"};
}

struct Bandwidth {
  double out_mean = 0, out_p99 = 0, out_max = 0;  // KB/s sent
  double all_mean = 0, all_max = 0;               // KB/s sent + received
};

Bandwidth Measure(SimCluster& c, double seconds) {
  std::vector<double> out, all;
  for (size_t i = 0; i < c.size(); i++) {
    if (!c.up(i)) continue;
    const auto& k = c.net().counters(SimCluster::AddressOf(i));
    out.push_back(k.bytes_out / seconds / 1000);
    all.push_back((k.bytes_out + k.bytes_in) / seconds / 1000);
  }
  std::sort(out.begin(), out.end());
  std::sort(all.begin(), all.end());
  Bandwidth b;
  for (double v : out) b.out_mean += v / out.size();
  for (double v : all) b.all_mean += v / all.size();
  b.out_p99 = out[std::min(out.size() - 1, out.size() * 99 / 100)];
  b.out_max = out.back();
  b.all_max = all.back();
  return b;
}

double Median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double MaxOf(const std::vector<double>& v) {
  return v.empty() ? NAN : *std::max_element(v.begin(), v.end());
}

long MaxRssMb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

void RunOne(size_t n, const Options& o) {
  auto wall0 = Clock::now();
  SimCluster c(o.seed + n);
  c.AddNodes(n);
  SimNetwork& net = c.net();
  double join_s = NAN;
  if (o.cold_join) {
    c.StartAll(3, 10 * kMs);
    int64_t t0 = net.NowNs();
    if (net.RunUntil([&] { return c.AllSeeAlive(n); }, t0 + 600 * kSecond, kSecond))
      join_s = (net.NowNs() - t0) / 1e9;
  } else {
    c.StartConverged();
  }
  net.RunFor(10 * kSecond);  // probe and gossip loops settle into their phases

  // Steady state: what membership costs when nothing happens.
  net.ResetCounters();
  net.RunFor(static_cast<int64_t>(o.window_s * kSecond));
  Bandwidth quiet = Measure(c, o.window_s);

  // A new endpoint on one node: until 99.99% (and all) hold it.
  size_t target = static_cast<size_t>(std::ceil(0.9999 * n));
  std::vector<double> to_9999, to_all;
  for (int t = 0; t < o.endpoint_trials; t++) {
    size_t owner = (t * 7919 + 13) % n;
    IpAddr ip = *IpAddr::Parse("10.200.0." + std::to_string(1 + owner % 250));
    c.node(owner).SetLocalTable({ip}, {{ip, static_cast<uint16_t>(8000 + t), 4242, 4240,
                                        "redis-server", "/usr/bin/redis-server"}});
    uint64_t version = c.node(owner).TableDigestOf(SimCluster::NameOf(owner)).version;
    int64_t t0 = net.NowNs();
    bool reached = net.RunUntil([&] { return c.CountHoldingTable(owner, version) >= target; },
                                t0 + 60 * kSecond, 10 * kMs);
    if (reached) to_9999.push_back((net.NowNs() - t0) / 1e9);
    if (net.RunUntil([&] { return c.CountHoldingTable(owner, version) == n; }, t0 + 60 * kSecond,
                     10 * kMs))
      to_all.push_back((net.NowNs() - t0) / 1e9);
    net.RunFor(2 * kSecond);
  }

  // Killed nodes: until every other node declares them dead.
  std::vector<double> detect, first_dead;
  for (int k = 0; k < o.kills; k++) {
    size_t victim = (k * 104729 + 101) % n;
    size_t deaths_before = c.deaths().size();
    int64_t t0 = net.NowNs();
    c.Kill(victim);
    if (net.RunUntil([&] { return c.AllSee(victim, MemberState::kDead); }, t0 + 120 * kSecond,
                     100 * kMs))
      detect.push_back((net.NowNs() - t0) / 1e9);
    if (c.deaths().size() > deaths_before)
      first_dead.push_back((c.deaths()[deaths_before].at_ns - t0) / 1e9);
    net.RunFor(5 * kSecond);
  }

  // 10% loss on every packet for a while: nobody alive may be declared dead.
  size_t false_before = c.FalseDeaths();
  uint64_t suspicions_before = 0;
  for (size_t i = 0; i < n; i++)
    if (c.up(i)) suspicions_before += c.node(i).Stats().membership.suspicions;
  net.SetLoss(0.10);
  net.ResetCounters();
  net.RunFor(static_cast<int64_t>(o.loss_s * kSecond));
  Bandwidth lossy = Measure(c, o.loss_s);
  net.SetLoss(0);
  size_t false_positives = c.FalseDeaths() - false_before;
  uint64_t suspicions = 0, rescues = 0;  // rescues: over the whole run
  for (size_t i = 0; i < n; i++) {
    if (!c.up(i)) continue;
    MeshStats s = c.node(i).Stats();
    suspicions += s.membership.suspicions;
    rescues += s.membership.fallback_rescues;
  }
  suspicions -= std::min(suspicions, suspicions_before);
  double wall = std::chrono::duration<double>(Clock::now() - wall0).count();

  Reference ref = ReferenceFor(n);
  std::printf("\n== %zu nodes (virtual %.0f s, wall %.0f s, %lu events, max RSS %ld MiB)\n", n,
              net.NowNs() / 1e9, wall, static_cast<unsigned long>(net.events_run()), MaxRssMb());
  if (o.cold_join)
    std::printf("  cold join, 10 ms apart, until all see %zu alive: %.1f s\n", n, join_s);
  std::printf("  %-44s %-28s %s\n", "metric", "flowmesh", "reference / target");
  char buf[128];
  std::snprintf(buf, sizeof(buf), "median %.2f s, max %.2f s", Median(to_9999), MaxOf(to_9999));
  std::printf("  %-44s %-28s %s (Serf)\n", "new endpoint known by 99.99% of nodes", buf,
              ref.converge);
  std::snprintf(buf, sizeof(buf), "median %.2f s, max %.2f s", Median(to_all), MaxOf(to_all));
  std::printf("  %-44s %-28s\n", "... known by all nodes", buf);
  std::snprintf(buf, sizeof(buf), "median %.1f s, max %.1f s", Median(detect), MaxOf(detect));
  std::printf("  %-44s %-28s %s (memberlist); target <= 15 s at 1k\n",
              "killed node declared dead by all", buf, ref.detect);
  std::snprintf(buf, sizeof(buf), "median %.1f s", Median(first_dead));
  std::printf("  %-44s %-28s\n", "... first declared dead by someone", buf);
  std::snprintf(buf, sizeof(buf), "%zu (%lu suspicions, %lu rescued)", false_positives,
                static_cast<unsigned long>(suspicions), static_cast<unsigned long>(rescues));
  std::printf("  %-44s %-28s 0 (target)\n", "false positives, 10% loss", buf);
  std::snprintf(buf, sizeof(buf), "%.0f s", o.loss_s);
  std::printf("  %-44s %-28s\n", "... over", buf);
  std::snprintf(buf, sizeof(buf), "mean %.2f, p99 %.2f, max %.2f", quiet.out_mean, quiet.out_p99,
                quiet.out_max);
  std::printf("  %-44s %-28s %s; target < 20 KB/s at 10k\n", "KB/s sent per node, steady", buf,
              ref.bandwidth);
  std::snprintf(buf, sizeof(buf), "mean %.2f, max %.2f", quiet.all_mean, quiet.all_max);
  std::printf("  %-44s %-28s\n", "KB/s sent+received per node, steady", buf);
  std::snprintf(buf, sizeof(buf), "mean %.2f, p99 %.2f, max %.2f", lossy.out_mean, lossy.out_p99,
                lossy.out_max);
  std::printf("  %-44s %-28s\n", "KB/s sent per node, 10% loss", buf);
  std::fflush(stdout);
}

}  // namespace
}  // namespace flowmesh::mesh

int main(int argc, char** argv) {
  using namespace flowmesh::mesh;
  Options o;
  CLI::App app{"Mesh membership and endpoint gossip on a simulated network"};
  app.add_option("--nodes", o.nodes, "mesh sizes to run")->delimiter(',');
  app.add_option("--seed", o.seed, "simulation seed");
  app.add_option("--trials", o.endpoint_trials, "new-endpoint trials per size");
  app.add_option("--kills", o.kills, "nodes killed one after the other per size");
  app.add_option("--window", o.window_s, "steady-state bandwidth window, virtual seconds");
  app.add_option("--loss-seconds", o.loss_s, "virtual seconds under 10% loss");
  app.add_flag("--cold-join", o.cold_join,
               "also time N nodes joining (slow beyond a few thousand)");
  CLI11_PARSE(app, argc, argv);
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  std::printf(
      "mesh_sim: memberlist LAN timing (probe 1 s/500 ms, 3 indirect, gossip 200 ms x 3, "
      "suspicion mult 4, retransmit mult 4, push-pull 30 s scaled); 1-5 ms links\n");
  for (size_t n : o.nodes) RunOne(n, o);
  return 0;
}
