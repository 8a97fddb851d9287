// Who may use the web page: the token from --ui-token-file, presented as
// `Authorization: Bearer TOKEN` or as the session cookie POST /login sets.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "node/common/status.h"
#include "node/http/http.h"
#include "node/ui/throttle.h"

namespace flowmesh::ui {

inline constexpr size_t kMinTokenLength = 16;
// The cookie's name is this and the listener's port ("flowmesh_ui_7947"):
// cookies are scoped by host, not port, so two meshd on one host (a lab, an
// SSH tunnel per node) would otherwise overwrite each other's session.
inline constexpr std::string_view kCookiePrefix = "flowmesh_ui_";
// A session lasts this long (the cookie's Max-Age, and checked here: a
// cookie copied out of a browser is void after it, whatever its Max-Age said).
inline constexpr std::chrono::hours kSessionAge{12};

// The token in `path`: a file only its owner can access (ReadSecretFile, as
// the cluster key), one line of at least kMinTokenLength characters with no
// spaces. Errors name the file and the fix.
Result<std::string> LoadTokenFile(const std::string& path);

enum class AuthResult {
  kOk,         // the right token or cookie (or no token is configured)
  kMissing,    // nothing presented
  kWrong,      // a token or cookie that is not the right one (or expired)
  kThrottled,  // too many wrong tokens from this source lately: not even checked
};

struct AuthStats {
  uint64_t failures = 0;   // wrong tokens and cookies
  uint64_t throttled = 0;  // attempts refused unchecked
  uint64_t guesses = 0;    // wrong tokens charged to their source's budget
  // Digest comparisons made: every token or cookie presented and checked
  // goes through one, whatever its length (tests hold the code to that).
  uint64_t compares = 0;
};

class Auth {
 public:
  // No token: every request is let in (a loopback listener). `port` names
  // the cookie; `now_ms` is the wall clock the sessions' ages are read on
  // (a cookie outlives a restart of meshd; tests fix it).
  explicit Auth(std::optional<std::string> token, uint16_t port = 0,
                std::function<int64_t()> now_ms = {});

  bool required() const { return token_digest_.has_value(); }
  // A Bearer header, else the session cookie. Wrong tokens are charged to
  // the source of request.peer; another scheme (a scanner's Basic) and a
  // wrong, expired or garbled cookie are refused but charged nothing: they
  // are no guess at the token, and a stale cookie a browser keeps sending
  // must not use up its owner's budget.
  AuthResult Check(const http::HttpRequest& request);
  // The token of a login form from `peer`, checked as a Bearer token is.
  AuthResult CheckToken(std::string_view presented, std::string_view peer);
  // "flowmesh_ui_PORT=VALUE; ..." for Set-Cookie after a good login. VALUE is
  // "ISSUED_MS.MAC", MAC an HMAC of ISSUED_MS under a key derived from the
  // token (not the token: a leaked cookie does not give it away, and is void
  // when the token changes or kSessionAge has passed).
  std::string SessionCookie() const;
  std::string ClearedCookie() const;
  const std::string& cookie_name() const { return cookie_name_; }
  // /logout: every cookie issued until now is void (one token, one user: a
  // sign-out anywhere ends the sessions everywhere).
  void RevokeSessions();
  AuthStats Stats() const;

  // Seconds until `peer`'s source may try again (Retry-After).
  int64_t RetryAfterSeconds(std::string_view peer) const;
  static constexpr size_t kMaxFailures = SourceThrottle::kMaxFailures;

 private:
  using Digest = std::array<uint8_t, 32>;
  bool Matches(std::string_view presented, const Digest& expected);
  std::string CookieValue(int64_t issued_ms) const;
  AuthResult CheckCookie(std::string_view value);

  std::optional<Digest> token_digest_;  // SHA-256 of the token
  Digest cookie_key_{};                 // HMAC(token, label): what cookies are signed with
  std::string cookie_name_;
  std::function<int64_t()> now_ms_;
  std::atomic<int64_t> revoked_until_ms_{0};  // cookies issued at or before are void
  SourceThrottle throttle_;
  std::atomic<uint64_t> failures_{0}, throttled_{0}, compares_{0}, guesses_{0};
};

}  // namespace flowmesh::ui
