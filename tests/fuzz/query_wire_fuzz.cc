// Look's queries between nodes (node/look/look_wire.cc), both sides: a
// query arriving at the answering node (decoded as a look batch, as
// LookService::Answer does) and an answer arriving at the asking node
// (decoded against the questions it asked, as remote_directory.cc does).
// The map's query and answer (node/look/map_wire.cc) share the envelope.
// Key operations ride the mesh's own exchanges (mesh.capnp) and are fuzzed
// with them, by mesh_stream.
//
//   input = [mode][bytes...]          mode % 4 == 0: a query arrives
//           [mode][asked][bytes...]   mode % 4 == 1: look answers arrive to the
//                                     questions `asked` spells (Asked below)
//           [mode][bytes...]          mode % 4 == 2: a map query arrives
//           [mode][bytes...]          mode % 4 == 3: a member's map answer arrives
#include <cstddef>
#include <cstdint>
#include <span>

#include "node/common/log.h"
#include "node/look/look_wire.h"
#include "node/look/local_directory.h"
#include "node/look/map_wire.h"

namespace flowmesh::fuzz {
namespace {

// What the asker asked: bits 0-1 the count (0-3), then two bits per
// question its kind (describe, clients, active; 3 is describe again).
std::vector<LookQuestion> Asked(uint8_t code) {
  std::vector<LookQuestion> asked(code & 3);
  for (size_t i = 0; i < asked.size(); i++)
    asked[i].kind = static_cast<LookQuestion::Kind>(((code >> (2 + 2 * i)) & 3) % 3);
  return asked;
}

}  // namespace
}  // namespace flowmesh::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  if (size < 1) return 0;
  std::span<const uint8_t> bytes(data + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      Result<QueryBatch> batch = DecodeQuery(bytes);
      // What we decode we can encode, and that decodes again.
      if (batch.ok()) {
        Result<std::vector<uint8_t>> again = EncodeQuery(*batch);
        if (again.ok() && !DecodeQuery(*again).ok()) __builtin_trap();
      }
      return 0;
    }
    case 1: {
      if (bytes.empty()) return 0;
      std::vector<LookQuestion> asked = fuzz::Asked(bytes[0]);
      bytes = bytes.subspan(1);
      Result<std::vector<LookAnswer>> answers = DecodeAnswers(bytes, asked);
      if (answers.ok()) {
        if (answers->size() != asked.size()) __builtin_trap();
        Result<std::vector<uint8_t>> again = EncodeAnswers(*answers);
        if (again.ok() && !DecodeAnswers(*again, asked).ok()) __builtin_trap();
      }
      return 0;
    }
    case 2: {
      Result<std::optional<MapAsk>> ask = DecodeMapQuery(bytes);
      if (ask.ok() && ask->has_value()) {
        Result<std::vector<uint8_t>> again = EncodeMapQuery((*ask)->window, (*ask)->group_by);
        if (!again.ok() || !DecodeMapQuery(*again).ok()) __builtin_trap();
      }
      return 0;
    }
    case 3: {
      Result<MemberMap> map = DecodeMapAnswer(bytes);
      if (map.ok()) {
        if (map->entries.size() > kMaxMapEntries) __builtin_trap();
        Result<std::vector<uint8_t>> again = EncodeMapAnswer(map);
        if (again.ok() && !DecodeMapAnswer(*again).ok()) __builtin_trap();
      }
      return 0;
    }
  }
  return 0;
}
