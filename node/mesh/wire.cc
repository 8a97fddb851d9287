// Packed Cap'n Proto framing of mesh packets and exchanges.
#include "node/mesh/wire.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <capnp/serialize.h>
#include <kj/exception.h>
#include <kj/io.h>

#include <bit>
#include <string>

#include "node/mesh/wire_convert.h"

namespace flowmesh::mesh {
namespace s = ::flowmesh::schema::mesh;

const char* MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kAlive: return "alive";
    case MemberState::kSuspect: return "suspect";
    case MemberState::kDead: return "dead";
    case MemberState::kLeft: return "left";
  }
  return "unknown";
}

const char* WireCheckName(WireCheck check) {
  switch (check) {
    case WireCheck::kEmpty: return "empty";
    case WireCheck::kOversized: return "oversized";
    case WireCheck::kStructure: return "structure";
    case WireCheck::kFieldTooLong: return "field_too_long";
    case WireCheck::kFieldEmpty: return "field_empty";
    case WireCheck::kBadValue: return "bad_value";
    case WireCheck::kUnexpectedKind: return "unexpected_kind";
  }
  return "structure";
}

// Reads the errors this file and wire_convert.cc write; mesh_wire_test.cc
// holds one failing input per check, so a reworded error shows up there.
WireCheck CheckOf(const Status& error) {
  const std::string& m = error.message();
  auto has = [&](std::string_view part) { return m.find(part) != std::string::npos; };
  if (error.code() == Status::Code::kResourceExhausted) return WireCheck::kOversized;
  if (m.starts_with("empty ")) return WireCheck::kEmpty;
  if (has(" bytes (max ")) return WireCheck::kFieldTooLong;
  if (m.ends_with(" is empty")) return WireCheck::kFieldEmpty;
  if (has("unknown ") || has("out of order") || has("ends before it starts") ||
      has("address of ") || has("table alias "))
    return WireCheck::kBadValue;
  return WireCheck::kStructure;
}

namespace {

Status TooLarge(const char* what, size_t size, size_t max) {
  return Status(Status::Code::kResourceExhausted, std::string(what) + " of " +
                                                      std::to_string(size) + " bytes exceeds " +
                                                      std::to_string(max) + " bytes");
}

// Packing turns each word into a tag byte plus its nonzero bytes (runs of
// zero words collapse further), so this slightly overestimates.
size_t PackedEstimate(kj::ArrayPtr<const capnp::word> words) {
  size_t n = 0;
  const uint64_t* w = reinterpret_cast<const uint64_t*>(words.begin());
  for (size_t i = 0; i < words.size(); i++) {
    uint64_t v = w[i];
    n += 1;
    for (int b = 0; b < 8; b++) n += ((v >> (8 * b)) & 0xff) != 0;
  }
  return n;
}

Bytes Pack(capnp::MessageBuilder& message) {
  kj::VectorOutputStream out;
  capnp::writePackedMessage(out, message);
  kj::ArrayPtr<kj::byte> packed = out.getArray();
  return Bytes(packed.begin(), packed.end());
}

Result<Bytes> PackWithin(capnp::MessageBuilder& message, size_t max_bytes, size_t max_words,
                         const char* what) {
  size_t words = capnp::computeSerializedSizeInWords(message);
  if (words > max_words) return TooLarge(what, words * sizeof(capnp::word), max_words * 8);
  Bytes bytes = Pack(message);
  if (bytes.size() > max_bytes) return TooLarge(what, bytes.size(), max_bytes);
  return bytes;
}

// Reads one packed message of type Root from `bytes` and converts it. The
// size checks come first; the reader's traversal limit also bounds what the
// segment table may make it allocate.
template <typename Root, typename Out, typename Convert>
Result<Out> Unpack(std::span<const uint8_t> bytes, size_t max_bytes, size_t max_words,
                   const char* what, Convert convert) {
  if (bytes.empty()) return InvalidArgument(std::string("empty ") + what);
  if (bytes.size() > max_bytes) return TooLarge(what, bytes.size(), max_bytes);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = max_words;
  options.nestingLimit = kNestingLimit;
  Out out;
  try {
    kj::ArrayInputStream in(kj::arrayPtr(bytes.data(), bytes.size()));
    {
      capnp::PackedMessageReader reader(in, options);
      Status st = convert(reader.getRoot<Root>(), &out);
      if (!st.ok()) return st;
    }
    if (in.tryGetReadBuffer().size() != 0)
      return InvalidArgument(std::string("malformed ") + what + ": trailing bytes");
  } catch (const kj::Exception& e) {
    return InvalidArgument(std::string("malformed ") + what + ": " + e.getDescription().cStr());
  }
  return out;
}

// One piggybacked gossip message: a whole message inside a Data blob, read
// with limits of its own. Blobs start word-aligned inside the unpacked
// packet, so the words can be read in place.
Status ReadGossip(capnp::Data::Reader data, GossipMsg* out) {
  if (data.size() == 0 || data.size() % sizeof(capnp::word) != 0)
    return InvalidArgument("malformed packet: gossip of " + std::to_string(data.size()) + " bytes");
  if (reinterpret_cast<uintptr_t>(data.begin()) % alignof(capnp::word) != 0)
    return InvalidArgument("malformed packet: misaligned gossip");
  kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(data.begin()),
                                        data.size() / sizeof(capnp::word));
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size();
  options.nestingLimit = kNestingLimit;
  capnp::FlatArrayMessageReader reader(words, options);
  if (reader.getEnd() != words.end())
    return InvalidArgument("malformed packet: gossip shorter than its blob");
  return wire::Read(reader.getRoot<s::Gossip>(), out);
}

}  // namespace

