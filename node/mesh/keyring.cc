// Keyring rules, key encoding and the key file.
#include "node/mesh/keyring.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "node/common/secret_file.h"

namespace flowmesh::mesh {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const std::string kMakeKeyHint = "keys are 32 random bytes, e.g. `head -c32 /dev/urandom | base64`";
// A key file holds a handful of 45-byte lines; anything much larger is not one.
constexpr off_t kMaxFileBytes = 64 * 1024;

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A file descriptor closed on every path.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

std::string Fingerprint(const Key& key) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(key.data(), key.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; i++) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string EncodeKey(const Key& key) {
  std::string out;
  for (size_t i = 0; i < key.size(); i += 3) {
    uint32_t n = uint32_t{key[i]} << 16;
    size_t have = std::min<size_t>(3, key.size() - i);
    if (have > 1) n |= uint32_t{key[i + 1]} << 8;
    if (have > 2) n |= key[i + 2];
    for (size_t j = 0; j < 4; j++) out += j <= have ? kAlphabet[(n >> (18 - 6 * j)) & 63] : '=';
  }
  return out;
}

Result<Key> DecodeKey(std::string_view text) {
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); i++) {
    char c = text[i];
    if (c == '=') {
      padding++;
      continue;
    }
    int v = Base64Value(c);
    if (v < 0 || padding > 0)
      return InvalidArgument("character " + std::to_string(i + 1) + " is not base64; " +
                             kMakeKeyHint);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (padding > 2 || (text.size() % 4 != 0 && padding > 0))
    return InvalidArgument("malformed base64 padding; " + kMakeKeyHint);
  if (bytes.size() != kKeyBytes) {
    size_t n = bytes.size();
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return InvalidArgument("key is " + std::to_string(n) + " bytes after base64 decoding; " +
                           kMakeKeyHint);
  }
  Key key;
  std::copy(bytes.begin(), bytes.end(), key.begin());
  OPENSSL_cleanse(bytes.data(), bytes.size());
  return key;
}

Result<Key> GenerateKey() {
  Key key;
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1)
    return Internal("cannot generate a key: OpenSSL's random generator failed");
  return key;
}

Keyring::~Keyring() {
  if (!keys_.empty()) OPENSSL_cleanse(keys_.data(), keys_.size() * sizeof(Key));
}

Result<Keyring> Keyring::FromKeys(const std::vector<Key>& keys) {
  Keyring ring;
  for (const Key& key : keys) {
    if (std::find(ring.keys_.begin(), ring.keys_.end(), key) != ring.keys_.end())
      return InvalidArgument("key " + Fingerprint(key) + " is listed twice");
    FM_RETURN_IF_ERROR(ring.Install(key));
  }
  return ring;
}

Status Keyring::Install(const Key& key) {
  if (std::find(keys_.begin(), keys_.end(), key) != keys_.end()) return Status::Ok();
  if (keys_.size() >= kMaxKeys)
    return Status(Status::Code::kResourceExhausted,
                  "cannot install key " + Fingerprint(key) + ": the keyring already holds " +
                      std::to_string(kMaxKeys) + " keys; remove an old one first");
  keys_.push_back(key);
  return Status::Ok();
}

Status Keyring::Use(const Key& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end())
    return NotFound("cannot use key " + Fingerprint(key) +
                    ": it is not installed; install it on every node first");
  // Rotate rather than swap so the other keys keep their order.
  std::rotate(keys_.begin(), it, it + 1);
  return Status::Ok();
}

Status Keyring::Remove(const Key& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) return NotFound("key " + Fingerprint(key) + " is not installed");
  if (it == keys_.begin())
    return InvalidArgument("cannot remove key " + Fingerprint(key) +
                           ": it is the primary; use another key first");
  OPENSSL_cleanse(it->data(), it->size());
  keys_.erase(it);
  return Status::Ok();
}

Result<Key> Keyring::FindByFingerprint(std::string_view prefix) const {
  if (prefix.size() < 4 || prefix.size() > 8)
    return InvalidArgument(
        "'" + std::string(prefix) +
        "' is not a key fingerprint (4 to 8 hex digits, see `meshctl keys list`)");
  const Key* found = nullptr;
  for (const Key& key : keys_) {
    if (Fingerprint(key).compare(0, prefix.size(), prefix) != 0) continue;
    if (found) return InvalidArgument("fingerprint '" + std::string(prefix) + "' is ambiguous");
    found = &key;
  }
  if (!found) return NotFound("no installed key has fingerprint '" + std::string(prefix) + "'");
  return *found;
}

