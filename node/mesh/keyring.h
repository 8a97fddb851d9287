// The cluster keyring: the AES-256 keys that seal mesh traffic. The primary key
// encrypts, every installed key decrypts, so a key can be rotated across a
// running mesh (install everywhere, use everywhere, remove everywhere) without
// a moment when two nodes cannot read each other.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/status.h"

namespace flowmesh::mesh {

constexpr size_t kKeyBytes = 32;  // AES-256
// Open() tries every key on a packet that fails, so the ring size bounds the
// work a stranger's garbage costs; rotation needs two or three at a time.
constexpr size_t kMaxKeys = 16;

using Key = std::array<uint8_t, kKeyBytes>;

// How users name a key: the first 8 hex digits of its SHA-256. Keys are never
// logged or printed in full.
std::string Fingerprint(const Key& key);
// Standard base64 (with padding), the key file's spelling.
std::string EncodeKey(const Key& key);
// Strict base64; the error says what is wrong and how to make a good key.
Result<Key> DecodeKey(std::string_view base64);
// 32 bytes from OpenSSL's CSPRNG.
Result<Key> GenerateKey();

struct KeyInfo {
  std::string fingerprint;
  bool primary = false;
};

// Not thread-safe: sealers read it on the mesh's thread, so changes (meshctl
// keys ...) are posted to that thread.
class Keyring {
 public:
  Keyring() = default;
  // `keys` in order, the first is the primary; duplicates are refused.
  static Result<Keyring> FromKeys(const std::vector<Key>& keys);
  Keyring(const Keyring&) = default;
  Keyring& operator=(const Keyring&) = default;
  Keyring(Keyring&&) = default;
  Keyring& operator=(Keyring&&) = default;
  // Wipes the key bytes so they do not linger in freed memory.
  ~Keyring();

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }
  // The primary first, then the others in installation order.
  const std::vector<Key>& keys() const { return keys_; }
  // nullptr when the ring is empty.
  const Key* primary() const { return keys_.empty() ? nullptr : &keys_.front(); }

  // Adds a decryption key; installing one already present is a no-op. The
  // first key installed into an empty ring becomes the primary.
  Status Install(const Key& key);
  // Makes an installed key the primary (the one that encrypts).
  Status Use(const Key& key);
  // Removes a key that is not the primary.
  Status Remove(const Key& key);
  // The key whose fingerprint starts with `prefix` (at least 4 hex digits),
  // for commands that name keys by fingerprint; ambiguous prefixes are errors.
  Result<Key> FindByFingerprint(std::string_view prefix) const;
  std::vector<KeyInfo> List() const;

 private:
  std::vector<Key> keys_;  // keys_[0] is the primary
};

// Reads a key file: one base64 key per line, the first is the primary, '#'
// starts a comment line. Refuses a file that group or others can access.
Result<Keyring> LoadKeyringFile(const std::string& path);
// Writes the ring in the same format, atomically (temporary file, fsync,
// rename) with mode 0600, so a rotation survives a restart or a crash.
Status SaveKeyringFile(const std::string& path, const Keyring& keyring);
// The file's contents for `keyring` (exposed for tests).
std::string FormatKeyringFile(const Keyring& keyring);
// Parses the contents; `name` is used in error messages.
Result<Keyring> ParseKeyringFile(std::string_view text, const std::string& name);

}  // namespace flowmesh::mesh