EncodedGossip EncodeGossip(const GossipMsg& gossip) {
  capnp::MallocMessageBuilder message(256);
  wire::Set(message.initRoot<s::Gossip>(), gossip);
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  EncodedGossip out;
  out.words.assign(reinterpret_cast<const uint64_t*>(flat.begin()),
                   reinterpret_cast<const uint64_t*>(flat.end()));
  // Plus the list's pointer to it, mostly zero bytes.
  out.packed_bytes = PackedEstimate(flat) + 4;
  return out;
}

Result<Bytes> EncodePacket(const PrimaryMsg& primary,
                           std::span<const EncodedGossip* const> gossip) {
  // One segment big enough for any packet we may send: a single-segment
  // message packs smallest and reads without lazy segment loads.
  capnp::MallocMessageBuilder message(kMaxPacketWords);
  auto packet = message.initRoot<s::Packet>();
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          packet.setNone();
        } else if constexpr (std::is_same_v<T, PingMsg>) {
          wire::Set(packet.initPing(), m);
        } else if constexpr (std::is_same_v<T, AckMsg>) {
          packet.initAck().setSeq(m.seq);
        } else if constexpr (std::is_same_v<T, NackMsg>) {
          packet.initNack().setSeq(m.seq);
        } else if constexpr (std::is_same_v<T, PingReqMsg>) {
          wire::Set(packet.initPingReq(), m);
        } else if constexpr (std::is_same_v<T, TableRequestMsg>) {
          auto list = packet.initTableRequest(static_cast<unsigned>(m.digests.size()));
          for (size_t i = 0; i < m.digests.size(); i++) wire::Set(list[i], m.digests[i]);
        } else {
          auto list = packet.initTableReply(static_cast<unsigned>(m.deltas.size()));
          for (size_t i = 0; i < m.deltas.size(); i++) wire::Set(list[i], m.deltas[i]);
        }
      },
      primary);
  if (!gossip.empty()) {
    auto list = packet.initGossip(static_cast<unsigned>(gossip.size()));
    for (size_t i = 0; i < gossip.size(); i++) {
      const std::vector<uint64_t>& w = gossip[i]->words;
      list.set(static_cast<unsigned>(i),
               kj::arrayPtr(reinterpret_cast<const kj::byte*>(w.data()), w.size() * 8));
    }
  }
  return PackWithin(message, kPacketBudgetBytes, kMaxPacketWords, "packet");
}

