// AES-256-GCM through OpenSSL's EVP interface.
#include "node/mesh/seal.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>

namespace flowmesh::mesh {

Sealer::Sealer(const Keyring& keyring, std::string label)
    : keyring_(keyring), label_(std::move(label)) {
  aad_.resize(1 + label_.size());
  aad_[0] = kSealVersion;
  if (!label_.empty()) std::memcpy(aad_.data() + 1, label_.data(), label_.size());
  // An explicit fetch once: EVP_aes_256_gcm() would re-fetch on every init
  // under OpenSSL 3.
  cipher_ = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  ctx_ = EVP_CIPHER_CTX_new();
}

Sealer::~Sealer() {
  EVP_CIPHER_CTX_free(ctx_);
  EVP_CIPHER_free(cipher_);
}

Result<Bytes> Sealer::Seal(std::span<const uint8_t> plaintext) {
  const Key* key = keyring_.primary();
  if (!key) return InvalidArgument("cannot seal: the cluster keyring is empty");
  if (!cipher_ || !ctx_) return Internal("cannot seal: OpenSSL has no AES-256-GCM");
  if (plaintext.size() > INT_MAX - kSealOverhead)
    return InvalidArgument("cannot seal a message of " + std::to_string(plaintext.size()) +
                           " bytes");
  Bytes out(kSealOverhead + plaintext.size());
  out[0] = kSealVersion;
  uint8_t* nonce = out.data() + 1;
  uint8_t* body = nonce + kNonceBytes;
  uint8_t* tag = body + plaintext.size();
  if (RAND_bytes(nonce, kNonceBytes) != 1) return Internal("cannot seal: RAND_bytes failed");
  int len = 0;
  bool ok =
      EVP_EncryptInit_ex2(ctx_, cipher_, key->data(), nonce, nullptr) == 1 &&
      EVP_EncryptUpdate(ctx_, nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) == 1 &&
      EVP_EncryptUpdate(ctx_, body, &len, plaintext.data(), static_cast<int>(plaintext.size())) ==
          1 &&
      EVP_EncryptFinal_ex(ctx_, body + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kTagBytes, tag) == 1;
  if (!ok) return Internal("cannot seal: AES-256-GCM encryption failed in OpenSSL");
  return out;
}

bool Sealer::TryOpen(const Key& key, std::span<const uint8_t> sealed, Bytes* out) {
  const uint8_t* nonce = sealed.data() + 1;
  const uint8_t* body = nonce + kNonceBytes;
  size_t body_len = sealed.size() - kSealOverhead;
  // GCM wants a writable tag buffer.
  uint8_t tag[kTagBytes];
  std::memcpy(tag, body + body_len, kTagBytes);
  out->resize(body_len);
  int len = 0;
  return EVP_DecryptInit_ex2(ctx_, cipher_, key.data(), nonce, nullptr) == 1 &&
         EVP_DecryptUpdate(ctx_, nullptr, &len, aad_.data(), static_cast<int>(aad_.size())) == 1 &&
         EVP_DecryptUpdate(ctx_, out->data(), &len, body, static_cast<int>(body_len)) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag) == 1 &&
         // Only here is the tag checked; until then `out` is unauthenticated.
         EVP_DecryptFinal_ex(ctx_, out->data() + len, &len) == 1;
}

Result<Bytes> Sealer::Open(std::span<const uint8_t> sealed) {
  if (sealed.size() < kSealOverhead)
    return InvalidArgument("sealed message of " + std::to_string(sealed.size()) +
                           " bytes is shorter than the " + std::to_string(kSealOverhead) +
                           "-byte envelope");
  if (sealed[0] != kSealVersion)
    return InvalidArgument("unknown seal version " + std::to_string(sealed[0]) +
                           " (not flowmesh, or sent unencrypted)");
  if (sealed.size() > INT_MAX) return InvalidArgument("sealed message too large");
  if (!cipher_ || !ctx_) return Internal("cannot open: OpenSSL has no AES-256-GCM");
  Bytes out;
  for (const Key& key : keyring_.keys())
    if (TryOpen(key, sealed, &out)) return out;
  return PermissionDenied("no installed key opens it (another cluster key or cluster label)");
}

}  // namespace flowmesh::mesh
