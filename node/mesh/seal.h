// AES-256-GCM sealing of one mesh message under the cluster keyring, with the
// cluster label as associated data: a node with another key or another label
// can neither read nor forge anything. Freshness (replays) is the caller's
// job: see seal_replay.h and sealed_transport.h.
//
//   sealed = [version 1][nonce 12][ciphertext][tag 16]
//
// The nonce is random and not derived from the key, so Open can try each key
// on the same bytes. 96 random bits per message keep the chance of a nonce
// repeating under one key below 2^-32 for the first 2^32 messages, which is
// decades of mesh traffic per key; rotate keys long before that.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "node/common/status.h"
#include "node/mesh/keyring.h"
#include "node/mesh/transport.h"

typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace flowmesh::mesh {

constexpr uint8_t kSealVersion = 1;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr size_t kSealOverhead = 1 + kNonceBytes + kTagBytes;

class Sealer {
 public:
  // Reads `keyring` at every call, so Install/Use/Remove take effect at once;
  // the keyring must outlive the sealer.
  Sealer(const Keyring& keyring, std::string label);
  ~Sealer();
  Sealer(const Sealer&) = delete;
  Sealer& operator=(const Sealer&) = delete;

  // Encrypts under the primary key. Fails only if the ring is empty or
  // OpenSSL fails.
  Result<Bytes> Seal(std::span<const uint8_t> plaintext);
  // Tries the primary, then the other keys. Every failure looks the same to
  // the caller on purpose (wrong key, wrong label, tampering, truncation).
  Result<Bytes> Open(std::span<const uint8_t> sealed);

  const std::string& label() const { return label_; }

 private:
  bool TryOpen(const Key& key, std::span<const uint8_t> sealed, Bytes* out);

  const Keyring& keyring_;
  const std::string label_;
  Bytes aad_;  // version byte + label
  EVP_CIPHER* cipher_ = nullptr;
  EVP_CIPHER_CTX* ctx_ = nullptr;
};

}  // namespace flowmesh::mesh
