// Value encodings for records, flow stats, processes, endpoints and counts.
#include "node/store/codec.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace flowmesh {
namespace {

// Bumped when a value layout changes; decoders refuse layouts they do not
// know, and read every older one: an old store is never wiped, its values
// decode as they are and a value written again takes the newest format.
// Appended fields only, so each format is the one before it and then some.
//  - Records: 1 is the base; 2 adds a flags varint (kRecordFlag*); 3 adds
//    the process's cgroup id after the flags. Written: 3. Read as 0 from 1 and 2.
//  - Processes: 2 adds the cgroup id and the workload. Format 1 has neither.
//  - Endpoints and listen periods: 2 adds the owner's cgroup id and workload.
constexpr char kRecordFormatBase = 1;
constexpr char kRecordFormatFlags = 2;
constexpr char kRecordFormatCgroup = 3;
constexpr uint64_t kRecordFlagReconstructed = 1;
// A run of records under one key (keys.h kRecordBlockKeySize): this byte, then
// per record the ns after the key's time, the value's length and the value.
constexpr char kRecordBlockFormat = 16;
// 2 + 5 + 2 x (17 + 2) + 5 + 10 + 2 x 10 + 5 x 5 + 10 + 1 + 10 = 126 bytes.
constexpr size_t kMaxRecordValueSize = 128;
constexpr char kProcessFormatBase = 1;
constexpr char kProcessFormatWorkload = 2;
constexpr char kEndpointFormatBase = 1;
constexpr char kEndpointFormatWorkload = 2;
constexpr char kListenPeriodFormatBase = 1;
constexpr char kListenPeriodFormatWorkload = 2;

Status Malformed(std::string_view what, std::string_view value) {
  return {Status::Code::kCorruption, "malformed " + std::string(what) + " value of " +
                                         std::to_string(value.size()) + " bytes"};
}

// Reads varints in sequence; any failure sticks, so decoders check once.
class Reader {
 public:
  explicit Reader(std::string_view in, size_t pos = 0) : in_(in), pos_(pos) {}
  uint64_t U64() {
    // Inline: scans decode hundreds of thousands of values a query.
    uint64_t result = 0;
    for (int shift = 0; ok_ && shift < 64 && pos_ < in_.size(); shift += 7) {
      const uint64_t b = static_cast<uint8_t>(in_[pos_++]);
      if (shift == 63 && b > 1) break;  // would overflow 64 bits
      result |= (b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
    ok_ = false;
    return 0;
  }
  uint32_t U32() {
    uint64_t v = U64();
    if (v > UINT32_MAX) ok_ = false;
    return static_cast<uint32_t>(v);
  }
  int64_t I64() {
    uint64_t v = U64();
    return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));  // zigzag
  }
  uint8_t Byte() {
    if (!ok_ || pos_ >= in_.size()) {
      ok_ = false;
      return 0;
    }
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint16_t BigEndian16() {
    if (!ok_ || in_.size() - pos_ < 2) {
      ok_ = false;
      return 0;
    }
    uint16_t v = GetBigEndian16(in_.data() + pos_);
    pos_ += 2;
    return v;
  }
  void Addr(IpAddr* a) {
    if (ok_ && !GetAddr(in_, &pos_, a)) ok_ = false;
  }
  std::string String() {
    uint64_t n = U64();
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  bool Bool() {
    const uint8_t b = Byte();
    if (b > 1) ok_ = false;
    return b == 1;
  }
  // As PutWorkload writes it; an unknown kind is malformed.
  Workload ReadWorkload() {
    Workload w;
    const uint8_t kind = Byte();
    if (kind > static_cast<uint8_t>(WorkloadKind::kContainer)) ok_ = false;
    w.kind = static_cast<WorkloadKind>(kind);
    w.runtime = String();
    w.id = String();
    w.name = String();
    w.unit = String();
    w.user_unit = Bool();
    if (Bool()) {
      Pod& pod = w.pod.emplace();
      pod.uid = String();
      pod.name = String();
      pod.ns = String();
      pod.qos = String();
    }
    w.cgroup = String();
    return w;
  }
  // True when everything read was well-formed and nothing is left over.
  bool done() const { return ok_ && pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_;
  bool ok_ = true;
};

void PutSigned(std::string* out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Every field, so a workload read back is the one written (kind none too: a
// process whose cgroup named nothing still has its cgroup path).
void PutWorkload(std::string* out, const Workload& w) {
  out->push_back(static_cast<char>(w.kind));
  PutString(out, w.runtime);
  PutString(out, w.id);
  PutString(out, w.name);
  PutString(out, w.unit);
  out->push_back(w.user_unit ? 1 : 0);
  out->push_back(w.pod ? 1 : 0);
  if (w.pod) {
    PutString(out, w.pod->uid);
    PutString(out, w.pod->name);
    PutString(out, w.pod->ns);
    PutString(out, w.pod->qos);
  }
  PutString(out, w.cgroup);
}

}  // namespace

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool GetVarintSlow(std::string_view in, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && *pos < in.size(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    if (shift == 63 && b > 1) return false;  // would overflow 64 bits
    result |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

std::string EncodeRecordValue(const ConnRecord& r) {
  std::string out;
  out.reserve(48);
  EncodeRecordValueTo(r, &out);
  return out;
}

namespace {

// The same bytes as PutVarint/PutAddr/PutBigEndian16 would append, written
// into a stack buffer first: one append per record instead of one per byte.
// Returns the length, at most kMaxRecordValueSize.
size_t EncodeRecordInto(const ConnRecord& r, char* buf) {
  char* p = buf;
  auto varint = [&p](uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<char>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<char>(v);
  };
  auto addr = [&p](const IpAddr& a) {
    const size_t n = a.family == AF_INET ? 4 : a.family == AF_INET6 ? 16 : 0;
    *p++ = static_cast<char>(n ? a.family : 0);  // PutAddr: 0 for unset or unknown
    std::memcpy(p, a.bytes.data(), n);
    p += n;
  };
  auto be16 = [&p](uint16_t v) {
    *p++ = static_cast<char>(v >> 8);
    *p++ = static_cast<char>(v);
  };
  const uint64_t flags = r.reconstructed ? kRecordFlagReconstructed : 0;
  // The smallest format that holds the record: one with neither flags nor a
  // cgroup id stays byte for byte what a meshd of before writes and reads.
  const char format = r.proc.cgroup_id != 0 ? kRecordFormatCgroup
                      : flags != 0          ? kRecordFormatFlags
                                            : kRecordFormatBase;
  *p++ = format;
  *p++ = static_cast<char>(r.direction);
  varint(r.key.netns);
  addr(r.key.laddr);
  be16(r.key.lport);
  addr(r.key.raddr);
  be16(r.key.rport);
  varint(r.proc.pid);
  varint(r.proc.start_ticks);
  const TcpCounters& c = r.counters;
  varint(c.bytes_tx);
  varint(c.bytes_rx);
  varint(c.segs_out);
  varint(c.segs_in);
  varint(c.retrans);
  varint(c.rtt_us);
  varint(c.rttvar_us);
  varint(r.duration_ns);
  if (format >= kRecordFormatFlags) varint(flags);
  if (format >= kRecordFormatCgroup) varint(r.proc.cgroup_id);
  return static_cast<size_t>(p - buf);
}

}  // namespace

void EncodeRecordValueTo(const ConnRecord& r, std::string* out) {
  char buf[kMaxRecordValueSize];
  out->assign(buf, EncodeRecordInto(r, buf));
}

void AppendToRecordBlock(int64_t key_ts_ns, const ConnRecord& r, std::string* block) {
  if (block->empty()) block->push_back(kRecordBlockFormat);
  char buf[kMaxRecordValueSize];
  const size_t n = EncodeRecordInto(r, buf);
  PutVarint(block, static_cast<uint64_t>(std::max<int64_t>(r.ts_ns - key_ts_ns, 0)));
  PutVarint(block, n);
  block->append(buf, n);
}

RecordBlockReader::RecordBlockReader(int64_t key_ts_ns, std::string_view value)
    : key_ts_ns_(key_ts_ns), value_(value), pos_(1) {
  malformed_ = value.empty() || value[0] != kRecordBlockFormat;
}

bool RecordBlockReader::Next(ConnRecord* r) {
  if (malformed_ || pos_ == value_.size()) return false;
  uint64_t offset = 0, len = 0;
  if (!GetVarint(value_, &pos_, &offset) || !GetVarint(value_, &pos_, &len) ||
      offset > kRecordBlockSpanNs || len > value_.size() - pos_ ||
      key_ts_ns_ > INT64_MAX - static_cast<int64_t>(offset) ||
      !ParseRecordValue(key_ts_ns_ + static_cast<int64_t>(offset), value_.substr(pos_, len), r)) {
    malformed_ = true;
    return false;
  }
  pos_ += len;
  return true;
}

size_t CountRecordBlock(int64_t key_ts_ns, std::string_view value) {
  RecordBlockReader reader(key_ts_ns, value);
  ConnRecord r;
  size_t n = 0;
  while (reader.Next(&r)) ++n;
  return reader.malformed() ? 0 : n;
}

bool ParseRecordValue(int64_t ts_ns, std::string_view value, ConnRecord* r) {
  Reader in(value);
  const uint8_t format = in.Byte();
  if (format < kRecordFormatBase || format > kRecordFormatCgroup) return false;
  r->ts_ns = ts_ns;
  const uint8_t dir = in.Byte();
  if (dir > static_cast<uint8_t>(Direction::kPassive)) return false;
  r->direction = static_cast<Direction>(dir);
  r->key.netns = in.U32();
  in.Addr(&r->key.laddr);
  r->key.lport = in.BigEndian16();
  in.Addr(&r->key.raddr);
  r->key.rport = in.BigEndian16();
  r->proc.pid = in.U32();
  r->proc.start_ticks = in.U64();
  r->proc.comm[0] = '\0';
  TcpCounters& c = r->counters;
  c.bytes_tx = in.U64();
  c.bytes_rx = in.U64();
  c.segs_out = in.U32();
  c.segs_in = in.U32();
  c.retrans = in.U32();
  c.rtt_us = in.U32();
  c.rttvar_us = in.U32();
  r->duration_ns = in.U64();
  uint64_t flags = 0;
  // Flags this meshd does not know are kept out, not refused: they only add
  // to what a record says.
  if (format >= kRecordFormatFlags) flags = in.U64();
  r->reconstructed = (flags & kRecordFlagReconstructed) != 0;
  r->proc.cgroup_id = format >= kRecordFormatCgroup ? in.U64() : 0;
  return in.done();
}

Result<ConnRecord> DecodeRecordValue(int64_t ts_ns, std::string_view value) {
  ConnRecord r;
  if (!ParseRecordValue(ts_ns, value, &r)) return Malformed("record", value);
  return r;
}

std::string EncodeFlowStats(const FlowStats& s) {
  std::string out;
  PutVarint(&out, s.connections);
  PutVarint(&out, s.bytes_tx);
  PutVarint(&out, s.bytes_rx);
  PutVarint(&out, s.segs_out);
  PutVarint(&out, s.segs_in);
  PutVarint(&out, s.retrans);
  PutVarint(&out, s.rtt_sum_us);
  PutVarint(&out, s.rtt_samples);
  PutVarint(&out, s.rtt_max_us);
  PutSigned(&out, s.first_seen_ns);
  PutSigned(&out, s.last_seen_ns);
  // Appended fields: a value without them is a flow of before windows
  // counted open connections (nothing carried, no closes counted).
  // carried_from_ns is a bucket start (or 0): kept in whole buckets, 4 bytes
  // instead of 9. `closed` follows it, so it needs the two before it.
  if (s.carried_from_ns != 0 || s.carried != 0 || s.closed != 0) {
    PutVarint(&out, s.carried);
    PutSigned(&out, s.carried_from_ns / kFlowBucketNs);
  }
  if (s.closed != 0) PutVarint(&out, s.closed);
  return out;
}

Result<FlowStats> DecodeFlowStats(std::string_view value) {
  Reader in(value);
  FlowStats s;
  s.connections = in.U64();
  s.bytes_tx = in.U64();
  s.bytes_rx = in.U64();
  s.segs_out = in.U64();
  s.segs_in = in.U64();
  s.retrans = in.U64();
  s.rtt_sum_us = in.U64();
  s.rtt_samples = in.U64();
  s.rtt_max_us = in.U32();
  s.first_seen_ns = in.I64();
  s.last_seen_ns = in.I64();
  if (!in.done()) {
    s.carried = in.U64();
    const int64_t buckets = in.I64();
    if (buckets > INT64_MAX / kFlowBucketNs || buckets < INT64_MIN / kFlowBucketNs)
      return Malformed("flow", value);
    s.carried_from_ns = buckets * kFlowBucketNs;
  }
  if (!in.done()) s.closed = in.U64();
  if (!in.done()) return Malformed("flow", value);
  return s;
}

std::string EncodeProcessValue(const ProcessDetails& p, int64_t last_seen_ns) {
  std::string out;
  out.push_back(kProcessFormatWorkload);
  PutSigned(&out, last_seen_ns);
  PutVarint(&out, p.pgid);
  PutVarint(&out, p.ppid);
  PutString(&out, p.comm);
  PutString(&out, p.exe);
  PutVarint(&out, p.cgroup_id);
  PutWorkload(&out, p.workload);
  return out;
}

Result<StoredProcess> DecodeProcessValue(const ProcessKeyParts& key, std::string_view value) {
  Reader in(value);
  const uint8_t format = in.Byte();
  if (format != kProcessFormatBase && format != kProcessFormatWorkload)
    return Malformed("process", value);
  StoredProcess p;
  p.details.pid = key.pid;
  p.details.start_ticks = key.start_ticks;
  p.last_seen_ns = in.I64();
  p.details.pgid = in.U32();
  p.details.ppid = in.U32();
  p.details.comm = in.String();
  p.details.exe = in.String();
  if (format >= kProcessFormatWorkload) {
    p.details.cgroup_id = in.U64();
    p.details.workload = in.ReadWorkload();
  }
  if (!in.done()) return Malformed("process", value);
  return p;
}

std::string EncodeEndpointValue(const EndpointRecord& e) {
  std::string out;
  out.push_back(kEndpointFormatWorkload);
  PutVarint(&out, e.proc.pid);
  PutVarint(&out, e.proc.start_ticks);
  PutSigned(&out, e.since_ns);
  PutString(&out, e.proc.comm_view());
  PutVarint(&out, e.proc.cgroup_id);
  PutWorkload(&out, e.workload);
  return out;
}

Result<EndpointRecord> DecodeEndpointValue(const EndpointKeyParts& key, std::string_view value) {
  Reader in(value);
  const uint8_t format = in.Byte();
  if (format != kEndpointFormatBase && format != kEndpointFormatWorkload)
    return Malformed("endpoint", value);
  EndpointRecord e;
  e.netns = key.netns;
  e.addr = key.addr;
  e.port = key.port;
  e.proc.pid = in.U32();
  e.proc.start_ticks = in.U64();
  e.since_ns = in.I64();
  e.proc.set_comm(in.String());
  if (format >= kEndpointFormatWorkload) {
    e.proc.cgroup_id = in.U64();
    e.workload = in.ReadWorkload();
  }
  if (!in.done()) return Malformed("endpoint", value);
  return e;
}

std::string EncodeListenPeriodValue(const ListenPeriod& p) {
  std::string out;
  out.push_back(kListenPeriodFormatWorkload);
  PutVarint(&out, p.endpoint.proc.pid);
  PutVarint(&out, p.endpoint.proc.start_ticks);
  PutSigned(&out, p.until_ns);
  PutString(&out, p.endpoint.proc.comm_view());
  PutVarint(&out, p.endpoint.proc.cgroup_id);
  PutWorkload(&out, p.endpoint.workload);
  return out;
}

Result<ListenPeriod> DecodeListenPeriodValue(const ListenPeriodKeyParts& key,
                                             std::string_view value) {
  Reader in(value);
  const uint8_t format = in.Byte();
  if (format != kListenPeriodFormatBase && format != kListenPeriodFormatWorkload)
    return Malformed("listen period", value);
  ListenPeriod p;
  p.endpoint.netns = key.endpoint.netns;
  p.endpoint.addr = key.endpoint.addr;
  p.endpoint.port = key.endpoint.port;
  p.endpoint.since_ns = key.since_ns;
  p.endpoint.proc.pid = in.U32();
  p.endpoint.proc.start_ticks = in.U64();
  p.until_ns = in.I64();
  const std::string comm = in.String();
  if (format >= kListenPeriodFormatWorkload) {
    p.endpoint.proc.cgroup_id = in.U64();
    p.endpoint.workload = in.ReadWorkload();
  }
  if (!in.done() || comm.size() >= sizeof(p.endpoint.proc.comm) ||
      (!p.open() && p.until_ns < p.endpoint.since_ns))
    return Malformed("listen period", value);
  p.endpoint.proc.set_comm(comm);
  return p;
}

std::string EncodeCount(uint64_t n) {
  std::string out;
  PutVarint(&out, n);
  return out;
}

Result<uint64_t> DecodeCount(std::string_view value) {
  Reader in(value);
  uint64_t n = in.U64();
  if (!in.done()) return Malformed("record count", value);
  return n;
}

}  // namespace flowmesh