Result<PacketMsg> DecodePacket(std::span<const uint8_t> bytes) {
  return Unpack<s::Packet, PacketMsg>(
      bytes, kMaxPacketBytes, kMaxPacketWords, "packet",
      [](s::Packet::Reader r, PacketMsg* out) -> Status {
        switch (r.which()) {
          case s::Packet::NONE: out->primary = std::monostate{}; break;
          case s::Packet::PING: {
            PingMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getPing(), &m));
            out->primary = std::move(m);
            break;
          }
          case s::Packet::ACK: out->primary = AckMsg{r.getAck().getSeq()}; break;
          case s::Packet::NACK: out->primary = NackMsg{r.getNack().getSeq()}; break;
          case s::Packet::PING_REQ: {
            PingReqMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getPingReq(), &m));
            out->primary = std::move(m);
            break;
          }
          case s::Packet::TABLE_REQUEST: {
            TableRequestMsg m;
            auto list = r.getTableRequest();
            m.digests.resize(list.size());
            for (size_t i = 0; i < list.size(); i++)
              FM_RETURN_IF_ERROR(wire::Read(list[i], &m.digests[i]));
            out->primary = std::move(m);
            break;
          }
          case s::Packet::TABLE_REPLY: {
            TableReplyMsg m;
            auto list = r.getTableReply();
            m.deltas.resize(list.size());
            for (size_t i = 0; i < list.size(); i++)
              FM_RETURN_IF_ERROR(wire::Read(list[i], &m.deltas[i]));
            out->primary = std::move(m);
            break;
          }
          default:
            return InvalidArgument("malformed packet: unknown kind " +
                                   std::to_string(static_cast<int>(r.which())));
        }
        auto gossip = r.getGossip();
        out->gossip.resize(gossip.size());
        for (size_t i = 0; i < gossip.size(); i++)
          FM_RETURN_IF_ERROR(ReadGossip(gossip[i], &out->gossip[i]));
        return Status::Ok();
      });
}

Result<Bytes> EncodeExchangeRequest(const ExchangeRequestMsg& request) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<s::ExchangeRequest>();
  if (auto* pp = std::get_if<PushPullMsg>(&request)) {
    wire::Set(root.initPushPull(), *pp);
  } else if (auto* ping = std::get_if<PingMsg>(&request)) {
    wire::Set(root.initPing(), *ping);
  } else if (auto* q = std::get_if<QueryMsg>(&request)) {
    root.setQuery(kj::arrayPtr(q->payload.data(), q->payload.size()));
  } else if (auto* k = std::get_if<KeyRequestMsg>(&request)) {
    auto b = root.initKeys();
    b.setOp(static_cast<s::KeyOp>(k->op));
    b.setRecipient(k->recipient);
    if (k->op != KeyOp::kList) b.setKey(kj::arrayPtr(k->key.data(), k->key.size()));
  } else {
    const auto& deltas = std::get<TablePushMsg>(request).deltas;
    auto list = root.initTables(static_cast<unsigned>(deltas.size()));
    for (size_t i = 0; i < deltas.size(); i++) wire::Set(list[i], deltas[i]);
  }
  return PackWithin(message, kMaxExchangeBytes, kMaxExchangeWords, "exchange request");
}

Result<ExchangeRequestMsg> DecodeExchangeRequest(std::span<const uint8_t> bytes) {
  return Unpack<s::ExchangeRequest, ExchangeRequestMsg>(
      bytes, kMaxExchangeBytes, kMaxExchangeWords, "exchange request",
      [](s::ExchangeRequest::Reader r, ExchangeRequestMsg* out) -> Status {
        switch (r.which()) {
          case s::ExchangeRequest::PUSH_PULL: {
            PushPullMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getPushPull(), &m));
            *out = std::move(m);
            return Status::Ok();
          }
          case s::ExchangeRequest::PING: {
            PingMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getPing(), &m));
            *out = std::move(m);
            return Status::Ok();
          }
          case s::ExchangeRequest::TABLES: {
            TablePushMsg m;
            auto list = r.getTables();
            m.deltas.resize(list.size());
            for (size_t i = 0; i < list.size(); i++)
              FM_RETURN_IF_ERROR(wire::Read(list[i], &m.deltas[i]));
            *out = std::move(m);
            return Status::Ok();
          }
          case s::ExchangeRequest::QUERY: {
            auto d = r.getQuery();
            *out = QueryMsg{std::vector<uint8_t>(d.begin(), d.end())};
            return Status::Ok();
          }
          case s::ExchangeRequest::KEYS: {
            KeyRequestMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getKeys(), &m));
            *out = std::move(m);
            return Status::Ok();
          }
        }
        return InvalidArgument("malformed exchange request: unknown kind");
      });
}

