// The web listener's token: the file's rules, Bearer and cookie checks, the
// session cookie (dated, port-named, revocable), the per-source login throttle.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "node/ui/auth.h"

namespace flowmesh::ui {
namespace {

constexpr char kToken[] = "correct-horse-battery-staple";
constexpr char kPeer[] = "203.0.113.5:40000";

http::HttpRequest With(const std::string& header, const std::string& value,
                       const std::string& peer = kPeer) {
  http::HttpRequest r;
  r.method = "GET";
  r.path = "/api/map";
  r.headers.emplace_back(header, value);
  r.peer = peer;
  return r;
}

class TokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fm_ui_auth_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text, mode_t mode = 0600) {
    std::string p = (dir_ / "token").string();
    std::ofstream(p, std::ios::trunc) << text;
    chmod(p.c_str(), mode);
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(TokenFile, OneLineOfSixteenOrMoreFromAPrivateFile) {
  Result<std::string> t = LoadTokenFile(Write(std::string(kToken) + "\n"));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(*t, kToken);
  EXPECT_TRUE(LoadTokenFile(Write("0123456789abcdef", 0400)).ok());
}

TEST_F(TokenFile, RefusalsNameTheFileAndTheFix) {
  std::string p = Write(std::string(kToken) + "\n", 0644);
  Result<std::string> loose = LoadTokenFile(p);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("--ui-token-file " + p + " has mode 0644"),
            std::string::npos)
      << loose.status().message();
  EXPECT_NE(loose.status().message().find("chmod 600 " + p), std::string::npos);

