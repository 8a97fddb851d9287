// Token file, constant-time checks, the session cookie and its age.
#include "node/ui/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

#include "node/common/clock.h"
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
std::optional<std::string_view> CookieValueOf(std::string_view header, std::string_view name) {
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

Auth::Auth(std::optional<std::string> token, uint16_t port, std::function<int64_t()> now_ms)
    : cookie_name_(std::string(kCookiePrefix) + std::to_string(port)), now_ms_(std::move(now_ms)) {
  if (!now_ms_) now_ms_ = [] { return RealtimeNs() / 1000000; };
  if (!token) return;
  token_digest_ = Sha256(*token);
  unsigned int len = 0;
  HMAC(EVP_sha256(), token->data(), static_cast<int>(token->size()),
       reinterpret_cast<const unsigned char*>(kCookieLabel.data()), kCookieLabel.size(),
       cookie_key_.data(), &len);
  OPENSSL_cleanse(token->data(), token->size());
}

std::string Auth::CookieValue(int64_t issued_ms) const {
  std::string issued = std::to_string(issued_ms);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), cookie_key_.data(), static_cast<int>(cookie_key_.size()),
       reinterpret_cast<const unsigned char*>(issued.data()), issued.size(), mac, &len);
  return issued + "." + Hex(mac, len);
}

bool Auth::Matches(std::string_view presented, const Digest& expected) {
  // Digests of both sides, compared in full: neither the content nor the
  // length of the right value shows in the time taken.
  compares_.fetch_add(1, std::memory_order_relaxed);
  Digest got = Sha256(presented);
  return CRYPTO_memcmp(got.data(), expected.data(), got.size()) == 0;
}

AuthResult Auth::CheckToken(std::string_view presented, std::string_view peer) {
  if (!token_digest_) return AuthResult::kOk;
  if (presented.empty()) return AuthResult::kMissing;
  const std::string source = SourceKey(peer);
  if (throttle_.Throttled(source)) {
    throttled_.fetch_add(1, std::memory_order_relaxed);
    return AuthResult::kThrottled;
  }
  if (Matches(presented, *token_digest_)) return AuthResult::kOk;
  failures_.fetch_add(1, std::memory_order_relaxed);
  guesses_.fetch_add(1, std::memory_order_relaxed);
  throttle_.Failed(source);
  return AuthResult::kWrong;
}

AuthResult Auth::CheckCookie(std::string_view value) {
  // "ISSUED_MS.MAC": the MAC is checked against the one this issue time
  // would have (in constant time), then the age; a garbled value is wrong.
  size_t dot = value.find('.');
  int64_t issued = 0;
  auto [p, err] = std::from_chars(value.data(), value.data() + std::min(dot, value.size()), issued);
  bool ok = dot != std::string_view::npos && err == std::errc() && p == value.data() + dot &&
            Matches(value, Sha256(CookieValue(issued)));
  const int64_t now = now_ms_();
  constexpr int64_t kAgeMs = std::chrono::milliseconds(kSessionAge).count();
  constexpr int64_t kSkewMs = 5 * 60 * 1000;  // a clock stepped back a little
  if (ok && issued > revoked_until_ms_.load() && issued <= now + kSkewMs && now - issued <= kAgeMs)
    return AuthResult::kOk;
  failures_.fetch_add(1, std::memory_order_relaxed);
  return AuthResult::kWrong;
}

AuthResult Auth::Check(const http::HttpRequest& request) {
  if (!token_digest_) return AuthResult::kOk;
  if (std::optional<std::string_view> h = request.Header("authorization")) {
    std::string_view v = *h;
    if (v.size() < 7 || !EqualsIgnoreCase(v.substr(0, 6), "bearer") || v[6] != ' ') {
      failures_.fetch_add(1, std::memory_order_relaxed);
      return AuthResult::kWrong;
    }
    v.remove_prefix(7);
    while (v.starts_with(' ')) v.remove_prefix(1);  // "Bearer   TOKEN": lenient, as curl users type
    return CheckToken(v, request.peer);
  }
  if (std::optional<std::string_view> h = request.Header("cookie")) {
    if (std::optional<std::string_view> c = CookieValueOf(*h, cookie_name_)) return CheckCookie(*c);
  }
  return AuthResult::kMissing;
}

std::string Auth::SessionCookie() const {
  return cookie_name_ + "=" + CookieValue(now_ms_()) +
         "; Path=/; Max-Age=" + std::to_string(std::chrono::seconds(kSessionAge).count()) +
         "; HttpOnly; SameSite=Strict";
}

std::string Auth::ClearedCookie() const {
  return cookie_name_ + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
}

void Auth::RevokeSessions() { revoked_until_ms_.store(now_ms_()); }

int64_t Auth::RetryAfterSeconds(std::string_view peer) const {
  return throttle_.RetryAfterSeconds(SourceKey(peer));
}

AuthStats Auth::Stats() const {
  return {failures_.load(std::memory_order_relaxed), throttled_.load(std::memory_order_relaxed),
          guesses_.load(std::memory_order_relaxed), compares_.load(std::memory_order_relaxed)};
}

}  // namespace flowmesh::ui
