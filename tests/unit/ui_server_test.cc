// The web listener over real loopback sockets with a fake backend: auth on
// the wire, login and cookie, the limits (head size, deadline, slowloris,
// connection flood, API calls in flight) and what they are counted as.
#include "node/ui/ui_server.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "cli/format/map_format.h"
#include "node/common/log.h"
#include "node/ui/assets.h"
#include "tests/unit/http_test_client.h"
#include "tests/unit/ui_fixture.h"

namespace flowmesh::ui {
namespace {

using namespace std::chrono_literals;
using testing::Client;

constexpr const char* kToken = testing::kUiToken;

using testing::Ask;
using testing::Get;
using testing::Reply;
using testing::Split;

uint64_t RssKb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  return 0;
}

class UiServerTest : public testing::UiListenerTest {
 protected:
  std::string Bearer() const { return std::string("Authorization: Bearer ") + kToken + "\r\n"; }
  // What the page's fetches send with every API call.
  static constexpr char kFromPage[] = "X-Flowmesh-Api: 1\r\n";
};

TEST_F(UiServerTest, WithoutTheToken401WithItTheMapJson) {
  Start();
  Reply no = Get(port_, "/api/map");
  EXPECT_EQ(no.status_line, "HTTP/1.1 401 Unauthorized");
  EXPECT_NE(no.head.find("\r\nWWW-Authenticate: Bearer\r\n"), std::string::npos) << no.head;
  EXPECT_TRUE(no.body.starts_with("{\"error\": \"a token is required")) << no.body;
  Reply page = Get(port_, "/");
  EXPECT_EQ(page.status_line, "HTTP/1.1 401 Unauthorized");
  EXPECT_NE(page.body.find("method=\"post\" action=\"/login\""), std::string::npos)
      << "a page without the token is the login form";

  Reply yes = Get(port_, "/api/map?since=1h", Bearer());
  ASSERT_EQ(yes.status_line, "HTTP/1.1 200 OK") << yes.body;
  MapResult expected = backend_.map;
  expected.query = backend_.last_map;
  EXPECT_EQ(yes.body, FormatMapJson(expected));
  EXPECT_NE(yes.head.find("\r\nContent-Security-Policy: default-src 'self'; img-src 'self' data:; "
                          "object-src 'none'; base-uri 'none'; form-action 'self'; "
                          "frame-ancestors 'none'\r\n"),
            std::string::npos)
      << yes.head;
  for (const char* h :
       {"X-Content-Type-Options: nosniff", "X-Frame-Options: DENY", "Referrer-Policy: same-origin",
        "Cache-Control: no-store", "Content-Type: application/json"})
    EXPECT_NE(yes.head.find(std::string("\r\n") + h), std::string::npos) << h << "\n" << yes.head;
  EXPECT_EQ(Get(port_, "/api/map", "Authorization: Bearer wrong-wrong-wrong-wrong\r\n").status_line,
            "HTTP/1.1 401 Unauthorized");
  UiStats s = server_->Stats();
  EXPECT_EQ(s.requests[401], 3u);
  EXPECT_EQ(s.requests[200], 1u);
  EXPECT_EQ(s.auth_failures, 1u);
}

TEST_F(UiServerTest, LoginFormSetsTheCookieThatOpensThePage) {
  Start();
  Reply form = Get(port_, "/login");
  EXPECT_EQ(form.status_line, "HTTP/1.1 200 OK");
  EXPECT_NE(form.body.find("name=\"token\""), std::string::npos);

  std::string body = std::string("token=") + kToken;
  Reply in = Ask(port_,
                 "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded"
                 "\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_EQ(in.status_line, "HTTP/1.1 303 See Other") << in.body;
  EXPECT_NE(in.head.find("\r\nLocation: /\r\n"), std::string::npos);
  size_t at = in.head.find("Set-Cookie: flowmesh_ui_0=");  // the port asked for: 0
  ASSERT_NE(at, std::string::npos) << in.head;
  EXPECT_NE(in.head.find("; Max-Age=43200;"), std::string::npos) << in.head;
  std::string cookie = in.head.substr(at + 12, in.head.find(';', at) - at - 12);
  Reply page = Get(port_, "/", "Cookie: " + cookie + "\r\n");
  EXPECT_EQ(page.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(page.body, std::string(FindAsset("/")->body));
  EXPECT_NE(page.head.find("Content-Type: text/html; charset=utf-8"), std::string::npos);
  EXPECT_EQ(Get(port_, "/api/peers", "Cookie: " + cookie + "\r\n" + kFromPage).status_line,
            "HTTP/1.1 200 OK");

  std::string wrong = "token=not-the-token-at-all";
  Reply bad = Ask(port_, "POST /login HTTP/1.1\r\nContent-Length: " + std::to_string(wrong.size()) +
                             "\r\n\r\n" + wrong);
  EXPECT_EQ(bad.status_line, "HTTP/1.1 401 Unauthorized");
  EXPECT_EQ(bad.head.find("Set-Cookie"), std::string::npos);
  Reply out = Get(port_, "/logout", "Cookie: " + cookie + "\r\n");
  EXPECT_EQ(out.status_line, "HTTP/1.1 303 See Other");
  EXPECT_NE(out.head.find("Max-Age=0"), std::string::npos);
  EXPECT_EQ(Get(port_, "/", "Cookie: " + cookie + "\r\n").status_line, "HTTP/1.1 401 Unauthorized")
      << "a copy of the cookie kept after /logout opens nothing";
  // A login body past the bound is refused before it is read.
  Reply big = Ask(port_, "POST /login HTTP/1.1\r\nContent-Length: 100000\r\n\r\ntoken=");
  EXPECT_EQ(big.status_line, "HTTP/1.1 413 Content Too Large");
}

TEST_F(UiServerTest, OnlyGetHeadAndTheLoginPost) {
  Start({}, /*token=*/false);
  EXPECT_EQ(Ask(port_, "DELETE /api/map HTTP/1.1\r\n\r\n").status_line,
            "HTTP/1.1 405 Method Not Allowed");
  EXPECT_EQ(Ask(port_, "POST /api/map HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status_line,
            "HTTP/1.1 405 Method Not Allowed");
  Reply head = Ask(port_, std::string("HEAD /api/peers HTTP/1.1\r\n") + kFromPage + "\r\n");
  EXPECT_EQ(head.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(Get(port_, "/nothing-here").status_line, "HTTP/1.1 404 Not Found");
  EXPECT_EQ(Get(port_, "/api/map?x=1", kFromPage).status_line, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(Ask(port_, "GET /a%zz HTTP/1.1\r\n\r\n").status_line, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(Ask(port_, "POST /login HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status_line,
            "HTTP/1.1 501 Not Implemented");
  EXPECT_EQ(server_->Stats().rejected["method"], 2u);
  EXPECT_EQ(server_->Stats().rejected["malformed"], 2u);
}

TEST_F(UiServerTest, WithoutATokenOnlyThisListenersNamesAreServed) {
  Start({}, /*token=*/false);
  auto status = [&](const std::string& host) {
    return Ask(port_, "GET /api/peers HTTP/1.1\r\nHost: " + host + "\r\n" + kFromPage + "\r\n")
        .status_line;
  };
  const std::string p = std::to_string(port_);
  EXPECT_EQ(status("127.0.0.1:" + p), "HTTP/1.1 200 OK");
  EXPECT_EQ(status("localhost:8080"), "HTTP/1.1 200 OK") << "an ssh tunnel's port";
  EXPECT_EQ(status("[::1]:" + p), "HTTP/1.1 200 OK");
  EXPECT_EQ(status("127.0.0.1"), "HTTP/1.1 200 OK");
  // A name that was made to resolve to 127.0.0.1: DNS rebinding.
  Reply r =
      Ask(port_, "GET /api/map HTTP/1.1\r\nHost: evil.example:" + p + "\r\n" + kFromPage + "\r\n");
  EXPECT_EQ(r.status_line, "HTTP/1.1 403 Forbidden");
  EXPECT_NE(r.body.find("DNS rebinding"), std::string::npos) << r.body;
  EXPECT_EQ(status("10.1.2.3:" + p), "HTTP/1.1 403 Forbidden");
  EXPECT_EQ(backend_.maps_started, 0);
  EXPECT_EQ(server_->Stats().rejected["host"], 2u);
}

TEST_F(UiServerTest, AnywhereButLoopbackWithoutATokenIsRefused) {
  UiOptions o;
  o.listen = Endpoint{IpAddr::V4(0, 0, 0, 0), 0};
  Result<std::unique_ptr<UiServer>> s = UiServer::Start(o, &backend_);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("without a token: give --ui-token-file FILE"),
            std::string::npos)
      << s.status().message();
}

TEST_F(UiServerTest, AMegabyteHeaderIs431) {
  Start();
  Client c(port_);
  // The server answers at 16 KB and closes; the rest may not be sent at all.
  std::thread sender(
      [&] { c.Send("GET / HTTP/1.1\r\nX-Filler: " + std::string(1 << 20, 'a') + "\r\n\r\n"); });
  Reply r = Split(c.ReadAll());
  sender.join();
  EXPECT_EQ(r.status_line, "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_EQ(server_->Stats().rejected["too_large"], 1u);
}

TEST_F(UiServerTest, IdleAndSlowClientsAreClosedAtTheDeadline) {
  UiOptions o;
  o.request_timeout = 1500ms;
  Start(o);
  {
    Client idle(port_);
    auto start = std::chrono::steady_clock::now();
    bool closed = false;
    EXPECT_EQ(idle.ReadAll(&closed), "");
    EXPECT_TRUE(closed);
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 1400ms);
    EXPECT_LT(took, 3s);
  }
  // Slowloris: one byte a second of a head that would be valid.
  Client slow(port_);
  const std::string head = "GET /api/map HTTP/1.1\r\nHost: x\r\n\r\n";
  auto start = std::chrono::steady_clock::now();
  size_t sent = 0;
  while (sent < head.size() && slow.Send(head.substr(sent, 1))) {
    ++sent;
    if (std::chrono::steady_clock::now() - start > 6s) break;
    std::this_thread::sleep_for(1s);
  }
  bool closed = false;
  slow.ReadAll(&closed);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed);
  EXPECT_LE(sent, 4u) << "the slow client got " << sent << " bytes in before the deadline";
  EXPECT_LT(took, 5s);
  EXPECT_EQ(server_->Stats().rejected["timeout"], 2u);
  std::printf(
      "slowloris: %zu bytes at 1 B/s, closed after %lld ms\n", sent,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
}

TEST_F(UiServerTest, TwoHundredConnectionsAreCappedCountedAndCheap) {
  UiOptions o;
  o.request_timeout = 10s;
  o.max_connections_per_peer = 0;  // the global cap alone: every client here is 127.0.0.1
  Start(o);
  uint64_t before = RssKb();
  std::vector<std::unique_ptr<Client>> flood;
  for (int i = 0; i < 200; ++i) flood.push_back(std::make_unique<Client>(port_));
  for (auto& c : flood) c->Send("GET /api/map HTTP/1.1\r\n");  // never finished
  std::this_thread::sleep_for(300ms);
  uint64_t during = RssKb();
  UiStats s = server_->Stats();
  EXPECT_EQ(s.rejected["connections"], 200u - o.max_connections);
  std::printf(
      "200 connections: RSS %llu kB before, %llu kB with them open (+%lld kB); %llu "
      "refused over the cap of %zu\n",
      static_cast<unsigned long long>(before), static_cast<unsigned long long>(during),
      static_cast<long long>(during - before),
      static_cast<unsigned long long>(s.rejected["connections"]), o.max_connections);
  EXPECT_LT(during - before, 16u * 1024) << "kB for 64 open connections";
  flood.clear();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(Get(port_, "/api/peers", Bearer()).status_line, "HTTP/1.1 200 OK")
      << "served again once the flood left";
}

TEST_F(UiServerTest, APICallsBeyondFourInFlightAre503AndTheIoThreadNeverWaits) {
  Start();
  backend_.Hold();
  std::vector<std::future<Reply>> held;
  for (int i = 0; i < 4; ++i)
    held.push_back(
        std::async(std::launch::async, [&] { return Get(port_, "/api/map", Bearer()); }));
  ASSERT_TRUE(backend_.WaitStarted(2)) << "two workers run maps";
  std::this_thread::sleep_for(200ms);  // the other two are queued
  Reply busy = Get(port_, "/api/map", Bearer());
  EXPECT_EQ(busy.status_line, "HTTP/1.1 503 Service Unavailable");
  EXPECT_NE(busy.head.find("\r\nRetry-After: 1\r\n"), std::string::npos);
  // Pages are answered on the io thread while the maps hold the workers.
  EXPECT_EQ(Get(port_, "/", Bearer()).status_line, "HTTP/1.1 200 OK");
  backend_.Release();
  for (auto& f : held) EXPECT_EQ(f.get().status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(server_->Stats().rejected["busy"], 1u);
  std::string metrics = server_->RenderMetrics();
  EXPECT_NE(metrics.find("flowmesh_ui_rejected_total{reason=\"busy\"} 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("flowmesh_ui_requests_total{code=\"200\"} 5\n"), std::string::npos)
      << metrics;
}

TEST_F(UiServerTest, AnAPICallThatThrowsIs500AndTheWorkersGoOn) {
  Start();
  backend_.throw_in_map = true;
  EXPECT_EQ(Get(port_, "/api/map", Bearer()).status_line, "HTTP/1.1 500 Internal Server Error");
  backend_.throw_in_map = false;
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Get(port_, "/api/map", Bearer()).status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(server_->Stats().requests[500], 1u);
}

TEST_F(UiServerTest, StopWithAMapInFlightReturns) {
  Start();
  backend_.Hold();
  auto held = std::async(std::launch::async, [&] { return Get(port_, "/api/map", Bearer()); });
  ASSERT_TRUE(backend_.WaitStarted(1));
  std::thread releaser([&] {
    std::this_thread::sleep_for(200ms);
    backend_.Release();
  });
  log::Capture capture;
  server_->Stop();  // waits for the map under way, answers nothing more
  EXPECT_EQ(capture.Count("waiting for 1 API call(s) under way"), 1u)
      << "the operator is told why the stop takes time";
  releaser.join();
  EXPECT_EQ(held.get().status_line, "") << "the connection closed without an answer";
  EXPECT_EQ(server_->StatusLine().find("on: http://127.0.0.1:"), 0u);
}

}  // namespace
}  // namespace flowmesh::ui
