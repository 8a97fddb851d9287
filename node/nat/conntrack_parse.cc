// ParseCtMessage: one nfnetlink_conntrack message (nfgenmsg + CTA_*
// attributes) into a CtEvent, every attribute bounded and validated.
#include <arpa/inet.h>
#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <string>

#include "node/nat/conntrack.h"

namespace flowmesh {
namespace {

// What one attribute walk saw: the attributes by type (the last of a
// repeated type wins, as in the kernel's nla_parse) and the first error.
template <int kMax>
struct AttrTable {
  const nlattr* tb[kMax + 1] = {};
  const char* level = "";  // "conntrack", "tuple", ... for the error
  const mnl_attr_data_type* types = nullptr;  // kMax + 1 of them
  std::string error;
  const char* end_seen = nullptr;  // end of the last attribute the walk accepted
};

template <int kMax>
int CollectAttr(const nlattr* attr, void* data) {
  auto* t = static_cast<AttrTable<kMax>*>(data);
  t->end_seen = reinterpret_cast<const char*>(attr) + NLA_ALIGN(attr->nla_len);
  int type = mnl_attr_get_type(attr);
  if (type > kMax) return MNL_CB_OK;  // newer kernels add attributes; not ours
  mnl_attr_data_type want = t->types[type];
  if (want != MNL_TYPE_UNSPEC && mnl_attr_validate(attr, want) < 0) {
    t->error = std::string(t->level) + " attribute " + std::to_string(type) + " has a bad length (" +
               std::to_string(mnl_attr_get_payload_len(attr)) + " bytes)";
    return MNL_CB_ERROR;
  }
  t->tb[type] = attr;
  return MNL_CB_OK;
}

// Walks the attributes in [payload, payload + len). libmnl stops silently at
// an attribute that does not fit; here that is an error, like a bad length.
template <int kMax>
Status WalkAttrs(const void* payload, size_t len, AttrTable<kMax>* t) {
  t->end_seen = static_cast<const char*>(payload);
  if (mnl_attr_parse_payload(payload, len, CollectAttr<kMax>, t) < 0) {
    return InvalidArgument("conntrack message: " +
                           (t->error.empty() ? std::string("attribute walk failed") : t->error));
  }
  const char* end = static_cast<const char*>(payload) + len;
  if (t->end_seen < end)
    return InvalidArgument("conntrack message: " + std::string(t->level) + " attribute at byte " +
                           std::to_string(t->end_seen - static_cast<const char*>(payload)) +
                           " of " + std::to_string(len) + " overruns its container");
  return Status::Ok();
}

template <int kMax>
Status WalkNested(const nlattr* nest, AttrTable<kMax>* t) {
  return WalkAttrs(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), t);
}

// The type each attribute we read must have; MNL_TYPE_UNSPEC (0) marks the
// attributes we neither read nor check.
template <int kMax>
using AttrTypes = std::array<mnl_attr_data_type, kMax + 1>;

constexpr AttrTypes<CTA_MAX> kTopTypes = [] {
  AttrTypes<CTA_MAX> t{};
  t[CTA_TUPLE_ORIG] = t[CTA_TUPLE_REPLY] = MNL_TYPE_NESTED;
  t[CTA_STATUS] = t[CTA_ID] = MNL_TYPE_U32;
  t[CTA_COUNTERS_ORIG] = t[CTA_COUNTERS_REPLY] = MNL_TYPE_NESTED;
  t[CTA_PROTOINFO] = MNL_TYPE_NESTED;
  return t;
}();
constexpr AttrTypes<CTA_PROTOINFO_MAX> kProtoinfoTypes = [] {
  AttrTypes<CTA_PROTOINFO_MAX> t{};
  t[CTA_PROTOINFO_TCP] = MNL_TYPE_NESTED;
  return t;
}();
constexpr AttrTypes<CTA_PROTOINFO_TCP_MAX> kTcpInfoTypes = [] {
  AttrTypes<CTA_PROTOINFO_TCP_MAX> t{};
  t[CTA_PROTOINFO_TCP_STATE] = MNL_TYPE_U8;
  return t;
}();
constexpr AttrTypes<CTA_TUPLE_MAX> kTupleTypes = [] {
  AttrTypes<CTA_TUPLE_MAX> t{};
  t[CTA_TUPLE_IP] = t[CTA_TUPLE_PROTO] = MNL_TYPE_NESTED;
  return t;
}();
constexpr AttrTypes<CTA_IP_MAX> kIpTypes = [] {
  AttrTypes<CTA_IP_MAX> t{};
  t[CTA_IP_V4_SRC] = t[CTA_IP_V4_DST] = MNL_TYPE_U32;
  t[CTA_IP_V6_SRC] = t[CTA_IP_V6_DST] = MNL_TYPE_BINARY;  // length checked where read
  return t;
}();
constexpr AttrTypes<CTA_PROTO_MAX> kProtoTypes = [] {
  AttrTypes<CTA_PROTO_MAX> t{};
  t[CTA_PROTO_NUM] = MNL_TYPE_U8;
  t[CTA_PROTO_SRC_PORT] = t[CTA_PROTO_DST_PORT] = MNL_TYPE_U16;
  return t;
}();
constexpr AttrTypes<CTA_COUNTERS_MAX> kCounterTypes = [] {
  AttrTypes<CTA_COUNTERS_MAX> t{};
  t[CTA_COUNTERS_BYTES] = MNL_TYPE_U64;
  return t;
}();

Status ReadAddr(const nlattr* attr, uint8_t family, const char* what, IpAddr* out) {
  uint8_t raw[16] = {};
  const size_t want = family == AF_INET ? 4 : 16;
  if (attr == nullptr)
    return InvalidArgument(std::string("conntrack message: tuple without its ") + what +
                           (family == AF_INET ? " IPv4" : " IPv6") + " address");
  if (mnl_attr_get_payload_len(attr) != want)
    return InvalidArgument(std::string("conntrack message: ") + what + " address of " +
                           std::to_string(mnl_attr_get_payload_len(attr)) + " bytes, expected " +
                           std::to_string(want));
  std::memcpy(raw, mnl_attr_get_payload(attr), want);
  *out = IpAddr::FromRaw(family, raw);
  return Status::Ok();
}

// One CTA_TUPLE_* nest. *tcp says whether it is TCP; ports are read only then.
Status ParseTuple(const nlattr* nest, uint8_t family, const char* which, CtTuple* out, bool* tcp) {
  if (nest == nullptr)
    return InvalidArgument(std::string("conntrack message without its ") + which + " tuple");
  AttrTable<CTA_TUPLE_MAX> tuple;
  tuple.level = "tuple";
  tuple.types = kTupleTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(nest, &tuple));
  if (!tuple.tb[CTA_TUPLE_IP] || !tuple.tb[CTA_TUPLE_PROTO])
    return InvalidArgument(std::string("conntrack message: ") + which +
                           " tuple without its addresses or its protocol");
  AttrTable<CTA_IP_MAX> ip;
  ip.level = "address";
  ip.types = kIpTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(tuple.tb[CTA_TUPLE_IP], &ip));
  const bool v4 = family == AF_INET;
  FM_RETURN_IF_ERROR(ReadAddr(ip.tb[v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC], family, "source",
                              &out->src.addr));
  FM_RETURN_IF_ERROR(ReadAddr(ip.tb[v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST], family, "destination",
                              &out->dst.addr));

  AttrTable<CTA_PROTO_MAX> proto;
  proto.level = "protocol";
  proto.types = kProtoTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(tuple.tb[CTA_TUPLE_PROTO], &proto));
  if (!proto.tb[CTA_PROTO_NUM])
    return InvalidArgument(std::string("conntrack message: ") + which +
                           " tuple without its protocol number");
  *tcp = mnl_attr_get_u8(proto.tb[CTA_PROTO_NUM]) == IPPROTO_TCP;
  if (!*tcp) return Status::Ok();
  if (!proto.tb[CTA_PROTO_SRC_PORT] || !proto.tb[CTA_PROTO_DST_PORT])
    return InvalidArgument(std::string("conntrack message: TCP ") + which +
                           " tuple without its ports");
  out->src.port = ntohs(mnl_attr_get_u16(proto.tb[CTA_PROTO_SRC_PORT]));
  out->dst.port = ntohs(mnl_attr_get_u16(proto.tb[CTA_PROTO_DST_PORT]));
  return Status::Ok();
}

