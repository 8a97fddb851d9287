// Key rotation (meshctl keys): an operation on the keyring of every live
// member, this node last, each member's keyring after it gathered back. A
// member applies an operation only when it is addressed to it, and saves its
// key file before it answers, so a rotation survives restarts.
#pragma once

#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "node/common/log.h"
#include "node/common/status.h"
#include "node/mesh/keyring.h"
#include "node/mesh/mesh_node.h"
#include "node/mesh/scatter_gather.h"

namespace flowmesh::mesh {

// One member's keyring after an operation, or why it has none.
struct MemberKeys {
  std::string node;
  std::string error;  // "" = done
  std::vector<KeyInfo> keys;
};

struct KeyRotationOptions {
  std::string node_name;
  std::string key_file;  // "" = the ring lives in memory only
  bool insecure = false;  // unsealed: there are no keys
};

class KeyRotation {
 public:
  using Sender = ScatterGather<KeyRequestMsg, KeyResponseMsg>::Sender;
  // `keyring` is read and changed on `mesh` (the mesh thread, where sealing
  // reads it); key files are written on `workers`. `members` lists the
  // members (from any thread); `send` delivers a request to one of them.
  KeyRotation(KeyRotationOptions options, Keyring& keyring, asio::io_context& mesh,
              asio::thread_pool& workers, std::function<std::vector<MemberView>()> members,
              Sender send);

  // Another member's request, on the mesh thread; `reply` runs there too.
  void Serve(const KeyRequestMsg& request, std::function<void(Result<KeyResponseMsg>)> reply);

  // meshctl keys: `op` on every live member, then here; every member's
  // keyring after it, sorted by name. `key` is base64, or for use and remove
  // a fingerprint prefix of a key this node has. Blocks for at most a few
  // seconds; call it off the mesh thread.
  Result<std::vector<MemberKeys>> Run(KeyOp op, const std::string& key);

  // Operations refused as addressed to another member (mesh thread only).
  uint64_t misaddressed() const { return misaddressed_; }

 private:
  // On the mesh thread: changes the keyring, then saves the key file on a
  // worker; `done` gets the ring after the change, on the mesh thread.
  void Apply(KeyOp op, const Key& key, std::function<void(Status, std::vector<KeyInfo>)> done);
  // The key `text` names (base64, or a fingerprint prefix for use and remove).
  Result<Key> Resolve(KeyOp op, const std::string& text);

  KeyRotationOptions options_;
  Keyring& keyring_;
  asio::io_context& mesh_;
  asio::thread_pool& workers_;
  std::function<std::vector<MemberView>()> members_;
  Sender send_;
  uint64_t misaddressed_ = 0;
  log::RateLimit misaddressed_log_{10'000'000'000};
};

}  // namespace flowmesh::mesh
