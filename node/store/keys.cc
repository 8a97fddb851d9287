// Order-preserving key encodings for the store's column families.
#include "node/store/keys.h"

#include <sys/socket.h>

namespace flowmesh {
namespace {

Status BadKey(std::string_view what, std::string_view key) {
  return {Status::Code::kCorruption,
          "malformed " + std::string(what) + " key of " + std::to_string(key.size()) + " bytes"};
}

size_t AddrBytes(uint16_t family) {
  switch (family) {
    case 0: return 0;
    case AF_INET: return 4;
    case AF_INET6: return 16;
    default: return SIZE_MAX;
  }
}

}  // namespace

void PutBigEndian16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

void PutBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void PutBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void PutTime(std::string* out, int64_t ts_ns) {
  PutBigEndian64(out, ts_ns < 0 ? 0 : static_cast<uint64_t>(ts_ns));
}

uint16_t GetBigEndian16(const char* p) {
  auto u = reinterpret_cast<const uint8_t*>(p);
  return static_cast<uint16_t>((u[0] << 8) | u[1]);
}

uint32_t GetBigEndian32(const char* p) {
  auto u = reinterpret_cast<const uint8_t*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

uint64_t GetBigEndian64(const char* p) {
  return (uint64_t{GetBigEndian32(p)} << 32) | GetBigEndian32(p + 4);
}

void PutAddr(std::string* out, const IpAddr& addr) {
  size_t n = AddrBytes(addr.family);
  if (n == SIZE_MAX) {  // not a family meshd produces; keep the key well-formed
    out->push_back(0);
    return;
  }
  out->push_back(static_cast<char>(addr.family));
  out->append(reinterpret_cast<const char*>(addr.bytes.data()), n);
}

bool GetAddr(std::string_view in, size_t* pos, IpAddr* addr) {
  if (*pos >= in.size()) return false;
  uint16_t family = static_cast<uint8_t>(in[*pos]);
  size_t n = AddrBytes(family);
  if (n == SIZE_MAX || in.size() - *pos - 1 < n) return false;
  *addr = IpAddr{};
  addr->family = family;
  std::memcpy(addr->bytes.data(), in.data() + *pos + 1, n);
  *pos += 1 + n;
  return true;
}

uint32_t ConnKeyHash32(const ConnKey& key) {
  // FNV-1a over the bytes PutBigEndian32(netns), PutAddr(laddr),
  // PutBigEndian16(lport), PutAddr(raddr), PutBigEndian16(rport) would write,
  // fed as they are produced: one hash per record written, no allocation.
  uint32_t h = 2166136261u;
  auto mix = [&h](uint8_t b) {
    h ^= b;
    h *= 16777619u;
  };
  auto mix_addr = [&](const IpAddr& a) {
    const size_t n = AddrBytes(a.family);
    if (n == SIZE_MAX) return mix(0);
    mix(static_cast<uint8_t>(a.family));
    for (size_t i = 0; i < n; ++i) mix(a.bytes[i]);
  };
  for (int shift = 24; shift >= 0; shift -= 8) mix(static_cast<uint8_t>(key.netns >> shift));
  mix_addr(key.laddr);
  mix(static_cast<uint8_t>(key.lport >> 8));
  mix(static_cast<uint8_t>(key.lport));
  mix_addr(key.raddr);
  mix(static_cast<uint8_t>(key.rport >> 8));
  mix(static_cast<uint8_t>(key.rport));
  return h;
}

std::string RecordKey(int64_t ts_ns, const ConnKey& key) {
  std::string out;
  out.reserve(kRecordKeySize);
  PutTime(&out, ts_ns);
  PutBigEndian32(&out, ConnKeyHash32(key));
  return out;
}

std::string RecordKeyAt(int64_t ts_ns) {
  std::string out;
  PutTime(&out, ts_ns);
  return out;
}

std::string RecordBlockKey(int64_t first_ts_ns, const ConnKey& first) {
  std::string out = RecordKey(first_ts_ns, first);
  out.push_back(kRecordBlockMark);
  return out;
}

Result<RecordKeyParts> DecodeRecordKey(std::string_view key) {
  const bool block = key.size() == kRecordBlockKeySize && key.back() == kRecordBlockMark;
  if (key.size() != kRecordKeySize && !block) return BadKey("record", key);
  return RecordKeyParts{static_cast<int64_t>(GetBigEndian64(key.data())),
                        GetBigEndian32(key.data() + 8), block};
}

std::string FlowRowKey(int level, int64_t bucket_ns, const FlowKey& key) {
  std::string out;
  out.reserve(1 + 8 + 1 + 4 + 4 + 8 + 17 + 2 + 17 + 2);
  out.push_back(static_cast<char>(level));
  PutTime(&out, bucket_ns);
  out.push_back(static_cast<char>(key.direction));
  PutBigEndian32(&out, key.netns);
  PutBigEndian32(&out, key.pid);
  PutBigEndian64(&out, key.start_ticks);
  PutAddr(&out, key.laddr);
  PutBigEndian16(&out, key.lport);
  PutAddr(&out, key.raddr);
  PutBigEndian16(&out, key.rport);
  // The translated side only when there was one: a key without it is the
  // same bytes as before NAT was read, so the rows of one flow stay one.
  if (key.translated()) {
    PutAddr(&out, key.xaddr);
    PutBigEndian16(&out, key.xport);
  }
  return out;
}

std::string FlowBucketKey(int level, int64_t bucket_ns) {
  std::string out(1, static_cast<char>(level));
  PutTime(&out, bucket_ns);
  return out;
}

bool ParseFlowRowKey(std::string_view key, FlowRowKeyParts* p) {
  constexpr size_t kFixedHead = 1 + 8 + 1 + 4 + 4 + 8;
  if (key.size() < kFixedHead) return false;
  const char* d = key.data();
  const uint8_t level = static_cast<uint8_t>(d[0]);
  const uint8_t dir = static_cast<uint8_t>(d[9]);
  if (level >= kFlowLevels || dir > static_cast<uint8_t>(Direction::kForwarded)) return false;
  p->level = level;
  p->bucket_ns = static_cast<int64_t>(GetBigEndian64(d + 1));
  p->key.direction = static_cast<Direction>(dir);
  p->key.netns = GetBigEndian32(d + 10);
  p->key.pid = GetBigEndian32(d + 14);
  p->key.start_ticks = GetBigEndian64(d + 18);
  size_t pos = kFixedHead;
  if (!GetAddr(key, &pos, &p->key.laddr) || key.size() - pos < 2) return false;
  p->key.lport = GetBigEndian16(d + pos);
  pos += 2;
  if (!GetAddr(key, &pos, &p->key.raddr) || key.size() - pos < 2) return false;
  p->key.rport = GetBigEndian16(d + pos);
  pos += 2;
  p->key.xaddr = IpAddr{};
  p->key.xport = 0;
  if (pos == key.size()) return true;
  if (!GetAddr(key, &pos, &p->key.xaddr) || key.size() - pos != 2) return false;
  p->key.xport = GetBigEndian16(d + pos);
  return p->key.xport != 0;  // written only when translated
}

Result<FlowRowKeyParts> DecodeFlowRowKey(std::string_view key) {
  FlowRowKeyParts p;
  if (!ParseFlowRowKey(key, &p)) return BadKey("flow", key);
  return p;
}

std::string ProcessKey(uint32_t pid, uint64_t start_ticks) {
  std::string out;
  PutBigEndian32(&out, pid);
  PutBigEndian64(&out, start_ticks);
  return out;
}

Result<ProcessKeyParts> DecodeProcessKey(std::string_view key) {
  if (key.size() != 12) return BadKey("process", key);
  return ProcessKeyParts{GetBigEndian32(key.data()), GetBigEndian64(key.data() + 4)};
}

std::string EndpointKey(uint32_t netns, const IpAddr& addr, uint16_t port) {
  std::string out;
  PutBigEndian32(&out, netns);
  PutAddr(&out, addr);
  PutBigEndian16(&out, port);
  return out;
}

Result<EndpointKeyParts> DecodeEndpointKey(std::string_view key) {
  if (key.size() < 4) return BadKey("endpoint", key);
  EndpointKeyParts p;
  p.netns = GetBigEndian32(key.data());
  size_t pos = 4;
  if (!GetAddr(key, &pos, &p.addr) || key.size() - pos != 2) return BadKey("endpoint", key);
  p.port = GetBigEndian16(key.data() + pos);
  return p;
}

std::string ListenPeriodKey(uint32_t netns, const IpAddr& addr, uint16_t port, int64_t since_ns) {
  std::string out = EndpointKey(netns, addr, port);
  PutTime(&out, since_ns);
  return out;
}

Result<ListenPeriodKeyParts> DecodeListenPeriodKey(std::string_view key) {
  if (key.size() < 8) return BadKey("listen period", key);
  auto endpoint = DecodeEndpointKey(key.substr(0, key.size() - 8));
  if (!endpoint.ok()) return BadKey("listen period", key);
  return ListenPeriodKeyParts{*endpoint,
                              static_cast<int64_t>(GetBigEndian64(key.data() + key.size() - 8))};
}

namespace {

// A meta key of one prefix byte and a bucket time.
std::string MetaTimeKey(char prefix, int64_t bucket_ns) {
  std::string out(1, prefix);
  PutTime(&out, bucket_ns);
  return out;
}

Result<int64_t> DecodeMetaTimeKey(char prefix, const char* what, std::string_view key) {
  if (key.size() != 9 || key[0] != prefix) return BadKey(what, key);
  return static_cast<int64_t>(GetBigEndian64(key.data() + 1));
}

}  // namespace

std::string CountKey(int64_t bucket_ns) { return MetaTimeKey(kMetaCountPrefix, bucket_ns); }

Result<int64_t> DecodeCountKey(std::string_view key) {
  return DecodeMetaTimeKey(kMetaCountPrefix, "record count", key);
}

std::string CheckpointKey(int64_t bucket_ns) {
  return MetaTimeKey(kMetaCheckpointPrefix, bucket_ns);
}

Result<int64_t> DecodeCheckpointKey(std::string_view key) {
  return DecodeMetaTimeKey(kMetaCheckpointPrefix, "flow checkpoint", key);
}

std::string UserMetaKey(std::string_view key) {
  std::string out(1, kMetaUserPrefix);
  out.append(key);
  return out;
}

}  // namespace flowmesh