Status ParseBytes(const nlattr* nest, uint64_t* out) {
  if (nest == nullptr) return Status::Ok();  // accounting off (nf_conntrack_acct=0)
  AttrTable<CTA_COUNTERS_MAX> counters;
  counters.level = "counters";
  counters.types = kCounterTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(nest, &counters));
  if (counters.tb[CTA_COUNTERS_BYTES])
    *out = be64toh(mnl_attr_get_u64(counters.tb[CTA_COUNTERS_BYTES]));
  return Status::Ok();
}

// CTA_PROTOINFO > CTA_PROTOINFO_TCP > CTA_PROTOINFO_TCP_STATE, when present.
Status ParseTcpState(const nlattr* nest, uint8_t* out) {
  if (nest == nullptr) return Status::Ok();
  AttrTable<CTA_PROTOINFO_MAX> info;
  info.level = "protoinfo";
  info.types = kProtoinfoTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(nest, &info));
  if (info.tb[CTA_PROTOINFO_TCP] == nullptr) return Status::Ok();
  AttrTable<CTA_PROTOINFO_TCP_MAX> tcp;
  tcp.level = "protoinfo tcp";
  tcp.types = kTcpInfoTypes.data();
  FM_RETURN_IF_ERROR(WalkNested(info.tb[CTA_PROTOINFO_TCP], &tcp));
  if (tcp.tb[CTA_PROTOINFO_TCP_STATE]) *out = mnl_attr_get_u8(tcp.tb[CTA_PROTOINFO_TCP_STATE]);
  return Status::Ok();
}

}  // namespace

