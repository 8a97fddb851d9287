// The web listener against other sites and greedy clients: cross-site API
// calls and logins, the files the login page needs, connections per peer,
// the head deadline, the cap on an API answer.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "node/common/log.h"
#include "node/ui/assets.h"
#include "node/ui/ui_server.h"
#include "tests/unit/ui_fixture.h"

namespace flowmesh::ui {
namespace {

using namespace std::chrono_literals;
using testing::Ask;
using testing::Client;
using testing::Get;
using testing::Reply;
using testing::Split;

constexpr const char* kToken = testing::kUiToken;

using UiGuardTest = testing::UiListenerTest;

TEST_F(UiGuardTest, AnotherSitesImgOrFormStartsNoMapWithoutAToken) {
  Start({}, /*token=*/false);
  // <img src="http://127.0.0.1:PORT/api/map?since=3650d&timeout=60s">: Host passes.
  Reply img = Get(port_, "/api/map?since=3650d&timeout=60s");
  EXPECT_EQ(img.status_line, "HTTP/1.1 403 Forbidden");
  EXPECT_NE(img.body.find("X-Flowmesh-Api: 1"), std::string::npos) << img.body;
  // A browser that says where the request is from is refused even with the header.
  for (const char* site : {"cross-site", "same-site"})
    EXPECT_EQ(
        Get(port_, "/api/map", std::string("X-Flowmesh-Api: 1\r\nSec-Fetch-Site: ") + site + "\r\n")
            .status_line,
        "HTTP/1.1 403 Forbidden")
        << site;
  EXPECT_EQ(backend_.maps_started, 0);
  EXPECT_EQ(server_->Stats().rejected["cross_site"], 3u);
  // The page's own fetch, and curl.
  EXPECT_EQ(
      Get(port_, "/api/map", "X-Flowmesh-Api: 1\r\nSec-Fetch-Site: same-origin\r\n").status_line,
      "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(port_, "/api/peers", "X-Flowmesh-Api: 1\r\n").status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(Get(port_, "/api/peers", "X-Flowmesh-Api: 0\r\n").status_line,
            "HTTP/1.1 403 Forbidden");
  // Pages are links anyone may follow: only the API is guarded.
  EXPECT_EQ(Get(port_, "/", "Sec-Fetch-Site: cross-site\r\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(UiGuardTest, ABearerTokenNeedsNoPageHeader) {
  Start();
  EXPECT_EQ(
      Get(port_, "/api/peers", std::string("Authorization: Bearer ") + kToken + "\r\n").status_line,
      "HTTP/1.1 200 OK")
      << "curl -H 'Authorization: Bearer ...' as before";
  // A signed-in browser's cookie rides along with another local site's <img>.
  std::string body = std::string("token=") + kToken;
  Reply in = Ask(port_, "POST /login HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\n\r\n" + body);
  size_t at = in.head.find("Set-Cookie: ") + 12;
  std::string cookie = "Cookie: " + in.head.substr(at, in.head.find(';', at) - at) + "\r\n";
  EXPECT_EQ(Get(port_, "/api/map", cookie).status_line, "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(Get(port_, "/api/map", cookie + "Sec-Fetch-Site: same-site\r\n").status_line,
            "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(backend_.maps_started, 0);
  EXPECT_EQ(Get(port_, "/api/map", cookie + "X-Flowmesh-Api: 1\r\n").status_line, "HTTP/1.1 200 OK")
      << "the page's own fetch";
}

TEST_F(UiGuardTest, ABrowsersOwnBasicCredentialsDoNotPass) {
  Start({}, /*token=*/false);
  EXPECT_EQ(Get(port_, "/api/peers", "Authorization: Basic YTpi\r\n").status_line,
            "HTTP/1.1 403 Forbidden")
      << "a browser may send Basic credentials on its own; Bearer never";
  EXPECT_EQ(Get(port_, "/api/peers", "Authorization: Bearer x\r\n").status_line, "HTTP/1.1 200 OK");
}

TEST_F(UiGuardTest, AnotherSitesLoginPostIsRefusedUnchecked) {
  Start();
  auto post = [&](const std::string& headers) {
    std::string body = "token=guess-guess-guess-guess";
    return Ask(port_, "POST /login HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) + "\r\n" +
                          headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                          body)
        .status_line;
  };
  EXPECT_EQ(post("Origin: https://evil.example\r\n"), "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(post("Sec-Fetch-Site: cross-site\r\n"), "HTTP/1.1 403 Forbidden");
  // A sandboxed frame's post says "Origin: null"; so would the page's own
  // form under Referrer-Policy: no-referrer, which is why the page's policy
  // is same-origin (ui_server_test checks the header).
  EXPECT_EQ(post("Origin: null\r\n"), "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(post("Origin: http://127.0.0.1:" + std::to_string(port_) + "\r\n"),
            "HTTP/1.1 401 Unauthorized")
      << "the login form's own post";
  EXPECT_EQ(post("Sec-Fetch-Site: same-origin\r\n"), "HTTP/1.1 401 Unauthorized");
  EXPECT_EQ(server_->Stats().auth_failures, 2u) << "the refused posts spent no guesses";
}

TEST_F(UiGuardTest, TheLoginPageGetsItsStyleAndIconButNothingElse) {
  Start();
  for (const char* path : {"/style.css", "/favicon.svg"}) {
    Reply r = Get(port_, path);
    EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK") << path;
    EXPECT_EQ(r.body, std::string(FindAsset(path)->body)) << path;
  }
  for (const char* path : {"/", "/app.js", "/js/graph.js", "/lib/cytoscape.min.js"})
    EXPECT_EQ(Get(port_, path).status_line, "HTTP/1.1 401 Unauthorized") << path;
}

TEST_F(UiGuardTest, OnePeerHoldsAtMostEightConnections) {
  UiOptions o;
  o.request_timeout = 10s;
  Start(o);
  std::vector<std::unique_ptr<Client>> mine;
  for (size_t i = 0; i < o.max_connections_per_peer; ++i) {
    mine.push_back(std::make_unique<Client>(port_));
    mine.back()->Send("GET / HTTP/1.1\r\n");  // a slowloris: never finished
  }
  std::this_thread::sleep_for(200ms);
  Client ninth(port_);
  bool closed = false;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ninth.ReadAll(&closed), "");
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "closed at once, not at a deadline";
  EXPECT_EQ(server_->Stats().rejected["connections"], 1u);
  // Another address (127.0.0.2 is loopback too) is served meanwhile.
  Client other(port_, "127.0.0.2");
  ASSERT_TRUE(other.connected());
  other.Send("GET /style.css HTTP/1.1\r\n\r\n");
  EXPECT_EQ(Split(other.ReadAll()).status_line, "HTTP/1.1 200 OK");
  mine.clear();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Get(port_, "/style.css").status_line, "HTTP/1.1 200 OK") << "the slots are freed";
}

TEST_F(UiGuardTest, TheHeadDeadlineIsFiveSeconds) {
  Start();  // the defaults meshd runs with
  // The client waits longer than the 5 s it measures (its default is 5 s
  // too: under ASan on a busy machine it gave up first, at 5005 ms).
  Client idle(port_, nullptr, 8);
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  EXPECT_EQ(idle.ReadAll(&closed), "");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_GE(took, 4500ms);
  EXPECT_LT(took, 6s);
}

TEST_F(UiGuardTest, AnAnswerOverTheCapIsA500ThatSaysSo) {
  UiOptions o;
  o.max_api_bytes = 200;  // the sample map's JSON is larger
  Start(o);
  Reply r = Get(port_, "/api/map", std::string("Authorization: Bearer ") + kToken + "\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 500 Internal Server Error");
  EXPECT_NE(r.body.find("over the cap of 200"), std::string::npos) << r.body;
  EXPECT_EQ(UiOptions{}.max_api_bytes, kMaxResponseBytes) << "the control socket's 64 MiB";
}

TEST_F(UiGuardTest, OffLoopbackTheStartWarnsThatThePageIsPlainHttp) {
  log::Capture capture;
  Start();  // 127.0.0.1: nothing crosses a network
  EXPECT_EQ(capture.Count("plain HTTP"), 0u);
  server_.reset();
  ui::UiOptions o;
  o.listen = Endpoint{IpAddr::V4(0, 0, 0, 0), 0};
  o.token = kToken;
  Result<std::unique_ptr<UiServer>> s = UiServer::Start(std::move(o), &backend_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(capture.Count("WARN ui: plain HTTP: the token, the session cookie and the map"), 1u);
  EXPECT_EQ(capture.Count("SSH tunnel"), 1u);
}

}  // namespace
}  // namespace flowmesh::ui
