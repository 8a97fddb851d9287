// Queries between nodes (schema/query.capnp): look's questions and answers
// (one request carries every question the origin has for a node at one level
// of the walk, one response every answer) and key rotation. Decoding checks the size against a cap
// before anything is allocated and reads with tight ReaderOptions; a malformed
// message is an error the caller counts and drops.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/control/backend.h"
#include "node/look/look.h"
#include "node/mesh/keyring.h"

namespace flowmesh {

// What one node is asked: the window and its questions (their `node` is not
// sent: the receiver is the node).
struct QueryBatch {
  TimeWindow window;
  std::vector<LookQuestion> questions;
};

// Under the mesh's exchange cap (4 MiB) with room for its envelope.
constexpr size_t kMaxQueryBytes = (4u << 20) - 4096;

Result<std::vector<uint8_t>> EncodeQuery(const QueryBatch& batch);
Result<QueryBatch> DecodeQuery(std::span<const uint8_t> bytes);
// An answer whose status is not ok travels as its message.
Result<std::vector<uint8_t>> EncodeAnswers(const std::vector<LookAnswer>& answers);
// `kinds` are the questions asked, in order: they say which part of each
// answer to read, and the count must match.
Result<std::vector<LookAnswer>> DecodeAnswers(std::span<const uint8_t> bytes,
                                              const std::vector<LookQuestion>& asked);

// What a query asks, to route it before decoding it whole: look questions
// read the store (a worker thread), key operations change the keyring (the
// mesh thread).
enum class QueryKind : uint8_t { kLook, kKeys };
Result<QueryKind> PeekQuery(std::span<const uint8_t> bytes);

struct KeyRequest {
  KeyOp op = KeyOp::kList;
  mesh::Key key{};  // unused for list
  // The member (node name) it is addressed to; a member refuses a request
  // addressed to another (a cross-node replay), and one addressed to nobody.
  std::string recipient;
};
Result<std::vector<uint8_t>> EncodeKeyRequest(const KeyRequest& request);
Result<KeyRequest> DecodeKeyRequest(std::span<const uint8_t> bytes);
// A member's keyring after the operation (fingerprints, the primary first),
// or why it failed.
Result<std::vector<uint8_t>> EncodeKeyAnswer(const Status& status,
                                             const std::vector<mesh::KeyInfo>& keys);
// A failed operation decodes as its error status.
Result<std::vector<mesh::KeyInfo>> DecodeKeyAnswer(std::span<const uint8_t> bytes);

}  // namespace flowmesh