Status ParseCtMessage(const struct nlmsghdr* nlh, uint32_t netns, CtEvent* out) {
  constexpr size_t kHead = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (nlh == nullptr) return InvalidArgument("conntrack message: null");
  if (nlh->nlmsg_len < kHead)
    return InvalidArgument("conntrack message of " + std::to_string(nlh->nlmsg_len) +
                           " bytes is shorter than its header and nfgenmsg (" +
                           std::to_string(kHead) + " bytes)");
  const uint16_t subsys = NFNL_SUBSYS_ID(nlh->nlmsg_type);
  const uint16_t msg = NFNL_MSG_TYPE(nlh->nlmsg_type);
  if (subsys != NFNL_SUBSYS_CTNETLINK || (msg != IPCTNL_MSG_CT_NEW && msg != IPCTNL_MSG_CT_DELETE))
    return InvalidArgument("conntrack message of type " + std::to_string(nlh->nlmsg_type) +
                           ", expected IPCTNL_MSG_CT_NEW or IPCTNL_MSG_CT_DELETE of subsystem " +
                           std::to_string(NFNL_SUBSYS_CTNETLINK));
  nfgenmsg gen;
  std::memcpy(&gen, reinterpret_cast<const char*>(nlh) + NLMSG_HDRLEN, sizeof gen);
  if (gen.nfgen_family != AF_INET && gen.nfgen_family != AF_INET6)
    return InvalidArgument("conntrack message with address family " +
                           std::to_string(gen.nfgen_family) + ", expected AF_INET or AF_INET6");

  AttrTable<CTA_MAX> top;
  top.level = "conntrack";
  top.types = kTopTypes.data();
  FM_RETURN_IF_ERROR(WalkAttrs(reinterpret_cast<const char*>(nlh) + kHead,
                               nlh->nlmsg_len - kHead, &top));

  CtEvent ev;
  ev.kind = msg == IPCTNL_MSG_CT_DELETE ? CtEventKind::kDestroy : CtEventKind::kNew;
  CtEntry& e = ev.entry;
  e.netns = netns;
  bool orig_tcp = false;
  bool reply_tcp = false;
  FM_RETURN_IF_ERROR(
      ParseTuple(top.tb[CTA_TUPLE_ORIG], gen.nfgen_family, "original", &e.original, &orig_tcp));
  FM_RETURN_IF_ERROR(
      ParseTuple(top.tb[CTA_TUPLE_REPLY], gen.nfgen_family, "reply", &e.reply, &reply_tcp));
  if (orig_tcp != reply_tcp)
    return InvalidArgument("conntrack message whose original and reply tuples differ in protocol");
  if (!orig_tcp) return NotFound("conntrack entry is not TCP");
  if (top.tb[CTA_ID]) e.id = ntohl(mnl_attr_get_u32(top.tb[CTA_ID]));
  if (top.tb[CTA_STATUS]) e.status = ntohl(mnl_attr_get_u32(top.tb[CTA_STATUS]));
  FM_RETURN_IF_ERROR(ParseBytes(top.tb[CTA_COUNTERS_ORIG], &e.bytes_orig));
  FM_RETURN_IF_ERROR(ParseBytes(top.tb[CTA_COUNTERS_REPLY], &e.bytes_reply));
  FM_RETURN_IF_ERROR(ParseTcpState(top.tb[CTA_PROTOINFO], &e.tcp_state));
  *out = ev;
  return Status::Ok();
}

}  // namespace flowmesh
