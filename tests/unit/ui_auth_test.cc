// The web listener's token: the file's rules, Bearer and cookie checks, the
// session cookie, the login throttle.
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

http::HttpRequest With(const std::string& header, const std::string& value) {
  http::HttpRequest r;
  r.method = "GET";
  r.path = "/api/map";
  r.headers.emplace_back(header, value);
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
}

TEST(UiAuth, EveryLengthGoesThroughTheDigestComparison) {
  // No shortcut on length or prefix: a 1-byte, a right-length and a 4 KB
  // token are each hashed and compared with CRYPTO_memcmp, so the time taken
  // says nothing about the right token's length or content.
  Auth a{std::string(kToken)};
  uint64_t before = a.Stats().compares;
  for (const std::string& t : {std::string("x"), std::string(sizeof kToken - 1, 'x'),
                               std::string(4096, 'x'), std::string(kToken)})
    a.CheckToken(t);
  EXPECT_EQ(a.Stats().compares - before, 4u);
  a.Check(With("cookie", "flowmesh_ui=0"));
  EXPECT_EQ(a.Stats().compares - before, 5u) << "a cookie of the wrong length too";
}

TEST(UiAuth, CookieIsAnHmacNotTheTokenAndChecksAlike) {
  Auth a{std::string(kToken)};
  std::string set = a.SessionCookie();
  EXPECT_EQ(set.find(kToken), std::string::npos) << "the cookie must not carry the token";
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos);
  EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos);
  EXPECT_NE(set.find("; Path=/"), std::string::npos);
  std::string value = set.substr(0, set.find(';'));  // "flowmesh_ui=HEX"
  EXPECT_EQ(value.size(), std::string("flowmesh_ui=").size() + 64);
  EXPECT_EQ(a.Check(With("cookie", "theme=dark; " + value)), AuthResult::kOk);
  EXPECT_EQ(a.Check(With("cookie", "flowmesh_ui=" + std::string(kToken))), AuthResult::kWrong);
  EXPECT_EQ(a.Check(With("cookie", value + "0")), AuthResult::kWrong);
  EXPECT_EQ(a.Check(With("cookie", "theme=dark")), AuthResult::kMissing);
  // Another token, another cookie: a token change logs every browser out.
  Auth other{std::string(kToken) + "2"};
  EXPECT_EQ(other.Check(With("cookie", value)), AuthResult::kWrong);
  EXPECT_NE(Auth::ClearedCookie().find("Max-Age=0"), std::string::npos);
}

TEST(UiAuth, NoTokenLetsEveryoneIn) {
  Auth a{std::nullopt};
  EXPECT_FALSE(a.required());
  EXPECT_EQ(a.Check(http::HttpRequest{}), AuthResult::kOk);
  EXPECT_EQ(a.CheckToken("anything"), AuthResult::kOk);
}

TEST(UiAuth, TenWrongTokensAMinuteThrottleTheNextButNotTheCookie) {
  Auth a{std::string(kToken)};
  for (size_t i = 0; i < Auth::kMaxFailures; ++i)
    EXPECT_EQ(a.CheckToken("wrong-token-number-" + std::to_string(i)), AuthResult::kWrong);
  // Even the right token is not checked now: guessing is capped at ten a minute.
  EXPECT_EQ(a.CheckToken(kToken), AuthResult::kThrottled);
  EXPECT_EQ(a.Check(With("authorization", std::string("Bearer ") + kToken)),
            AuthResult::kThrottled);
  EXPECT_EQ(a.Stats().throttled, 2u);
  EXPECT_EQ(a.Stats().failures, Auth::kMaxFailures);
  EXPECT_GE(a.RetryAfterSeconds(), 59);
  EXPECT_LE(a.RetryAfterSeconds(), 60);
  std::string value = a.SessionCookie();
  EXPECT_EQ(a.Check(With("cookie", value.substr(0, value.find(';')))), AuthResult::kOk)
      << "a signed-in browser keeps working while guessers wait";
}

}  // namespace
}  // namespace flowmesh::ui
