// Order-preserving RocksDB keys for the store's column families: big-endian
// fixed-width integers, so byte order is time order and range scans and
// DeleteRange work on whole minute buckets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/flow/flow.h"

namespace flowmesh {

// Big-endian helpers shared with codec.cc. Negative timestamps clamp to 0:
// nothing meshd stores predates the epoch, and unsigned order is then time order.
void PutBigEndian16(std::string* out, uint16_t v);
void PutBigEndian32(std::string* out, uint32_t v);
void PutBigEndian64(std::string* out, uint64_t v);
void PutTime(std::string* out, int64_t ts_ns);
uint16_t GetBigEndian16(const char* p);
uint32_t GetBigEndian32(const char* p);
uint64_t GetBigEndian64(const char* p);
// Family byte (0, AF_INET or AF_INET6) then 0, 4 or 16 address bytes.
void PutAddr(std::string* out, const IpAddr& addr);
// Reads one PutAddr encoding at *pos and advances it; false if truncated or
// the family is unknown.
bool GetAddr(std::string_view in, size_t* pos, IpAddr* addr);

// --- records: close ts (8) + 32-bit hash of the ConnKey (4). The hash makes
// rewriting a record idempotent and keeps two closes in the same ns apart.
// A store of before holds such a key per record; meshd now writes blocks:
// the key of a block's first record and one more byte, kRecordBlockMark. A
// block's records are in time order, lie in one flow bucket (retention cuts
// at buckets) and within kRecordBlockSpanNs of the first, so a window scan
// seeks that much before its start; at most kMaxRecordsPerBlock of them.
inline constexpr size_t kRecordKeySize = 12;
inline constexpr size_t kRecordBlockKeySize = 13;
inline constexpr char kRecordBlockMark = 'b';
inline constexpr int64_t kRecordBlockSpanNs = 100'000'000;
inline constexpr size_t kMaxRecordsPerBlock = 256;
uint32_t ConnKeyHash32(const ConnKey& key);  // FNV-1a, stable across builds
std::string RecordKey(int64_t ts_ns, const ConnKey& key);
std::string RecordBlockKey(int64_t first_ts_ns, const ConnKey& first);
// Sorts before every record key of `ts_ns` (and after all earlier ones).
std::string RecordKeyAt(int64_t ts_ns);
struct RecordKeyParts {
  int64_t ts_ns = 0;
  uint32_t hash = 0;
  bool block = false;
};
Result<RecordKeyParts> DecodeRecordKey(std::string_view key);

// --- flows: level (1) + bucket (8) + direction, netns, pid, start_ticks,
// laddr, lport, raddr, rport. Level 0 holds the minute buckets; levels 1 and
// 2 hold the finished minutes summed per 10 minutes and per hour, so a long
// window reads a few coarse buckets instead of every minute of it.
inline constexpr int kFlowLevels = 3;
inline constexpr int64_t kFlowLevelNs[kFlowLevels] = {kFlowBucketNs, 10 * kFlowBucketNs,
                                                      60 * kFlowBucketNs};
inline int64_t FlowLevelBucketOf(int level, int64_t ts_ns) {
  return ts_ns <= 0 ? 0 : ts_ns - ts_ns % kFlowLevelNs[level];
}
std::string FlowRowKey(int level, int64_t bucket_ns, const FlowKey& key);
std::string FlowBucketKey(int level, int64_t bucket_ns);  // the 9-byte prefix of a bucket
struct FlowRowKeyParts {
  int level = 0;
  int64_t bucket_ns = 0;
  FlowKey key;
};
// False if malformed; no allocation, for scans over many rows.
bool ParseFlowRowKey(std::string_view key, FlowRowKeyParts* out);
Result<FlowRowKeyParts> DecodeFlowRowKey(std::string_view key);

// --- processes: pid (4) + start_ticks (8).
std::string ProcessKey(uint32_t pid, uint64_t start_ticks);
struct ProcessKeyParts {
  uint32_t pid = 0;
  uint64_t start_ticks = 0;
};
Result<ProcessKeyParts> DecodeProcessKey(std::string_view key);

// --- endpoints: netns (4) + address + port (2).
std::string EndpointKey(uint32_t netns, const IpAddr& addr, uint16_t port);
struct EndpointKeyParts {
  uint32_t netns = 0;
  IpAddr addr;
  uint16_t port = 0;
};
Result<EndpointKeyParts> DecodeEndpointKey(std::string_view key);

// --- listen_history: netns (4) + address + port (2) + since (8), i.e. the
// endpoint's EndpointKey followed by when the period began. One endpoint's
// periods are adjacent, oldest first, and a prefix scan finds its open one.
// The value (codec.h) holds the owner and when the period ended.
std::string ListenPeriodKey(uint32_t netns, const IpAddr& addr, uint16_t port, int64_t since_ns);
struct ListenPeriodKeyParts {
  EndpointKeyParts endpoint;
  int64_t since_ns = 0;
};
Result<ListenPeriodKeyParts> DecodeListenPeriodKey(std::string_view key);

// --- meta: one prefix byte keeps the store's own keys, the per-bucket record
// counts and the free-form keys of PutMeta apart.
inline constexpr char kMetaCountPrefix = 'c';
inline constexpr char kMetaCheckpointPrefix = 'k';
inline constexpr char kMetaUserPrefix = 'u';
inline constexpr std::string_view kMetaNodeIdKey = "n/node_id";
inline constexpr std::string_view kMetaGenerationKey = "n/generation";
// Retention's last cut: data before it is gone, so flow reads start there
// (a coarse bucket that straddles it still holds expired minutes).
inline constexpr std::string_view kMetaExpiredBeforeKey = "n/expired_before";
// Minute buckets before this are summed into the 10-minute and hour buckets
// too (see store_rollup.cc).
inline constexpr std::string_view kMetaRolledUpToKey = "n/rolled_up_to";
// The newest time the store vouches that meshd was watching: the time of its
// last batch, or of its last clean shutdown. A restart closes the listen
// periods that the start-up snapshot no longer has at this time.
inline constexpr std::string_view kMetaWatchedUntilKey = "n/watched_until";
std::string CountKey(int64_t bucket_ns);  // 'c' + bucket (8)
Result<int64_t> DecodeCountKey(std::string_view key);
// A flow checkpoint (Batch::checkpoints): every connection open when this
// bucket began is carried into it. Empty value.
std::string CheckpointKey(int64_t bucket_ns);  // 'k' + bucket (8)
Result<int64_t> DecodeCheckpointKey(std::string_view key);
std::string UserMetaKey(std::string_view key);

}  // namespace flowmesh
