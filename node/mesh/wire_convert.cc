// Setters and validating readers for the mesh schema.
#include "node/mesh/wire_convert.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "node/mesh/wire.h"
#include "node/wire/wire.h"

namespace flowmesh::mesh::wire {
namespace {

Status Malformed(const std::string& what) {
  return InvalidArgument("malformed mesh message: " + what);
}

Status ReadText(capnp::Text::Reader t, size_t max, bool required, const char* what,
                std::string* out) {
  if (t.size() > max)
    return Malformed(std::string(what) + " of " + std::to_string(t.size()) + " bytes (max " +
                     std::to_string(max) + ")");
  if (required && t.size() == 0) return Malformed(std::string(what) + " is empty");
  // The encoders pass std::string through kj::StringPtr, which stops at the
  // first NUL: a name with one inside would be forwarded cut short (another
  // member's name, or empty, which makes every push-pull carrying it
  // malformed for its receivers).
  if (std::memchr(t.begin(), 0, t.size()) != nullptr)
    return Malformed(std::string(what) + " contains a NUL byte");
  out->assign(t.begin(), t.size());
  return Status::Ok();
}

Status ReadName(capnp::Text::Reader t, const char* what, std::string* out) {
  return ReadText(t, kMaxNameBytes, true, what, out);
}

s::MemberStatus ToWire(MemberState state) {
  switch (state) {
    case MemberState::kAlive: return s::MemberStatus::ALIVE;
    case MemberState::kSuspect: return s::MemberStatus::SUSPECT;
    case MemberState::kDead: return s::MemberStatus::DEAD;
    case MemberState::kLeft: return s::MemberStatus::LEFT;
  }
  return s::MemberStatus::DEAD;
}

Status FromWire(s::MemberStatus status, MemberState* out) {
  switch (status) {
    case s::MemberStatus::ALIVE: *out = MemberState::kAlive; return Status::Ok();
    case s::MemberStatus::SUSPECT: *out = MemberState::kSuspect; return Status::Ok();
    case s::MemberStatus::DEAD: *out = MemberState::kDead; return Status::Ok();
    case s::MemberStatus::LEFT: *out = MemberState::kLeft; return Status::Ok();
  }
  return Malformed("unknown member status " + std::to_string(static_cast<int>(status)));
}

kj::ArrayPtr<const uint8_t> AddrBytes(const IpAddr& a) {
  return kj::arrayPtr(a.bytes.data(), a.is_v4() ? 4 : 16);
}

Status ReadAddr(capnp::Data::Reader addr, const char* what, IpAddr* out) {
  if (addr.size() == 4)
    *out = IpAddr::V4(addr[0], addr[1], addr[2], addr[3]);
  else if (addr.size() == 16)
    *out = IpAddr::FromRaw(AF_INET6, addr.begin());
  else
    return Malformed(std::string(what) + " of " + std::to_string(addr.size()) + " bytes");
  return Status::Ok();
}

// Every text bounded: a huge or NUL-bearing one reads as no workload, the
// rest of the row and of the delta kept. Refusing the delta would let one
// container's name stop its node's whole table from reaching any peer.
bool WorkloadText(capnp::Text::Reader t, std::string* out) {
  if (t.size() > kMaxWorkloadBytes || std::memchr(t.begin(), 0, t.size()) != nullptr) return false;
  out->assign(t.begin(), t.size());
  return true;
}

void ReadWorkload(schema::Workload::Reader r, Workload* w) {
  std::string kind;
  Workload out;
  bool fits = WorkloadText(r.getKind(), &kind) && WorkloadText(r.getRuntime(), &out.runtime) &&
              WorkloadText(r.getId(), &out.id) && WorkloadText(r.getName(), &out.name) &&
              WorkloadText(r.getUnit(), &out.unit);
  out.user_unit = r.getUserUnit();
  if (fits && r.getHasPod()) {
    Pod p;
    fits = WorkloadText(r.getPodUid(), &p.uid) && WorkloadText(r.getPodName(), &p.name) &&
           WorkloadText(r.getPodNamespace(), &p.ns) && WorkloadText(r.getPodQos(), &p.qos);
    out.pod = std::move(p);
  }
  // A kind this node does not know (a newer peer's) is shown as none.
  std::optional<WorkloadKind> k = ParseWorkloadKind(kind);
  if (!fits || !k || *k == WorkloadKind::kNone) return;
  out.kind = *k;
  *w = std::move(out);
}

void SetEntry(s::TableEntry::Builder b, const TableEntryMsg& m) {
  b.setVersion(m.version);
  // What a peer older than aliases reads of one: a tombstone (schema).
  b.setDeleted(m.deleted || m.is_alias);
  b.setIsAddress(m.is_address || m.is_alias);
  b.setAddr(AddrBytes(m.addr));
  b.setPort(m.port);
  b.setPid(m.pid);
  b.setPgid(m.pgid);
  b.setComm(m.comm);
  b.setExe(m.exe);
  if (!m.workload.empty()) {
    Workload gossiped = m.workload;
    gossiped.cgroup.clear();
    // One the peers would not read goes as none, never as a row they drop.
    if (::flowmesh::wire::WorkloadFitsWire(gossiped, kMaxWorkloadBytes))
      ::flowmesh::wire::WorkloadToWire(gossiped, b.initWorkload());
  }
  if (!m.is_alias) return;
  b.setAlias(true);
  b.setAliasDeleted(m.deleted);
  b.setTarget(AddrBytes(m.target.addr));
  b.setTargetPort(m.target.port);
  b.setBalancer(m.balancer);
}

// An alias row must read as a tombstone to older peers and name two real
// endpoints: anything else would show them something, or key nothing.
Status ReadAlias(s::TableEntry::Reader r, TableEntryMsg* m) {
  if (!r.getDeleted() || !r.getIsAddress())
    return Malformed("table alias entry not marked as a tombstone for older peers");
  m->is_alias = true;
  m->is_address = false;
  m->deleted = r.getAliasDeleted();
  m->balancer = r.getBalancer();
  FM_RETURN_IF_ERROR(ReadAddr(r.getTarget(), "table alias target address", &m->target.addr));
  m->target.port = r.getTargetPort();
  if (m->port == 0 || m->target.port == 0)
    return Malformed("table alias " + Endpoint{m->addr, m->port}.ToString() + " -> " +
                     m->target.ToString() + " without a port");
  if (m->addr.is_unspecified() || m->target.addr.is_unspecified())
    return Malformed("table alias " + Endpoint{m->addr, m->port}.ToString() + " -> " +
                     m->target.ToString() + " with an unspecified address");
  return Status::Ok();
}

Status ReadEntry(s::TableEntry::Reader r, TableEntryMsg* m) {
  m->version = r.getVersion();
  m->deleted = r.getDeleted();
  m->is_address = r.getIsAddress();
  FM_RETURN_IF_ERROR(ReadAddr(r.getAddr(), "table entry address", &m->addr));
  m->port = r.getPort();
  if (r.getAlias()) FM_RETURN_IF_ERROR(ReadAlias(r, m));
  m->pid = r.getPid();
  m->pgid = r.getPgid();
  FM_RETURN_IF_ERROR(ReadText(r.getComm(), kMaxCommBytes, false, "comm", &m->comm));
  if (r.hasWorkload()) ReadWorkload(r.getWorkload(), &m->workload);
  return ReadText(r.getExe(), kMaxExeBytes, false, "exe", &m->exe);
}

}  // namespace

void Set(s::Ping::Builder b, const PingMsg& m) {
  b.setSeq(m.seq);
  b.setTarget(m.target);
}

Status Read(s::Ping::Reader r, PingMsg* m) {
  m->seq = r.getSeq();
  return ReadText(r.getTarget(), kMaxNameBytes, false, "ping target", &m->target);
}

void Set(s::PingReq::Builder b, const PingReqMsg& m) {
  b.setSeq(m.seq);
  b.setTarget(m.target);
  b.setTargetAddr(m.target_addr);
  b.setWantNack(m.want_nack);
}

Status Read(s::PingReq::Reader r, PingReqMsg* m) {
  m->seq = r.getSeq();
  m->want_nack = r.getWantNack();
  FM_RETURN_IF_ERROR(ReadName(r.getTarget(), "ping-req target", &m->target));
  return ReadText(r.getTargetAddr(), kMaxAddressBytes, true, "ping-req address", &m->target_addr);
}

void Set(s::KeyRequest::Builder b, const KeyRequestMsg& m) {
  b.setOp(static_cast<s::KeyOp>(m.op));
  b.setRecipient(m.recipient);
  if (m.op != KeyOp::kList) b.setKey(kj::arrayPtr(m.key.data(), m.key.size()));
}

Status Read(s::KeyRequest::Reader r, KeyRequestMsg* m) {
  // Empty is allowed here: the member refuses it, counted, as addressed to nobody.
  FM_RETURN_IF_ERROR(ReadText(r.getRecipient(), kMaxNameBytes, false, "key recipient",
                              &m->recipient));
  switch (r.getOp()) {
    case s::KeyOp::LIST: m->op = KeyOp::kList; return Status::Ok();
    case s::KeyOp::INSTALL: m->op = KeyOp::kInstall; break;
    case s::KeyOp::USE: m->op = KeyOp::kUse; break;
    case s::KeyOp::REMOVE: m->op = KeyOp::kRemove; break;
    default: return Malformed("unknown key operation");
  }
  auto key = r.getKey();
  if (key.size() != m->key.size())
    return Malformed("key request: unknown key length " + std::to_string(key.size()) +
                     " (a key is " + std::to_string(m->key.size()) + " bytes)");
  std::copy(key.begin(), key.end(), m->key.begin());
  return Status::Ok();
}

void Set(s::KeyResponse::Builder b, const KeyResponseMsg& m) {
  if (!m.error.empty()) b.setError(m.error);
  auto list = b.initFingerprints(static_cast<unsigned>(m.fingerprints.size()));
  for (unsigned i = 0; i < m.fingerprints.size(); i++) list.set(i, m.fingerprints[i]);
}

Status Read(s::KeyResponse::Reader r, KeyResponseMsg* m) {
  FM_RETURN_IF_ERROR(ReadText(r.getError(), kMaxExeBytes, false, "key error", &m->error));
  auto list = r.getFingerprints();
  if (list.size() > kMaxKeys)
    return Malformed("key response of " + std::to_string(list.size()) + " keys (max " +
                     std::to_string(kMaxKeys) + ")");
  m->fingerprints.resize(list.size());
  for (unsigned i = 0; i < list.size(); i++)
    FM_RETURN_IF_ERROR(
        ReadText(list[i], kMaxNameBytes, true, "key fingerprint", &m->fingerprints[i]));
  return Status::Ok();
}

void Set(s::TableDelta::Builder b, const TableDeltaMsg& m) {
  b.setOwner(m.owner);
  b.setGeneration(m.generation);
  b.setFromVersion(m.from_version);
  b.setToVersion(m.to_version);
  b.setReset(m.reset);
  if (m.entries.empty()) return;
  auto entries = b.initEntries(static_cast<unsigned>(m.entries.size()));
  for (size_t i = 0; i < m.entries.size(); i++) SetEntry(entries[i], m.entries[i]);
}

Status Read(s::TableDelta::Reader r, TableDeltaMsg* m) {
  FM_RETURN_IF_ERROR(ReadName(r.getOwner(), "table owner", &m->owner));
  m->generation = r.getGeneration();
  m->from_version = r.getFromVersion();
  m->to_version = r.getToVersion();
  m->reset = r.getReset();
  if (m->to_version < m->from_version) return Malformed("table delta ends before it starts");
  auto entries = r.getEntries();
  m->entries.resize(entries.size());
  for (size_t i = 0; i < entries.size(); i++) {
    FM_RETURN_IF_ERROR(ReadEntry(entries[i], &m->entries[i]));
    const TableEntryMsg& e = m->entries[i];
    // Ascending versions inside (from, to] is what makes a prefix a valid state.
    uint64_t floor = i == 0 ? m->from_version : m->entries[i - 1].version;
    if (e.version <= floor || e.version > m->to_version)
      return Malformed("table entry version " + std::to_string(e.version) + " out of order");
  }
  return Status::Ok();
}

void Set(s::TableDigest::Builder b, const TableDigestMsg& m) {
  b.setOwner(m.owner);
  b.setGeneration(m.generation);
  b.setVersion(m.version);
}

Status Read(s::TableDigest::Reader r, TableDigestMsg* m) {
  m->generation = r.getGeneration();
  m->version = r.getVersion();
  return ReadName(r.getOwner(), "digest owner", &m->owner);
}

void Set(s::Gossip::Builder b, const GossipMsg& m) {
  if (auto* a = std::get_if<AliveMsg>(&m)) {
    auto w = b.initAlive();
    w.setName(a->name);
    w.setAddr(a->addr);
    w.setNodeId(a->node_id);
    w.setGeneration(a->generation);
    w.setIncarnation(a->incarnation);
  } else if (auto* s = std::get_if<SuspectMsg>(&m)) {
    auto w = b.initSuspect();
    w.setName(s->name);
    w.setGeneration(s->generation);
    w.setIncarnation(s->incarnation);
    w.setFrom(s->from);
  } else if (auto* d = std::get_if<DeadMsg>(&m)) {
    auto w = b.initDead();
    w.setName(d->name);
    w.setGeneration(d->generation);
    w.setIncarnation(d->incarnation);
    w.setFrom(d->from);
  } else {
    Set(b.initTable(), std::get<TableDeltaMsg>(m));
  }
}

Status Read(s::Gossip::Reader r, GossipMsg* m) {
  switch (r.which()) {
    case s::Gossip::ALIVE: {
      auto a = r.getAlive();
      AliveMsg out;
      FM_RETURN_IF_ERROR(ReadName(a.getName(), "alive name", &out.name));
      FM_RETURN_IF_ERROR(ReadText(a.getAddr(), kMaxAddressBytes, true, "alive address", &out.addr));
      FM_RETURN_IF_ERROR(
          ReadText(a.getNodeId(), kMaxNameBytes, false, "alive node id", &out.node_id));
      out.generation = a.getGeneration();
      out.incarnation = a.getIncarnation();
      *m = std::move(out);
      return Status::Ok();
    }
    case s::Gossip::SUSPECT: {
      auto w = r.getSuspect();
      SuspectMsg out;
      FM_RETURN_IF_ERROR(ReadName(w.getName(), "suspect name", &out.name));
      FM_RETURN_IF_ERROR(ReadName(w.getFrom(), "suspect from", &out.from));
      out.generation = w.getGeneration();
      out.incarnation = w.getIncarnation();
      *m = std::move(out);
      return Status::Ok();
    }
    case s::Gossip::DEAD: {
      auto w = r.getDead();
      DeadMsg out;
      FM_RETURN_IF_ERROR(ReadName(w.getName(), "dead name", &out.name));
      FM_RETURN_IF_ERROR(ReadName(w.getFrom(), "dead from", &out.from));
      out.generation = w.getGeneration();
      out.incarnation = w.getIncarnation();
      *m = std::move(out);
      return Status::Ok();
    }
    case s::Gossip::TABLE: {
      TableDeltaMsg out;
      FM_RETURN_IF_ERROR(Read(r.getTable(), &out));
      *m = std::move(out);
      return Status::Ok();
    }
  }
  return Malformed("unknown gossip kind " + std::to_string(static_cast<int>(r.which())));
}

void Set(s::PushPull::Builder b, const PushPullMsg& m) {
  b.setJoin(m.join);
  auto members = b.initMembers(static_cast<unsigned>(m.members.size()));
  for (size_t i = 0; i < m.members.size(); i++) {
    const MemberEntryMsg& e = m.members[i];
    auto w = members[i];
    w.setName(e.name);
    w.setAddr(e.addr);
    w.setNodeId(e.node_id);
    w.setGeneration(e.generation);
    w.setIncarnation(e.incarnation);
    w.setStatus(ToWire(e.state));
    w.setTableGeneration(e.table_generation);
    w.setTableVersion(e.table_version);
  }
  if (m.tables.empty()) return;
  auto tables = b.initTables(static_cast<unsigned>(m.tables.size()));
  for (size_t i = 0; i < m.tables.size(); i++) Set(tables[i], m.tables[i]);
}

Status Read(s::PushPull::Reader r, PushPullMsg* m) {
  m->join = r.getJoin();
  auto members = r.getMembers();
  m->members.resize(members.size());
  for (size_t i = 0; i < members.size(); i++) {
    auto w = members[i];
    MemberEntryMsg& e = m->members[i];
    FM_RETURN_IF_ERROR(ReadName(w.getName(), "member name", &e.name));
    FM_RETURN_IF_ERROR(ReadText(w.getAddr(), kMaxAddressBytes, true, "member address", &e.addr));
    FM_RETURN_IF_ERROR(ReadText(w.getNodeId(), kMaxNameBytes, false, "member node id", &e.node_id));
    e.generation = w.getGeneration();
    e.incarnation = w.getIncarnation();
    FM_RETURN_IF_ERROR(FromWire(w.getStatus(), &e.state));
    e.table_generation = w.getTableGeneration();
    e.table_version = w.getTableVersion();
  }
  auto tables = r.getTables();
  m->tables.resize(tables.size());
  for (size_t i = 0; i < tables.size(); i++) FM_RETURN_IF_ERROR(Read(tables[i], &m->tables[i]));
  return Status::Ok();
}

}  // namespace flowmesh::mesh::wire
