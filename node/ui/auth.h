// Who may use the web page: the token from --ui-token-file, presented as
// `Authorization: Bearer TOKEN` or as the session cookie POST /login sets.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "node/common/status.h"
#include "node/http/http.h"

namespace flowmesh::ui {

inline constexpr size_t kMinTokenLength = 16;
inline constexpr std::string_view kCookieName = "flowmesh_ui";

// The token in `path`: a file only its owner can access (ReadSecretFile, as
// the cluster key), one line of at least kMinTokenLength characters with no
// spaces. Errors name the file and the fix.
Result<std::string> LoadTokenFile(const std::string& path);

enum class AuthResult {
  kOk,         // the right token or cookie (or no token is configured)
  kMissing,    // nothing presented
  kWrong,      // a token or cookie that is not the right one
  kThrottled,  // too many wrong ones lately: not even checked
};

struct AuthStats {
  uint64_t failures = 0;   // wrong tokens and cookies
  uint64_t throttled = 0;  // attempts refused unchecked
  // Digest comparisons made: every token or cookie presented and checked
  // goes through one, whatever its length (tests hold the code to that).
  uint64_t compares = 0;
};

class Auth {
 public:
  // No token: every request is let in (a loopback listener).
  explicit Auth(std::optional<std::string> token);

  bool required() const { return token_digest_.has_value(); }
  // A Bearer header, else the cookie.
  AuthResult Check(const http::HttpRequest& request);
  // The token of a login form, checked as a Bearer token is.
  AuthResult CheckToken(std::string_view presented);
  // "flowmesh_ui=VALUE; ..." for Set-Cookie after a good login; VALUE is an
  // HMAC of a fixed label keyed with the token, not the token, so a leaked
  // cookie does not give away the token (and is void when the token changes).
  std::string SessionCookie() const;
  static std::string ClearedCookie();
  AuthStats Stats() const;

  // After kMaxFailures wrong attempts (from anyone) within kFailureWindow,
  // tokens are refused unchecked until the oldest of them is that old: a
  // guesser gets kMaxFailures tries a minute. A valid cookie still works.
  static constexpr size_t kMaxFailures = 10;
  static constexpr std::chrono::seconds kFailureWindow{60};
  // Seconds until a throttled client may try again (Retry-After).
  int64_t RetryAfterSeconds() const;

 private:
  using Digest = std::array<uint8_t, 32>;
  AuthResult Compare(std::string_view presented, const Digest& expected);
  bool Throttled();
  void Failed();

  std::optional<Digest> token_digest_;   // SHA-256 of the token
  std::optional<Digest> cookie_digest_;  // SHA-256 of the cookie's value
  std::string cookie_value_;
  mutable std::mutex mu_;
  // The times of the last kMaxFailures failures, a ring: bounded whatever
  // the flood.
  std::array<std::chrono::steady_clock::time_point, kMaxFailures> failures_at_{};
  size_t next_ = 0;
  size_t recorded_ = 0;  // up to kMaxFailures
  std::atomic<uint64_t> failures_{0}, throttled_{0}, compares_{0};
};

}  // namespace flowmesh::ui
