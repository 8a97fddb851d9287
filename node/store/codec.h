// Compact value encodings for the store: varints, a leading format byte, and
// no comm in records (comm lives once per process in the processes column
// family). Decoders reject anything malformed with an error, never crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/common/status.h"
#include "node/flow/flow.h"
#include "node/store/keys.h"
#include "node/store/store.h"

namespace flowmesh {

// Varint (LEB128) helpers, also used by the merge operators.
void PutVarint(std::string* out, uint64_t v);
// Reads one varint at *pos and advances it; false if truncated or over 10 bytes.
bool GetVarintSlow(std::string_view in, size_t* pos, uint64_t* v);
inline bool GetVarint(std::string_view in, size_t* pos, uint64_t* v) {
  // Most fields of a record (ports, flags, small counters) fit one byte;
  // scans decode hundreds of thousands of records.
  if (*pos < in.size() && !(static_cast<uint8_t>(in[*pos]) & 0x80)) {
    *v = static_cast<uint8_t>(in[(*pos)++]);
    return true;
  }
  return GetVarintSlow(in, pos, v);
}

// Everything but ts_ns (in the key) and proc.comm (in the processes CF).
std::string EncodeRecordValue(const ConnRecord& r);
// The same into *out (cleared first), so a writer can reuse one buffer.
void EncodeRecordValueTo(const ConnRecord& r, std::string* out);
// The record with ts_ns set and comm empty; the caller fills comm.
Result<ConnRecord> DecodeRecordValue(int64_t ts_ns, std::string_view value);
// The same into *r, without allocating (scans); false if malformed, and *r
// is then partly overwritten.
bool ParseRecordValue(int64_t ts_ns, std::string_view value, ConnRecord* r);

// Records are written in blocks, one key per run (keys.h RecordBlockKey):
// RocksDB's cost is per key (the memtable insert, the flush and compaction
// comparisons), and one key per record was most of meshd's CPU at churn.
// Appends `r` to *block (empty: a new block), whose key has time key_ts_ns;
// r.ts_ns must lie in [key_ts_ns, key_ts_ns + kRecordBlockSpanNs].
void AppendToRecordBlock(int64_t key_ts_ns, const ConnRecord& r, std::string* block);

// Reads a block's records in order, each with ts_ns set and comm empty.
class RecordBlockReader {
 public:
  RecordBlockReader(int64_t key_ts_ns, std::string_view value);
  // The next record into *r; false at the end, or when the rest is malformed.
  bool Next(ConnRecord* r);
  bool malformed() const { return malformed_; }

 private:
  int64_t key_ts_ns_;
  std::string_view value_;
  size_t pos_;
  bool malformed_;
};

// How many records a block holds; 0 if it is malformed.
size_t CountRecordBlock(int64_t key_ts_ns, std::string_view value);

std::string EncodeFlowStats(const FlowStats& s);
Result<FlowStats> DecodeFlowStats(std::string_view value);

// A process as stored: its details and when a batch last mentioned it, which
// is what retention judges it by.
struct StoredProcess {
  ProcessDetails details;
  int64_t last_seen_ns = 0;
};
std::string EncodeProcessValue(const ProcessDetails& p, int64_t last_seen_ns);
Result<StoredProcess> DecodeProcessValue(const ProcessKeyParts& key, std::string_view value);

// Endpoints keep their owner's comm, cgroup id and workload: the table is
// small and gossiped, and the owner may be long gone from the processes CF.
std::string EncodeEndpointValue(const EndpointRecord& e);
Result<EndpointRecord> DecodeEndpointValue(const EndpointKeyParts& key, std::string_view value);

// A listen period: owner, end (0 = open) and the owner's comm, cgroup id and
// workload, for the same reason endpoints keep them. Refused: an end before the start.
std::string EncodeListenPeriodValue(const ListenPeriod& p);
Result<ListenPeriod> DecodeListenPeriodValue(const ListenPeriodKeyParts& key,
                                             std::string_view value);

// Per-bucket record counts: a single varint, summed by the meta merge operator.
std::string EncodeCount(uint64_t n);
Result<uint64_t> DecodeCount(std::string_view value);

}  // namespace flowmesh
