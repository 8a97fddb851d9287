// A mesh of MeshNodes on a SimNetwork, for tests and bench/: numbered hosts
// ("node-00042" at 10.0.0.42:7946), one shared interner, start/kill/restart,
// and counting who sees what.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "node/mesh/config.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/sim/sim_network.h"

namespace flowmesh::mesh {

class SimCluster {
 public:
  // `base` supplies the timing knobs for every node.
  explicit SimCluster(uint64_t seed, MeshConfig base = {});
  ~SimCluster();

  static std::string NameOf(size_t i);
  static Address AddressOf(size_t i);

  // Adds hosts with nodes that are not started yet.
  void AddNodes(size_t n);
  size_t size() const { return nodes_.size(); }
  SimNetwork& net() { return net_; }
  MeshNode& node(size_t i) { return *nodes_[i]; }
  bool up(size_t i) const { return nodes_[i] != nullptr; }

  void Start(size_t i, std::vector<Address> seeds);
  // Starts nodes [0, n): node 0 alone, the others through `seeds` random
  // earlier nodes, `stagger_ns` apart.
  void StartAll(size_t seeds, int64_t stagger_ns);
  // Starts every node as if the mesh had converged long ago.
  void StartConverged();
  // The process dies (its host stays, unreachable until restarted).
  void Kill(size_t i);
  // A new process on the same host: same name, next generation.
  void Restart(size_t i, std::vector<Address> seeds);

  // How many running nodes (other than `i` itself) see node i in `state`.
  size_t CountSeeing(size_t i, MemberState state) const;
  // Every running node other than i sees node i in `state`.
  bool AllSee(size_t i, MemberState state) const;
  // Every running node sees exactly `n` alive members.
  bool AllSeeAlive(size_t n) const;
  // Running nodes holding at least `version` of node i's current table.
  size_t CountHoldingTable(size_t i, uint64_t version) const;
  // A member declared dead by a node, as it happened.
  struct Death {
    int64_t at_ns;
    size_t observer;
    size_t member;
  };
  const std::vector<Death>& deaths() const { return deaths_; }
  // Deaths declared about members that were never killed.
  size_t FalseDeaths() const;
  size_t Running() const;

 private:
  MeshConfig ConfigFor(size_t i, uint64_t generation) const;
  std::unique_ptr<MeshNode> MakeNode(size_t i);

  MeshConfig base_;
  std::shared_ptr<Interner> interner_ = std::make_shared<Interner>();
  SimNetwork net_;
  std::vector<std::unique_ptr<MeshNode>> nodes_;
  std::vector<uint64_t> generations_;
  std::vector<bool> killed_;
  std::vector<Death> deaths_;
};

}  // namespace flowmesh::mesh