  Result<std::string> shorter = LoadTokenFile(Write("short\n"));
  ASSERT_FALSE(shorter.ok());
  EXPECT_NE(shorter.status().message().find("holds 5 characters"), std::string::npos)
      << shorter.status().message();
  EXPECT_FALSE(LoadTokenFile(Write("")).ok());
  Result<std::string> two = LoadTokenFile(Write("0123456789abcdef\n0123456789abcdef\n"));
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("more than one line"), std::string::npos);
  EXPECT_FALSE(LoadTokenFile(Write("0123456789 abcdef")).ok());
  EXPECT_FALSE(LoadTokenFile(Write(std::string(5000, 'a'))).ok());
  Result<std::string> missing = LoadTokenFile((dir_ / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open --ui-token-file"), std::string::npos);
  Result<std::string> dir = LoadTokenFile(dir_.string());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("is not a file"), std::string::npos);
}

TEST(UiAuth, BearerRightWrongMissingAndSpaces) {
  Auth a{std::string(kToken)};
  EXPECT_TRUE(a.required());
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer ") + kToken)), AuthResult::kOk);
  EXPECT_EQ(a.Check(With("authorization", std::string("bearer ") + kToken)), AuthResult::kOk);
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer    ") + kToken)), AuthResult::kOk)
      << "extra spaces after the scheme are tolerated";
  http::HttpRequest none;
  EXPECT_EQ(a.Check(none), AuthResult::kMissing);
  EXPECT_EQ(a.Check(With("authorization", "Bearer ")), AuthResult::kMissing);
  EXPECT_EQ(a.Stats().failures, 0u);
  std::string right(kToken);
  // Same length one byte off, a prefix, longer, another scheme, a space inside.
  for (const std::string& bad :
       {"Bearer " + right.substr(0, right.size() - 1) + "X", "Bearer " + right.substr(0, 16),
        "Bearer " + right + "x", "Basic " + right, "Bearer" + right, "Bearer " + right + " extra"})
    EXPECT_EQ(a.Check(With("authorization", bad)), AuthResult::kWrong) << bad;
  EXPECT_EQ(a.Stats().failures, 6u);
  EXPECT_EQ(a.Stats().guesses, 4u) << "another scheme is refused but is no guess at the token";
}

TEST(UiAuth, EveryLengthGoesThroughTheDigestComparison) {
  // No shortcut on length or prefix: a 1-byte, a right-length and a 4 KB
  // token are each hashed and compared with CRYPTO_memcmp, so the time taken
  // says nothing about the right token's length or content.
  Auth a{std::string(kToken)};
  uint64_t before = a.Stats().compares;
  for (const std::string& t : {std::string("x"), std::string(sizeof kToken - 1, 'x'),
                               std::string(4096, 'x'), std::string(kToken)})
    a.CheckToken(t, kPeer);
  EXPECT_EQ(a.Stats().compares - before, 4u);
  a.Check(With("cookie", a.cookie_name() + "=1.0"));
  EXPECT_EQ(a.Stats().compares - before, 5u) << "a cookie's MAC of the wrong length too";
}

// The cookie's value ("ISSUED.MAC") out of a Set-Cookie line, as "NAME=VALUE".
std::string Presented(const std::string& set_cookie) {
  return set_cookie.substr(0, set_cookie.find(';'));
}

TEST(UiAuth, CookieIsADatedHmacNotTheTokenNamedByThePort) {
  int64_t now = 1'800'000'000'000;
  Auth a{std::string(kToken), 7947, [&] { return now; }};
  std::string set = a.SessionCookie();
  EXPECT_EQ(set.find(kToken), std::string::npos) << "the cookie must not carry the token";
  EXPECT_TRUE(set.starts_with("flowmesh_ui_7947=1800000000000.")) << set;
  for (const char* attr : {"; HttpOnly", "; SameSite=Strict", "; Path=/", "; Max-Age=43200"})
    EXPECT_NE(set.find(attr), std::string::npos) << attr << " in " << set;
  std::string value = Presented(set);
  EXPECT_EQ(value.size(), std::string("flowmesh_ui_7947=1800000000000.").size() + 64);
  EXPECT_EQ(a.Check(With("cookie", "theme=dark; " + value)), AuthResult::kOk);
  EXPECT_EQ(a.Check(With("cookie", "flowmesh_ui_7947=" + std::string(kToken))), AuthResult::kWrong);
  EXPECT_EQ(a.Check(With("cookie", value + "0")), AuthResult::kWrong);
  EXPECT_EQ(a.Check(With("cookie", "theme=dark")), AuthResult::kMissing);
  // Another issue time under the same MAC: a cookie cannot be re-dated.
  std::string redated = value;
  redated.replace(redated.find('=') + 1, 13, "1800000099999");
  EXPECT_EQ(a.Check(With("cookie", redated)), AuthResult::kWrong);
  // Another port's cookie is another listener's business.
  Auth other_port{std::string(kToken), 7948, [&] { return now; }};
  EXPECT_EQ(other_port.Check(With("cookie", value)), AuthResult::kMissing);
  // Another token, another cookie: a token change logs every browser out.
  Auth other{std::string(kToken) + "2", 7947, [&] { return now; }};
  EXPECT_EQ(other.Check(With("cookie", value)), AuthResult::kWrong);
  EXPECT_EQ(a.ClearedCookie(), "flowmesh_ui_7947=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
}

TEST(UiAuth, ACookieLastsTwelveHoursAndLogoutEndsIt) {
  int64_t now = 1'800'000'000'000;
  Auth a{std::string(kToken), 7947, [&] { return now; }};
  std::string value = Presented(a.SessionCookie());
  now += std::chrono::milliseconds(kSessionAge).count();
  EXPECT_EQ(a.Check(With("cookie", value)), AuthResult::kOk) << "12 h to the millisecond";
  now += 1;
  EXPECT_EQ(a.Check(With("cookie", value)), AuthResult::kWrong)
      << "a cookie kept past its Max-Age is void here too";
  // Dated in the future (beyond a little clock skew): forged or a broken clock.
  now = 1'800'000'000'000 - 10 * 60 * 1000;
  EXPECT_EQ(a.Check(With("cookie", value)), AuthResult::kWrong);

  now = 1'900'000'000'000;
  std::string first = Presented(a.SessionCookie());
  now += 1000;
  std::string second = Presented(a.SessionCookie());
  EXPECT_EQ(a.Check(With("cookie", first)), AuthResult::kOk);
  a.RevokeSessions();
  EXPECT_EQ(a.Check(With("cookie", first)), AuthResult::kWrong) << "/logout revokes";
  EXPECT_EQ(a.Check(With("cookie", second)), AuthResult::kWrong) << "every session so far";
  now += 1;
  EXPECT_EQ(a.Check(With("cookie", Presented(a.SessionCookie()))), AuthResult::kOk)
      << "a login after the logout works";
  EXPECT_EQ(a.Stats().guesses, 0u) << "stale cookies use up no one's budget";
}

TEST(UiAuth, NoTokenLetsEveryoneIn) {
  Auth a{std::nullopt};
  EXPECT_FALSE(a.required());
  EXPECT_EQ(a.Check(http::HttpRequest{}), AuthResult::kOk);
  EXPECT_EQ(a.CheckToken("anything", kPeer), AuthResult::kOk);
}

TEST(UiAuth, TenWrongTokensAMinuteThrottleThatSourceOnly) {
  Auth a{std::string(kToken)};
  for (size_t i = 0; i < Auth::kMaxFailures; ++i)
    EXPECT_EQ(a.CheckToken("wrong-token-number-" + std::to_string(i), kPeer), AuthResult::kWrong);
  // The guesser's own source is not checked now: ten guesses a minute.
  EXPECT_EQ(a.CheckToken(kToken, kPeer), AuthResult::kThrottled);
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer ") + kToken, kPeer)),
            AuthResult::kThrottled);
  EXPECT_EQ(a.Stats().throttled, 2u);
  EXPECT_EQ(a.Stats().failures, Auth::kMaxFailures);
  EXPECT_GE(a.RetryAfterSeconds(kPeer), 59);
  EXPECT_LE(a.RetryAfterSeconds(kPeer), 60);
  EXPECT_EQ(a.CheckToken(kToken, "203.0.113.5:40001"), AuthResult::kThrottled)
      << "another port of the same address is the same source";
  // Everyone else: the right token is accepted as ever.
  EXPECT_EQ(a.CheckToken(kToken, "198.51.100.7:5555"), AuthResult::kOk);
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer ") + kToken, "127.0.0.1:1")),
            AuthResult::kOk);
  EXPECT_EQ(a.RetryAfterSeconds("198.51.100.7:5555"), 1);
}

