// What `meshctl keys` carries over the control socket: the operation, and
// each member's keyring after it. The daemon converts to and from key
// rotation's own types (node/mesh/key_rotation.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowmesh {

enum class KeyOp : uint8_t { kList, kInstall, kUse, kRemove };
struct KeyState {
  std::string fingerprint;
  bool primary = false;
};
struct NodeKeys {
  std::string node;
  std::string error;  // "" = done
  std::vector<KeyState> keys;
};

}  // namespace flowmesh