Result<Bytes> EncodeExchangeResponse(const ExchangeResponseMsg& response) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<s::ExchangeResponse>();
  if (auto* pp = std::get_if<PushPullMsg>(&response))
    wire::Set(root.initPushPull(), *pp);
  else if (auto* ack = std::get_if<AckMsg>(&response))
    root.initAck().setSeq(ack->seq);
  else if (auto* q = std::get_if<QueryMsg>(&response))
    root.setQuery(kj::arrayPtr(q->payload.data(), q->payload.size()));
  else if (auto* k = std::get_if<KeyResponseMsg>(&response))
    wire::Set(root.initKeys(), *k);
  else
    root.setDone();
  return PackWithin(message, kMaxExchangeBytes, kMaxExchangeWords, "exchange response");
}

Result<ExchangeResponseMsg> DecodeExchangeResponse(std::span<const uint8_t> bytes) {
  return Unpack<s::ExchangeResponse, ExchangeResponseMsg>(
      bytes, kMaxExchangeBytes, kMaxExchangeWords, "exchange response",
      [](s::ExchangeResponse::Reader r, ExchangeResponseMsg* out) -> Status {
        switch (r.which()) {
          case s::ExchangeResponse::PUSH_PULL: {
            PushPullMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getPushPull(), &m));
            *out = std::move(m);
            return Status::Ok();
          }
          case s::ExchangeResponse::ACK: *out = AckMsg{r.getAck().getSeq()}; return Status::Ok();
          case s::ExchangeResponse::DONE: *out = DoneMsg{}; return Status::Ok();
          case s::ExchangeResponse::QUERY: {
            auto d = r.getQuery();
            *out = QueryMsg{std::vector<uint8_t>(d.begin(), d.end())};
            return Status::Ok();
          }
          case s::ExchangeResponse::KEYS: {
            KeyResponseMsg m;
            FM_RETURN_IF_ERROR(wire::Read(r.getKeys(), &m));
            *out = std::move(m);
            return Status::Ok();
          }
        }
        return InvalidArgument("malformed exchange response: unknown kind");
      });
}

size_t EstimateWorkloadBytes(const Workload& w) {
  if (w.empty()) return 0;
  // Its pointer, the struct (1 data + 10 pointer words) and nine texts with
  // their NUL and padding (the cgroup path is not sent).
  size_t texts = WorkloadKindName(w.kind).size() + w.runtime.size() + w.id.size() + w.name.size() +
                 w.unit.size();
  if (w.pod) texts += w.pod->uid.size() + w.pod->name.size() + w.pod->ns.size() + w.pod->qos.size();
  return 8 + 88 + texts + 9 * 8;
}

size_t EstimateEntryBytes(const TableEntryMsg& entry) {
  // Struct (5 data + 3 pointer words, mostly nonzero) plus texts and address;
  // an alias adds a data word, a pointer and its target.
  return 56 + entry.comm.size() + entry.exe.size() + 2 * 9 + (entry.is_alias ? 16 + 24 : 0) +
         EstimateWorkloadBytes(entry.workload);
}

size_t EstimateDeltaBytes(const TableDeltaMsg& delta) {
  size_t n = 48 + delta.owner.size();
  for (const TableEntryMsg& e : delta.entries) n += EstimateEntryBytes(e);
  return n;
}

size_t EstimatePrimaryBytes(const PrimaryMsg& primary) {
  // Segment table, root struct and union tag, the gossip list's pointer and
  // tag: about 40 bytes packed, most of them zero.
  constexpr size_t kFixed = 48;
  return kFixed + std::visit(
                      [](const auto& m) -> size_t {
                        using T = std::decay_t<decltype(m)>;
                        if constexpr (std::is_same_v<T, PingMsg>) return 24 + m.target.size();
                        if constexpr (std::is_same_v<T, PingReqMsg>)
                          return 40 + m.target.size() + m.target_addr.size();
                        if constexpr (std::is_same_v<T, TableRequestMsg>) {
                          size_t n = 16;
                          for (const auto& d : m.digests) n += 40 + d.owner.size();
                          return n;
                        }
                        if constexpr (std::is_same_v<T, TableReplyMsg>) {
                          size_t n = 16;
                          for (const auto& d : m.deltas) n += EstimateDeltaBytes(d);
                          return n;
                        }
                        return 16;
                      },
                      primary);
}

size_t EstimateMemberBytes(const MemberEntryMsg& member) {
  return 48 + member.name.size() + member.addr.size() + member.node_id.size();
}

}  // namespace flowmesh::mesh
