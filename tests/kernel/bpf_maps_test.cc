// The streaming probe's BPF maps as the kernel holds them: sized as asked, the hash tables
// not preallocated, their memory as the kernel reports it, and a full socket table counted
// and shown by meshctl status with the flag that makes room.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "node/probe/bpf_probe.h"
#include "tests/kernel/kernel_test_util.h"
#include "tests/kernel/meshd_util.h"
#include "tests/kernel/traffic_util.h"

namespace flowmesh {
namespace {

// What the kernel says of one map, through a descriptor of our own (not the probe's).
struct KernelMap {
  bpf_map_info info{};
  uint64_t memlock = 0;  // /proc/self/fdinfo/<fd>
};

uint64_t FdinfoMemlock(int fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(fd));
  for (std::string line; std::getline(in, line);)
    if (line.rfind("memlock:", 0) == 0) return std::stoull(line.substr(8));
  return 0;
}

// The maps the attached program uses, by name, read back by id.
std::map<std::string, KernelMap> MapsOf(uint32_t prog_id) {
  std::map<std::string, KernelMap> out;
  int prog = bpf_prog_get_fd_by_id(prog_id);
  EXPECT_GE(prog, 0) << "program " << prog_id;
  if (prog < 0) return out;
  uint32_t ids[16] = {};
  bpf_prog_info pinfo{};
  pinfo.nr_map_ids = 16;
  pinfo.map_ids = reinterpret_cast<uint64_t>(ids);
  uint32_t len = sizeof pinfo;
  EXPECT_EQ(bpf_obj_get_info_by_fd(prog, &pinfo, &len), 0);
  close(prog);
  for (uint32_t i = 0; i < pinfo.nr_map_ids && i < 16; i++) {
    int fd = bpf_map_get_fd_by_id(ids[i]);
    if (fd < 0) continue;
    KernelMap m;
    uint32_t mlen = sizeof m.info;
    if (bpf_obj_get_info_by_fd(fd, &m.info, &mlen) == 0) {
      m.memlock = FdinfoMemlock(fd);
      out[m.info.name] = m;
    }
    close(fd);
  }
  return out;
}

const BpfMapUsage* Usage(const ProbeStats& st, const std::string& name) {
  for (const BpfMapUsage& m : st.bpf_maps)
    if (m.name == name) return &m;
  return nullptr;
}

class BpfMaps : public ::testing::TestWithParam<BpfAttach> {};

TEST_P(BpfMaps, SizedAsAskedNotPreallocatedAndTheirMemoryReported) {
  FM_REQUIRE_ROOT();
  BpfProbeOptions opts;
  opts.attach = GetParam();
  opts.ring_bytes = 1 << 20;
  opts.max_connections = 4096;
  opts.max_listeners = 512;
  BpfProbe probe(opts);
  Status s = probe.Init();
  ASSERT_TRUE(s.ok()) << s.message();

  std::map<std::string, KernelMap> maps = MapsOf(probe.ProgramId());
  ASSERT_TRUE(maps.count("events") && maps.count("socks") && maps.count("listeners"))
      << maps.size() << " maps";
  EXPECT_EQ(maps["events"].info.type, BPF_MAP_TYPE_RINGBUF);
  EXPECT_EQ(maps["events"].info.max_entries, 1u << 20);
  for (const char* table : {"socks", "listeners"}) {
    EXPECT_EQ(maps[table].info.type, BPF_MAP_TYPE_HASH) << table;
    EXPECT_TRUE(maps[table].info.map_flags & BPF_F_NO_PREALLOC) << table;
  }
  EXPECT_EQ(maps["socks"].info.max_entries, 4096u);
  EXPECT_EQ(maps["listeners"].info.max_entries, 512u);

  // The probe reports what the kernel reports, for every map it created.
  ProbeStats st = probe.Stats();
  for (const char* name : {"events", "socks", "listeners", "bss", "rodata"})
    ASSERT_NE(Usage(st, name), nullptr) << name;
  EXPECT_EQ(Usage(st, "events")->memlock_bytes, maps["events"].memlock);
  EXPECT_GE(Usage(st, "events")->memlock_bytes, 1u << 20);
  EXPECT_EQ(Usage(st, "socks")->max_entries, 4096u);
  EXPECT_EQ(Usage(st, "listeners")->max_entries, 512u);
  // Preallocated, 4096 sockets would take over 4096 * 64 bytes of keys and values alone.
  const uint64_t idle = Usage(st, "socks")->memlock_bytes;
  EXPECT_LT(idle, 4096u * 64) << "the socket table looks preallocated";

  // Entries take memory as they come: 300 connections held are 600 sockets (both ends),
  // each at least its key and value (8 + 56 bytes).
  testing::Loopback net;
  ASSERT_TRUE(net.Hold(300));
  const uint64_t held = Usage(probe.Stats(), "socks")->memlock_bytes;
  EXPECT_GE(held, idle + 600u * 64) << "idle " << idle << ", held " << held;
  net.CloseHeld();
}

INSTANTIATE_TEST_SUITE_P(AttachTypes, BpfMaps, ::testing::Values(BpfAttach::kBtf, BpfAttach::kRaw),
                         [](const auto& info) {
                           return info.param == BpfAttach::kRaw ? "RawTp" : "TpBtf";
                         });

// Held connections past a tiny --max-connections: the sockets that found the table full
// are counted, and meshctl status says so with the flag to raise, as text and JSON.
TEST(BpfMapsMeshd, AFullSocketTableIsCountedAndShownWithTheFlagToRaise) {
  FM_REQUIRE_ROOT();
  testing::Loopback net;
  testing::MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--ports", std::to_string(net.port()),
                           "--max-connections", "16", "--max-listeners", "16"},
                          &err))
      << err;
  ASSERT_TRUE(net.Hold(20));  // 40 sockets for 16 slots
  // Connections are still recorded, only without a process: wait for the 40 ends held
  // (another connection on the host may use the port as its own: at least 40).
  testing::JsonLine s;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < deadline;) {
    ASSERT_TRUE(testing::ParseFlatJson(meshd.Meshctl({"status", "--json"}).out, &s));
    if (std::stoull(s["opens"]) >= 40) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_GE(std::stoull(s["opens"]), 40u) << meshd.Meshctl({"status"}).out;
  testing::JsonLine detail;
  ASSERT_TRUE(testing::ParseFlatJson(s["detail"], &detail)) << s["detail"];
  // At least the 40 - 16 held ends that did not fit (other sockets on the host may take
  // slots too: SYN_SENT is remembered before the port is known).
  EXPECT_GE(std::stoull(detail["lost_sockmap"]), 24u) << s["detail"];
  EXPECT_NE(s["bpf_maps"].find("{\"name\":\"socks\","), std::string::npos) << s["bpf_maps"];
  EXPECT_NE(s["bpf_maps"].find("\"max_entries\":16}"), std::string::npos) << s["bpf_maps"];
  const std::string text = meshd.Meshctl({"status"}).out;
  EXPECT_NE(text.find("map full     socks full: "), std::string::npos) << text;
  EXPECT_NE(text.find("raise --max-connections (now 16)"), std::string::npos) << text;
  EXPECT_NE(text.find("bpf maps     "), std::string::npos) << text;
  net.CloseHeld();
  EXPECT_EQ(meshd.Stop(), 0) << meshd.Log();
}

