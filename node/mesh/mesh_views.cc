// MeshNode's read-only views: members, tables, statistics, known peers.
#include "node/mesh/mesh_node.h"

namespace flowmesh::mesh {

std::vector<MemberView> MeshNode::Members() const {
  std::vector<MemberView> out;
  const EndpointTables& tables = tables_->tables();
  for (const Member& m : membership_.members().all()) {
    MemberView v;
    v.name = interner_->Get(m.name);
    v.address = interner_->Get(m.addr);
    v.state = m.state;
    v.incarnation = m.incarnation;
    v.state_change_ns = m.state_change_ns;
    v.node_id = interner_->Get(m.node_id);
    v.generation = m.generation;
    const OwnerTable* t = tables.Find(m.name);
    v.endpoints = t != nullptr && t->generation == m.generation ? tables.LiveEndpoints(m.name) : 0;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<NodeTable> MeshNode::Tables(bool with_gone) const {
  std::vector<NodeTable> out;
  const EndpointTables& tables = tables_->tables();
  for (const Member& m : membership_.members().all()) {
    if (!m.live() && !with_gone) continue;
    NodeTable t;
    t.state = m.state;
    t.name = interner_->Get(m.name);
    t.node_id = interner_->Get(m.node_id);
    t.generation = m.generation;
    t.address = interner_->Get(m.addr);
    // A table from the member's previous life is not its table any more.
    const OwnerTable* held = tables.Find(m.name);
    if (held != nullptr && held->generation == m.generation) {
      t.table_known = true;
      t.addresses = tables.Addresses(m.name);
      t.endpoints = tables.Endpoints(m.name);
      t.aliases = tables.Aliases(m.name);
    }
    out.push_back(std::move(t));
  }
  return out;
}

MeshStats MeshNode::Stats() const {
  MeshStats s = stats_;
  s.queued_broadcasts = queue_.size();
  s.awareness = membership_.awareness();
  for (const Member& m : membership_.members().all()) {
    switch (m.state) {
      case MemberState::kAlive: s.alive++; break;
      case MemberState::kSuspect: s.suspect++; break;
      case MemberState::kDead: s.dead++; break;
      case MemberState::kLeft: s.left++; break;
    }
  }
  s.membership = membership_.stats();
  s.tables = tables_->stats();
  for (const MemberFlaps& f : membership_.Flapping(kMaxFlappingShown))
    s.flapping.push_back({interner_->Get(f.name), f.flaps, f.false_deaths});
  return s;
}

std::vector<Address> MeshNode::KnownPeers() const {
  std::vector<Address> out;
  for (const Member& m : membership_.members().all())
    if (m.live() && m.name != membership_.self()) out.push_back(interner_->Get(m.addr));
  return out;
}

size_t MeshNode::NumAlive() const {
  size_t n = 0;
  for (const Member& m : membership_.members().all()) n += m.state == MemberState::kAlive;
  return n;
}

std::optional<MemberState> MeshNode::StateOf(const std::string& name) const {
  std::optional<uint32_t> id = interner_->Find(name);
  const Member* m = id ? membership_.members().Find(*id) : nullptr;
  if (m == nullptr) return std::nullopt;
  return m->state;
}

TableDigest MeshNode::TableDigestOf(const std::string& owner) const {
  std::optional<uint32_t> id = interner_->Find(owner);
  return id ? tables_->tables().DigestOf(*id) : TableDigest{};
}

}  // namespace flowmesh::mesh