std::vector<KeyInfo> Keyring::List() const {
  std::vector<KeyInfo> out;
  for (size_t i = 0; i < keys_.size(); i++) out.push_back({Fingerprint(keys_[i]), i == 0});
  return out;
}

std::string FormatKeyringFile(const Keyring& keyring) {
  std::string out =
      "# flowmesh cluster keys, written by meshd. One base64 key per line; the first\n"
      "# (primary) encrypts, all decrypt. Keep this file mode 0600.\n";
  for (const Key& key : keyring.keys()) out += EncodeKey(key) + "\n";
  return out;
}

Result<Keyring> ParseKeyringFile(std::string_view text, const std::string& name) {
  std::vector<Key> keys;
  size_t line_no = 0;
  Status error;
  while (!text.empty() && error.ok()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    line_no++;
    if (line.empty() || line.front() == '#') continue;
    std::string where = name + " line " + std::to_string(line_no) + ": ";
    Result<Key> key = DecodeKey(line);
    if (!key.ok()) {
      error = key.status().WithContext(name + " line " + std::to_string(line_no));
    } else if (std::find(keys.begin(), keys.end(), *key) != keys.end()) {
      error = InvalidArgument(where + "key " + Fingerprint(*key) + " is listed twice");
    } else if (keys.size() >= kMaxKeys) {
      error = InvalidArgument(where + "more than " + std::to_string(kMaxKeys) +
                              " keys; remove the ones no node uses any more");
    } else {
      keys.push_back(*key);
    }
    if (key.ok()) OPENSSL_cleanse(key->data(), key->size());
  }
  Result<Keyring> ring = error.ok() ? Keyring::FromKeys(keys) : Result<Keyring>(error);
  if (!keys.empty()) OPENSSL_cleanse(keys.data(), keys.size() * sizeof(Key));
  if (ring.ok() && ring->empty())
    return InvalidArgument(
        name + " holds no key; add one with `head -c32 /dev/urandom | base64 >> " + name + "`");
  return ring;
}

Result<Keyring> LoadKeyringFile(const std::string& path) {
  Result<std::string> text = ReadSecretFile(path, "cluster key file", kMaxFileBytes,
                                            "a key file is a few lines of base64");
  if (!text.ok()) return text.status();
  Result<Keyring> ring = ParseKeyringFile(*text, path);
  OPENSSL_cleanse(text->data(), text->size());
  return ring;
}

Status SaveKeyringFile(const std::string& path, const Keyring& keyring) {
  if (keyring.empty()) return InvalidArgument("refusing to write an empty keyring to " + path);
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  std::string text = FormatKeyringFile(keyring);
  Status st;
  {
    Fd f;
    // O_EXCL|O_NOFOLLOW: never write through a link someone planted.
    f.fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (f.fd < 0 && errno == EEXIST) {  // left by a crash of this very pid number
      unlink(tmp.c_str());
      f.fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (f.fd < 0) {
      OPENSSL_cleanse(text.data(), text.size());
      return Status::FromErrno(errno, "cannot create " + tmp + " to save the cluster keys");
    }
    size_t done = 0;
    while (done < text.size() && st.ok()) {
      ssize_t n = write(f.fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        st = Status::FromErrno(errno, "cannot write " + tmp);
      else
        done += static_cast<size_t>(n);
    }
    if (st.ok() && fsync(f.fd) != 0) st = Status::FromErrno(errno, "cannot fsync " + tmp);
  }
  OPENSSL_cleanse(text.data(), text.size());
  if (st.ok() && rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::FromErrno(errno, "cannot rename " + tmp + " to " + path);
  if (!st.ok()) {
    unlink(tmp.c_str());
    return st;
  }
  // The rename is durable only once the directory is synced.
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  Fd d;
  d.fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) fsync(d.fd);
  return Status::Ok();
}

}  // namespace flowmesh::mesh
