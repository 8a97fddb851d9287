// meshctl status: the streaming probe's BPF maps, their kernel memory and when they were full.
#include <string>

#include "cli/format/format.h"
#include "cli/format/format_internal.h"
#include "node/control/control_types.h"

namespace flowmesh::format_internal {
namespace {

uint64_t Detail(const ProbeStats& p, std::string_view name) {
  for (const auto& [n, v] : p.detail)
    if (n == name) return v;
  return 0;
}

uint64_t Capacity(const ProbeStats& p, std::string_view name) {
  for (const BpfMapUsage& m : p.bpf_maps)
    if (m.name == name) return m.max_entries;
  return 0;
}

// A full table loses a process, not an event: the connection is recorded
// without its pid. Said with the flag that makes room.
struct FullTable {
  const char* map;
  const char* counter;
  const char* what;
  const char* flag;
};
constexpr FullTable kFullTables[] = {
    {"socks", "lost_sockmap", "connections recorded without their process", "--max-connections"},
    {"listeners", "lost_listenmap", "listeners not remembered", "--max-listeners"},
};

}  // namespace

std::string BpfMapsText(const ProbeStats& p) {
  if (p.bpf_maps.empty()) return "";
  uint64_t total = 0;
  std::string each;
  for (const BpfMapUsage& m : p.bpf_maps) {
    total += m.memlock_bytes;
    each += (each.empty() ? "" : ", ") + TerminalSafe(m.name) + " " + HumanBytes(m.memlock_bytes);
  }
  std::string out =
      Printf("%-12s %s locked (%s)\n", "bpf maps", HumanBytes(total).c_str(), each.c_str());
  if (const uint64_t lost = Detail(p, "lost_ringbuf"); lost > 0)
    out += Printf(
        "%-12s events full: %llu events lost (meshd fell behind the kernel); raise "
        "--ring-buffer-size (now %s, the most it held %s)\n",
        "ring full", static_cast<unsigned long long>(lost),
        HumanBytes(Capacity(p, "events")).c_str(),
        HumanBytes(Detail(p, "ring_high_water_bytes")).c_str());
  for (const FullTable& t : kFullTables) {
    const uint64_t lost = Detail(p, t.counter);
    if (lost == 0) continue;
    out += Printf("%-12s %s full: %llu %s; raise %s (now %llu)\n", "map full", t.map,
                  static_cast<unsigned long long>(lost), t.what, t.flag,
                  static_cast<unsigned long long>(Capacity(p, t.map)));
  }
  return out;
}

std::string BpfMapsJson(const ProbeStats& p) {
  if (p.bpf_maps.empty()) return "null";
  uint64_t total = 0;
  std::string maps = "[";
  for (const BpfMapUsage& m : p.bpf_maps) {
    total += m.memlock_bytes;
    JsonObject o;
    o.Str("name", m.name).Uint("memlock_bytes", m.memlock_bytes).Uint("max_entries", m.max_entries);
    maps += (maps.size() > 1 ? "," : "") + std::move(o).Finish();
  }
  JsonObject o;
  o.Uint("memlock_bytes", total).Raw("maps", maps + "]");
  return std::move(o).Finish();
}

}  // namespace flowmesh::format_internal
