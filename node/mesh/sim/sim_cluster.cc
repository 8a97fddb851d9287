// Simulated clusters of mesh nodes.
#include "node/mesh/sim/sim_cluster.h"

#include <cstdio>

namespace flowmesh::mesh {

SimCluster::SimCluster(uint64_t seed, MeshConfig base) : base_(std::move(base)), net_(seed) {}
SimCluster::~SimCluster() = default;

std::string SimCluster::NameOf(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "node-%05zu", i);
  return buf;
}

Address SimCluster::AddressOf(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "10.%zu.%zu.%zu:7946", (i >> 16) & 0xff, (i >> 8) & 0xff,
                i & 0xff);
  return buf;
}

MeshConfig SimCluster::ConfigFor(size_t i, uint64_t generation) const {
  MeshConfig c = base_;
  c.name = NameOf(i);
  c.node_id = "id-" + NameOf(i);
  c.generation = generation;
  c.interner = interner_;
  return c;
}

std::unique_ptr<MeshNode> SimCluster::MakeNode(size_t i) {
  auto node = std::make_unique<MeshNode>(net_.runtime(AddressOf(i)), net_.transport(AddressOf(i)),
                                         ConfigFor(i, generations_[i]));
  node->SetObserver([this, i](const std::string& member, MemberState state) {
    if (state != MemberState::kDead) return;
    // Names are "node-%05zu".
    size_t m = std::stoul(member.substr(5));
    deaths_.push_back(Death{net_.NowNs(), i, m});
  });
  return node;
}

void SimCluster::AddNodes(size_t n) {
  // Names first: they get the low ids, and each node's name-indexed lookup
  // table then needs one slot per member rather than one per string.
  for (size_t k = 0; k < n; k++) interner_->Intern(NameOf(nodes_.size() + k));
  for (size_t k = 0; k < n; k++) {
    size_t i = nodes_.size();
    net_.AddHost(AddressOf(i));
    generations_.push_back(1);
    killed_.push_back(false);
    nodes_.push_back(MakeNode(i));
  }
}

void SimCluster::Start(size_t i, std::vector<Address> seeds) { nodes_[i]->Start(std::move(seeds)); }

void SimCluster::StartAll(size_t seeds, int64_t stagger_ns) {
  uint64_t rng = 12345;
  for (size_t i = 0; i < nodes_.size(); i++) {
    std::vector<Address> s;
    for (size_t k = 0; k < seeds && i > 0; k++) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      s.push_back(AddressOf((rng >> 33) % i));
    }
    Start(i, s);
    if (stagger_ns > 0) net_.RunFor(stagger_ns);
  }
}

void SimCluster::StartConverged() {
  std::vector<AliveMsg> all;
  for (size_t i = 0; i < nodes_.size(); i++)
    all.push_back(AliveMsg{NameOf(i), AddressOf(i), "id-" + NameOf(i), generations_[i], 1});
  for (auto& n : nodes_) n->StartConverged(all);
}

void SimCluster::Kill(size_t i) {
  net_.Kill(AddressOf(i));
  nodes_[i].reset();
  killed_[i] = true;
}

void SimCluster::Restart(size_t i, std::vector<Address> seeds) {
  if (nodes_[i]) Kill(i);
  net_.Revive(AddressOf(i));
  generations_[i]++;
  nodes_[i] = MakeNode(i);
  nodes_[i]->Start(std::move(seeds));
}

size_t SimCluster::CountSeeing(size_t i, MemberState state) const {
  std::string name = NameOf(i);
  size_t n = 0;
  for (size_t k = 0; k < nodes_.size(); k++) {
    if (k == i || !nodes_[k]) continue;
    auto s = nodes_[k]->StateOf(name);
    n += s && *s == state;
  }
  return n;
}

bool SimCluster::AllSee(size_t i, MemberState state) const {
  size_t others = Running() - (up(i) ? 1 : 0);
  return CountSeeing(i, state) == others;
}

bool SimCluster::AllSeeAlive(size_t n) const {
  for (const auto& node : nodes_)
    if (node && node->NumAlive() != n) return false;
  return true;
}

size_t SimCluster::CountHoldingTable(size_t i, uint64_t version) const {
  std::string name = NameOf(i);
  size_t n = 0;
  for (size_t k = 0; k < nodes_.size(); k++)
    if (nodes_[k] &&
        (k == i || nodes_[k]->TableDigestOf(name) >= TableDigest{generations_[i], version}))
      n++;
  return n;
}

size_t SimCluster::FalseDeaths() const {
  size_t n = 0;
  for (const Death& d : deaths_) n += !killed_[d.member];
  return n;
}

size_t SimCluster::Running() const {
  size_t n = 0;
  for (const auto& node : nodes_) n += node != nullptr;
  return n;
}

}  // namespace flowmesh::mesh
