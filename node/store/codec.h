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