TEST(UiAuth, AnIpv6SourceIsItsSlash64) {
  Auth a{std::string(kToken)};
  for (size_t i = 0; i < Auth::kMaxFailures; ++i)
    a.CheckToken("wrong-" + std::to_string(i), "[2001:db8:1:2::" + std::to_string(i + 1) + "]:443");
  EXPECT_EQ(a.CheckToken(kToken, "[2001:db8:1:2:ffff::9]:1"), AuthResult::kThrottled)
      << "an address of the same /64";
  EXPECT_EQ(a.CheckToken(kToken, "[2001:db8:1:3::1]:1"), AuthResult::kOk) << "the next /64";
  EXPECT_EQ(SourceKey("[2001:db8:1:2:aaaa::1]:80"), "2001:db8:1:2::/64");
  EXPECT_EQ(SourceKey("10.0.0.1:80"), "10.0.0.1");
  EXPECT_EQ(SourceKey("[::ffff:10.0.0.1]:80"), "10.0.0.1")
      << "IPv4 on a dual-stack listener: its own address, not everyone's ::/64";
  EXPECT_EQ(SourceKey("?"), "");
}

TEST(UiAuth, ScannersAndStaleCookiesLockNobodyOut) {
  // Basic from a scanner, garbage and stale cookies, from the operator's own
  // address: refused, but none spends the guess budget.
  Auth a{std::string(kToken), 7947};
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(a.Check(With("authorization", "Basic YWRtaW46YWRtaW4=", kPeer)), AuthResult::kWrong);
    EXPECT_EQ(a.Check(With("cookie", "flowmesh_ui_7947=garbage" + std::to_string(i), kPeer)),
              AuthResult::kWrong);
    EXPECT_EQ(a.Check(With("cookie", "flowmesh_ui_7947=1." + std::string(64, 'a'), kPeer)),
              AuthResult::kWrong);
  }
  EXPECT_EQ(a.Stats().guesses, 0u);
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer ") + kToken, kPeer)),
            AuthResult::kOk);
}

TEST(UiAuth, TheThrottleRemembersABoundedNumberOfSources) {
  SourceThrottle t;
  for (int i = 0; i < 20000; ++i)
    t.Failed("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
             std::to_string(i % 256));
  EXPECT_EQ(t.sources(), SourceThrottle::kMaxSources);
  // The least recently failing go first: a persistent guesser stays throttled.
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < SourceThrottle::kMaxFailures; ++i) t.Failed("192.0.2.1");
  for (int i = 0; i < 100; ++i) t.Failed("172.16.0." + std::to_string(i));
  EXPECT_TRUE(t.Throttled("192.0.2.1"));
}

}  // namespace
}  // namespace flowmesh::ui
