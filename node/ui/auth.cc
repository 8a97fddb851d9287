// Token file, constant-time checks, the session cookie and the login throttle.
#include "node/ui/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "node/common/secret_file.h"

namespace flowmesh::ui {
namespace {

// What the cookie's HMAC is of; changing it logs every browser out.
constexpr std::string_view kCookieLabel = "flowmesh ui session v1";

std::array<uint8_t, 32> Sha256(std::string_view s) {
  std::array<uint8_t, 32> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// The value of cookie `name` in a Cookie header ("a=1; b=2").
std::optional<std::string_view> CookieValue(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (part.starts_with(' ')) part.remove_prefix(1);
    size_t eq = part.find('=');
    if (eq != std::string_view::npos && part.substr(0, eq) == name) return part.substr(eq + 1);
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> LoadTokenFile(const std::string& path) {
  Result<std::string> text = ReadSecretFile(
      path, "--ui-token-file", 4096,
      "a token file is one line, e.g. `head -c24 /dev/urandom | base64 > " + path + "`");
  if (!text.ok()) return text.status();
  std::string token = std::move(text).value();
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  const std::string fix = "; write one line of at least " + std::to_string(kMinTokenLength) +
                          " characters, e.g. `head -c24 /dev/urandom | base64 > " + path +
                          "; chmod 600 " + path + "`";
  if (token.find_first_of("\r\n") != std::string::npos)
    return InvalidArgument("--ui-token-file " + path + " has more than one line" + fix);
  if (token.find_first_of(" \t") != std::string::npos)
    return InvalidArgument("--ui-token-file " + path +
                           " has spaces in its token (a Bearer header cannot carry them)" + fix);
  if (token.size() < kMinTokenLength)
    return InvalidArgument("--ui-token-file " + path + " holds " + std::to_string(token.size()) +
                           " characters, too short to resist guessing" + fix);
  return token;
}

Auth::Auth(std::optional<std::string> token) {
  if (!token) return;
  token_digest_ = Sha256(*token);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), token->data(), static_cast<int>(token->size()),
       reinterpret_cast<const unsigned char*>(kCookieLabel.data()), kCookieLabel.size(), mac, &len);
  cookie_value_ = Hex(mac, len);
  cookie_digest_ = Sha256(cookie_value_);
  OPENSSL_cleanse(token->data(), token->size());
}

AuthResult Auth::Compare(std::string_view presented, const Digest& expected) {
  // Digests of both sides, compared in full: neither the content nor the
  // length of the right token shows in the time taken.
  compares_.fetch_add(1, std::memory_order_relaxed);
  Digest got = Sha256(presented);
  if (CRYPTO_memcmp(got.data(), expected.data(), got.size()) == 0) return AuthResult::kOk;
  Failed();
  return AuthResult::kWrong;
}

AuthResult Auth::CheckToken(std::string_view presented) {
  if (!token_digest_) return AuthResult::kOk;
  if (presented.empty()) return AuthResult::kMissing;
  if (Throttled()) return AuthResult::kThrottled;
  return Compare(presented, *token_digest_);
}

AuthResult Auth::Check(const http::HttpRequest& request) {
  if (!token_digest_) return AuthResult::kOk;
  if (std::optional<std::string_view> h = request.Header("authorization")) {
    std::string_view v = *h;
    if (v.size() < 7 || !EqualsIgnoreCase(v.substr(0, 6), "bearer") || v[6] != ' ') {
      Failed();
      return AuthResult::kWrong;
    }
    v.remove_prefix(7);
    while (v.starts_with(' ')) v.remove_prefix(1);  // "Bearer   TOKEN": lenient, as curl users type
    return CheckToken(v);
  }
  if (std::optional<std::string_view> h = request.Header("cookie")) {
    if (std::optional<std::string_view> c = CookieValue(*h, kCookieName))
      return Compare(*c, *cookie_digest_);
  }
  return AuthResult::kMissing;
}

std::string Auth::SessionCookie() const {
  return std::string(kCookieName) + "=" + cookie_value_ + "; Path=/; HttpOnly; SameSite=Strict";
}

std::string Auth::ClearedCookie() {
  return std::string(kCookieName) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0";
}

bool Auth::Throttled() {
  std::lock_guard<std::mutex> lock(mu_);
  // The ring's slot `next_` holds the oldest of the last kMaxFailures.
  if (recorded_ < kMaxFailures ||
      std::chrono::steady_clock::now() - failures_at_[next_] >= kFailureWindow)
    return false;
  throttled_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void Auth::Failed() {
  failures_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  failures_at_[next_] = std::chrono::steady_clock::now();
  next_ = (next_ + 1) % kMaxFailures;
  if (recorded_ < kMaxFailures) ++recorded_;
}

int64_t Auth::RetryAfterSeconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  auto left = kFailureWindow - (std::chrono::steady_clock::now() - failures_at_[next_]);
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(left).count());
}

AuthStats Auth::Stats() const {
  return {failures_.load(std::memory_order_relaxed), throttled_.load(std::memory_order_relaxed),
          compares_.load(std::memory_order_relaxed)};
}

}  // namespace flowmesh::ui
