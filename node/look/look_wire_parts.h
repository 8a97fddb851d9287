// The parts look's and map's query messages share (look_wire.cc): lists of
// edges and endpoints to and from Cap'n Proto, the size cap on the way out,
// and the bounded reader on the way in. Internal to node/look.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "node/common/status.h"
#include "node/look/look.h"
#include "node/look/look_wire.h"
#include "node/wire/wire.h"
#include "schema/query.capnp.h"

namespace flowmesh::look_wire {

// Our deepest path: response > answers > answer > processes > process >
// clients > edge > endpoint > addr.
constexpr int kNestingLimit = 12;

void SetClients(capnp::List<schema::query::ClientEdge>::Builder list,
                const std::vector<ClientEdge>& edges);
Result<std::vector<ClientEdge>> GetClients(capnp::List<schema::query::ClientEdge>::Reader list);
// NAT's fields are absent when there was no translation: port 0.
Result<Endpoint> OptionalEndpoint(bool has, schema::Endpoint::Reader e);
void SetDependencies(capnp::List<schema::query::DependencyEdge>::Builder list,
                     const std::vector<DependencyEdge>& edges);
Result<std::vector<DependencyEdge>> GetDependencies(
    capnp::List<schema::query::DependencyEdge>::Reader list);
void SetEndpoints(capnp::List<schema::Endpoint>::Builder list, const std::vector<Endpoint>& eps);
Result<std::vector<Endpoint>> GetEndpoints(capnp::List<schema::Endpoint>::Reader list);
schema::query::GroupBy GroupByToWire(GroupBy g);
Result<GroupBy> GroupByFromWire(schema::query::GroupBy g, const char* what);
// The message's bytes, or kResourceExhausted when over kMaxQueryBytes.
Result<std::vector<uint8_t>> Flatten(capnp::MallocMessageBuilder& message, const char* what);

// Reads a flat message after checking its size; `fn` converts the root.
template <typename Root, typename T, typename Fn>
Result<T> Read(std::span<const uint8_t> bytes, const char* what, Fn fn) {
  if (bytes.size() > kMaxQueryBytes)
    return InvalidArgument(std::string(what) + " of " + std::to_string(bytes.size()) +
                           " bytes is over the cap");
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0)
    return InvalidArgument(std::string("malformed ") + what + ": " + std::to_string(bytes.size()) +
                           " bytes is not whole words");
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = words.size() * 2;  // no amplification beyond the bytes sent
  options.nestingLimit = kNestingLimit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    T out;
    FM_RETURN_IF_ERROR(fn(reader.getRoot<Root>(), &out));
    return out;
  } catch (const kj::Exception& e) {
    return InvalidArgument(std::string("malformed ") + what + ": " + e.getDescription().cStr());
  }
}

}  // namespace flowmesh::look_wire
