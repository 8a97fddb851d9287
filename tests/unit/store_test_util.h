// Helpers shared by the store's unit tests: a temporary directory, records
// and flows with chosen fields, collecting a scan, and raw access behind the
// store's back.
#pragma once

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "node/store/merge_operators.h"
#include "node/store/store.h"
#include "tests/unit/workload_samples.h"

namespace flowmesh::testing {

// A minute-aligned time well after the epoch, so buckets are easy to reason about.
inline constexpr int64_t kT0 = 1'700'000'040'000'000'000;
inline constexpr int64_t kSec = 1'000'000'000;
inline constexpr int64_t kMin = 60 * kSec;
static_assert(kT0 % kFlowBucketNs == 0);

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/flowmesh_store_XXXXXX";
    const char* p = mkdtemp(tmpl);
    if (p) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline StoreOptions TestOptions(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.retention_interval_ns = 0;  // tests call EnforceRetention themselves
  return o;
}

inline std::unique_ptr<Store> MustOpen(const StoreOptions& o) {
  auto s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

inline ConnRecord MakeRecord(int64_t ts_ns, uint32_t pid, uint16_t lport, uint16_t rport,
                             bool v6 = false) {
  ConnRecord r;
  r.ts_ns = ts_ns;
  r.key.netns = 4026531840u;
  if (v6) {
    uint8_t l[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t rr[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    r.key.laddr = IpAddr::V6(l);
    r.key.raddr = IpAddr::V6(rr);
  } else {
    r.key.laddr = IpAddr::V4(10, 213, 0, 1);
    r.key.raddr = IpAddr::V4(10, 213, 0, static_cast<uint8_t>(2 + pid % 200));
  }
  r.key.lport = lport;
  r.key.rport = rport;
  r.direction = lport < 1024 ? Direction::kPassive : Direction::kActive;
  r.proc.pid = pid;
  r.proc.start_ticks = 1000 + pid;
  r.counters = {.bytes_tx = 100u + pid,
                .bytes_rx = 5000,
                .segs_out = 7,
                .segs_in = 9,
                .retrans = 1,
                .rtt_us = 250,
                .rttvar_us = 40};
  r.duration_ns = 1'500'000;
  return r;
}

inline ProcessDetails MakeProcess(uint32_t pid, const std::string& comm) {
  return {.pid = pid,
          .start_ticks = 1000 + pid,
          .pgid = pid,
          .ppid = 1,
          .comm = comm,
          .exe = "/usr/bin/" + comm,
          .cgroup_id = 0,
          .workload = {}};
}

// A listener of `pid` (start_ticks 1000 + pid, comm "srv<pid>") on addr:port.
inline EndpointRecord MakeListener(uint16_t port, uint32_t pid, int64_t since,
                                   IpAddr addr = IpAddr::V4(0, 0, 0, 0)) {
  EndpointRecord e;
  e.netns = 4026531840u;
  e.addr = addr;
  e.port = port;
  e.proc.pid = pid;
  e.proc.start_ticks = 1000 + pid;
  e.proc.set_comm("srv" + std::to_string(pid));
  e.since_ns = since;
  return e;
}

inline FlowKey MakeFlowKey(uint32_t pid, uint16_t rport) {
  FlowKey k;
  k.direction = Direction::kActive;
  k.netns = 4026531840u;
  k.pid = pid;
  k.start_ticks = 1000 + pid;
  k.laddr = IpAddr::V4(10, 213, 0, 1);
  k.raddr = IpAddr::V4(10, 213, 0, 9);
  k.rport = rport;
  return k;
}

inline FlowStats MakeStats(uint64_t connections, uint64_t bytes_tx, int64_t seen_ns) {
  FlowStats s;
  s.connections = connections;
  s.bytes_tx = bytes_tx;
  s.first_seen_ns = seen_ns;
  s.last_seen_ns = seen_ns;
  return s;
}

inline std::vector<ConnRecord> ScanAll(const Store& store, TimeWindow w = {}, RecordFilter f = {}) {
  std::vector<ConnRecord> out;
  Status s = store.ScanRecords(w, f, [&](const ConnRecord& r) {
    out.push_back(r);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

// Raw RocksDB access to the store's column families, behind its back.
class RawStore {
 public:
  explicit RawStore(const std::string& dir) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir, &names).ok());
    auto corrupt = std::make_shared<std::atomic<uint64_t>>(0);
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const auto& n : names) {
      rocksdb::ColumnFamilyOptions o;
      if (n == "flows") o.merge_operator = MakeFlowStatsMerge(corrupt);
      if (n == "meta") o.merge_operator = MakeCountMerge(corrupt);
      cfs.emplace_back(n, o);
    }
    rocksdb::DB* raw = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open({}, dir, cfs, &handles_, &raw).ok());
    db_.reset(raw);
  }
  ~RawStore() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) {
    for (auto* h : handles_)
      if (h->GetName() == name) return h;
    return nullptr;
  }
  rocksdb::DB& db() { return *db_; }

 private:
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace flowmesh::testing