// Listeners that exist before meshd starts are seeded into the listener table;
// past --max-listeners each one that did not fit is counted where the kernel
// counts its own (lost_listenmap, the `map full` row) and said once in the log.
TEST(BpfMapsMeshd, ListenersSeededPastTheTableAreCountedAndSaidOnce) {
  FM_REQUIRE_ROOT();
  std::vector<int> fds;
  for (int i = 0; i < 24; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    fds.push_back(fd);
  }
  testing::MeshdProcess meshd;
  std::string err;
  ASSERT_TRUE(meshd.Start({"--probe-mode", "streaming", "--max-listeners", "16"}, &err)) << err;
  testing::JsonLine s, detail;
  ASSERT_TRUE(testing::ParseFlatJson(meshd.Meshctl({"status", "--json"}).out, &s));
  ASSERT_TRUE(testing::ParseFlatJson(s["detail"], &detail)) << s["detail"];
  // At least the 24 - 16 of ours (the host's own listeners take slots too).
  EXPECT_GE(std::stoull(detail["lost_listenmap"]), 8u) << s["detail"];
  EXPECT_NE(meshd.Meshctl({"status"}).out.find("raise --max-listeners (now 16)"),
            std::string::npos);
  for (int fd : fds) close(fd);
  EXPECT_EQ(meshd.Stop(), 0);
  const std::string log = meshd.Log();
  const std::string said = "did not fit the listener table (--max-listeners 16)";
  EXPECT_NE(log.find(said), std::string::npos) << log;
  EXPECT_EQ(log.find(said), log.rfind(said)) << "said once, not once per listener";
}

}  // namespace
}  // namespace flowmesh
