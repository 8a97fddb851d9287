// A store written before cgroup ids and workloads (record formats 1 and 2,
// process, endpoint and listen period format 1) opened by this meshd: every
// old value reads back, with cgroup id 0 and no workload, beside new values
// written in the new formats. A migration value by value, never a wipe.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <string>

#include "node/store/codec.h"
#include "node/store/keys.h"
#include "tests/unit/store_test_util.h"

namespace flowmesh {
namespace {

using namespace flowmesh::testing;

// The encoders as meshd had them before cgroup ids, kept here byte for byte
// so the test keeps writing what real old stores hold whatever codec.cc
// becomes.
namespace old {

void Signed(std::string* out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void String(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Format 1, or 2 with the flags varint when the record was reconstructed.
std::string Record(const ConnRecord& r) {
  std::string out(1, r.reconstructed ? 2 : 1);
  out.push_back(static_cast<char>(r.direction));
  PutVarint(&out, r.key.netns);
  PutAddr(&out, r.key.laddr);
  PutBigEndian16(&out, r.key.lport);
  PutAddr(&out, r.key.raddr);
  PutBigEndian16(&out, r.key.rport);
  PutVarint(&out, r.proc.pid);
  PutVarint(&out, r.proc.start_ticks);
  for (uint64_t v : {r.counters.bytes_tx, r.counters.bytes_rx, uint64_t{r.counters.segs_out},
                     uint64_t{r.counters.segs_in}, uint64_t{r.counters.retrans},
                     uint64_t{r.counters.rtt_us}, uint64_t{r.counters.rttvar_us}, r.duration_ns})
    PutVarint(&out, v);
  if (r.reconstructed) PutVarint(&out, 1);
  return out;
}

std::string Process(const ProcessDetails& p, int64_t last_seen_ns) {
  std::string out(1, 1);
  Signed(&out, last_seen_ns);
  PutVarint(&out, p.pgid);
  PutVarint(&out, p.ppid);
  String(&out, p.comm);
  String(&out, p.exe);
  return out;
}

std::string Endpoint(const EndpointRecord& e) {
  std::string out(1, 1);
  PutVarint(&out, e.proc.pid);
  PutVarint(&out, e.proc.start_ticks);
  Signed(&out, e.since_ns);
  String(&out, e.proc.comm_view());
  return out;
}

std::string ListenPeriod(const flowmesh::ListenPeriod& p) {
  std::string out(1, 1);
  PutVarint(&out, p.endpoint.proc.pid);
  PutVarint(&out, p.endpoint.proc.start_ticks);
  Signed(&out, p.until_ns);
  String(&out, p.endpoint.proc.comm_view());
  return out;
}

}  // namespace old

uint8_t FormatOf(RawStore& raw, const std::string& cf, const std::string& key) {
  std::string value;
  EXPECT_TRUE(raw.db().Get({}, raw.cf(cf), key, &value).ok()) << cf;
  return value.empty() ? 0 : static_cast<uint8_t>(value[0]);
}

TEST(StoreMigration, OldValuesReadBackBesideNewOnes) {
  TempDir dir;
  // The column families, as an old meshd made them.
  { ASSERT_TRUE(MustOpen(TestOptions(dir.path()))); }

  ConnRecord old_plain = MakeRecord(kT0, 300, 40000, 80);
  ConnRecord old_flagged = MakeRecord(kT0 + kSec, 301, 40001, 80);
  old_flagged.reconstructed = true;
  const ProcessDetails old_proc = MakeProcess(300, "curl");
  const EndpointRecord old_listener = MakeListener(8080, 302, kT0);
  {
    RawStore raw(dir.path());
    auto put = [&](const char* cf, const std::string& key, const std::string& value) {
      ASSERT_TRUE(raw.db().Put({}, raw.cf(cf), key, value).ok()) << cf;
    };
    put("records", RecordKey(old_plain.ts_ns, old_plain.key), old::Record(old_plain));
    put("records", RecordKey(old_flagged.ts_ns, old_flagged.key), old::Record(old_flagged));
    put("processes", ProcessKey(old_proc.pid, old_proc.start_ticks), old::Process(old_proc, kT0));
    put("endpoints", EndpointKey(old_listener.netns, old_listener.addr, old_listener.port),
        old::Endpoint(old_listener));
    put("listen_history",
        ListenPeriodKey(old_listener.netns, old_listener.addr, old_listener.port, kT0),
        old::ListenPeriod({old_listener, 0}));
  }

  ConnRecord fresh = MakeRecord(kT0 + 2 * kSec, 303, 40002, 80);
  fresh.proc.cgroup_id = 0x1'0000'0042;
  ProcessDetails fresh_proc = MakeProcess(303, "python3");
  fresh_proc.cgroup_id = fresh.proc.cgroup_id;
  fresh_proc.workload = SamplePodContainer();
  EndpointRecord fresh_listener = MakeListener(80, 304, kT0 + kSec);
  fresh_listener.proc.cgroup_id = 77;
  fresh_listener.workload = SampleUnit();
  {
    auto store = MustOpen(TestOptions(dir.path()));
    ASSERT_TRUE(store);
    Batch b;
    b.records = {fresh};
    b.processes = {fresh_proc};
    b.endpoints_added = {fresh_listener};
    ASSERT_TRUE(store->Write(b).ok());

    // Scans fill comm in from the processes CF.
    old_plain.proc.set_comm(old_proc.comm);
    fresh.proc.set_comm(fresh_proc.comm);
    std::vector<ConnRecord> records = ScanAll(*store);
    ASSERT_EQ(records.size(), 3u);
    EXPECT_EQ(records[0], old_plain);
    EXPECT_EQ(records[1], old_flagged);
    EXPECT_TRUE(records[1].reconstructed);
    EXPECT_EQ(records[2], fresh);
    EXPECT_EQ(records[0].proc.cgroup_id, 0u);
    EXPECT_EQ(records[1].proc.cgroup_id, 0u);
    EXPECT_EQ(records[2].proc.cgroup_id, fresh.proc.cgroup_id);

    auto p = store->Process(old_proc.pid, old_proc.start_ticks);
    ASSERT_TRUE(p.ok() && p->has_value()) << p.status().message();
    EXPECT_EQ(**p, old_proc);  // cgroup id 0, no workload
    auto q = store->Process(fresh_proc.pid, fresh_proc.start_ticks);
    ASSERT_TRUE(q.ok() && q->has_value()) << q.status().message();
    EXPECT_EQ(**q, fresh_proc);

    auto endpoints = store->Endpoints();
    ASSERT_TRUE(endpoints.ok()) << endpoints.status().message();
    ASSERT_EQ(endpoints->size(), 2u);
    for (const EndpointRecord& e : *endpoints) {
      const EndpointRecord& want = e.port == 80 ? fresh_listener : old_listener;
      EXPECT_EQ(e, want);
      EXPECT_EQ(e.proc.comm_view(), want.proc.comm_view());
      EXPECT_EQ(e.proc.cgroup_id, want.proc.cgroup_id);
      EXPECT_EQ(e.workload, want.workload);
    }

    auto periods = store->ListenHistory({});
    ASSERT_TRUE(periods.ok()) << periods.status().message();
    ASSERT_EQ(periods->size(), 2u);
    for (const ListenPeriod& lp : *periods) {
      const EndpointRecord& want = lp.endpoint.port == 80 ? fresh_listener : old_listener;
      EXPECT_TRUE(lp.open());
      EXPECT_EQ(lp.endpoint, want);
      EXPECT_EQ(lp.endpoint.proc.cgroup_id, want.proc.cgroup_id);
      EXPECT_EQ(lp.endpoint.workload, want.workload);
    }
    EXPECT_EQ(store->Stats().corrupt_values, 0u);
  }

  // What this meshd wrote is in the new formats; the old values were read
  // in place, not rewritten.
  RawStore raw(dir.path());
  // A fresh record is in a block (format 16) of one record in format 3.
  EXPECT_EQ(FormatOf(raw, "records", RecordBlockKey(fresh.ts_ns, fresh.key)), 16);
  EXPECT_EQ(FormatOf(raw, "records", RecordKey(old_plain.ts_ns, old_plain.key)), 1);
  EXPECT_EQ(FormatOf(raw, "records", RecordKey(old_flagged.ts_ns, old_flagged.key)), 2);
  EXPECT_EQ(FormatOf(raw, "processes", ProcessKey(fresh_proc.pid, fresh_proc.start_ticks)), 2);
  EXPECT_EQ(FormatOf(raw, "processes", ProcessKey(old_proc.pid, old_proc.start_ticks)), 1);
  EXPECT_EQ(FormatOf(raw, "endpoints", EndpointKey(fresh_listener.netns, fresh_listener.addr, 80)),
            2);
  EXPECT_EQ(FormatOf(raw, "listen_history",
                     ListenPeriodKey(fresh_listener.netns, fresh_listener.addr, 80, kT0 + kSec)),
            2);
}

}  // namespace
}  // namespace flowmesh
