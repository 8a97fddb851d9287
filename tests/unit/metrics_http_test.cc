// The metrics endpoint's HTTP: request heads answered without sockets, then
// the server over real loopback sockets (limits, deadline, connection cap).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "node/metrics/exposition.h"
#include "node/http/http.h"
#include "node/http/server.h"
#include "tests/unit/http_test_client.h"

namespace flowmesh::metrics {
using namespace flowmesh::http;  // the server moved to node/http
using testing::Client;
namespace {

std::string Body() { return "fm_up 1\n"; }

HttpResponse Ask(std::string_view head) { return Answer(head, "/metrics", kContentType, Body); }

TEST(MetricsHttp, RequestHeadEndsAtTheBlankLine) {
  EXPECT_EQ(RequestHeadLength("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0u);
  EXPECT_EQ(RequestHeadLength("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 34u);
  EXPECT_EQ(RequestHeadLength("GET /metrics HTTP/1.1\r\n\r\nbody"), 25u);
  EXPECT_EQ(RequestHeadLength("GET /metrics HTTP/1.0\n\n"), 23u);
}

TEST(MetricsHttp, GetMetricsIsServedInTheExpositionContentType) {
  HttpResponse r = Ask("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "fm_up 1\n");
  std::string wire = r.Serialize();
  EXPECT_TRUE(wire.starts_with("HTTP/1.1 200 OK\r\n")) << wire;
  EXPECT_NE(wire.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            std::string::npos)
      << wire;
  EXPECT_NE(wire.find("\r\nContent-Length: 8\r\n"), std::string::npos) << wire;
  EXPECT_NE(wire.find("\r\nConnection: close\r\n"), std::string::npos) << wire;
  EXPECT_TRUE(wire.ends_with("\r\n\r\nfm_up 1\n")) << wire;
  EXPECT_EQ(Ask("GET /metrics?name[]=x HTTP/1.0\r\n\r\n").status, 200);
}

TEST(MetricsHttp, HeadHasTheLengthButNoBody) {
  HttpResponse r = Ask("HEAD /metrics HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  std::string wire = r.Serialize();
  EXPECT_NE(wire.find("Content-Length: 8\r\n"), std::string::npos);
  EXPECT_TRUE(wire.ends_with("\r\n\r\n")) << wire;
}

TEST(MetricsHttp, OtherPathsAre404AndOtherMethods405) {
  bool rendered = false;
  auto render = [&] {
    rendered = true;
    return std::string("x");
  };
  EXPECT_EQ(Answer("GET / HTTP/1.1\r\n\r\n", "/metrics", kContentType, render).status, 404);
  EXPECT_EQ(Answer("GET /metricsx HTTP/1.1\r\n\r\n", "/metrics", kContentType, render).status, 404);
  EXPECT_EQ(Answer("POST /other HTTP/1.1\r\n\r\n", "/metrics", kContentType, render).status, 404);
  HttpResponse r = Answer("POST /metrics HTTP/1.1\r\n\r\n", "/metrics", kContentType, render);
  EXPECT_EQ(r.status, 405);
  EXPECT_NE(r.Serialize().find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(Answer("DELETE /metrics HTTP/1.1\r\n\r\n", "/metrics", kContentType, render).status,
            405);
  EXPECT_FALSE(rendered) << "only a GET or HEAD of the path renders";
}

TEST(MetricsHttp, MalformedRequestLinesAre400) {
  for (const char* bad :
       {"\r\n\r\n", "GET\r\n\r\n", "GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n",
        "GET /metrics SPDY/3\r\n\r\n", " /metrics HTTP/1.1\r\n\r\n"})
    EXPECT_EQ(Ask(bad).status, 400) << bad;
  EXPECT_EQ(TooLarge(8192).status, 431);
}

std::unique_ptr<HttpServer> StartServer(HttpServerOptions o = {}) {
  o.listen = Endpoint{IpAddr::V4(127, 0, 0, 1), 0};
  o.content_type = std::string(kContentType);
  Result<std::unique_ptr<HttpServer>> s = HttpServer::Start(o, Body);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(*s) : nullptr;
}

std::string StatusLine(const std::string& response) {
  return response.substr(0, response.find("\r\n"));
}

TEST(MetricsServer, ServesGetAndRefusesOtherPathsAndMethods) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  uint16_t port = server->local_endpoint().port;
  ASSERT_NE(port, 0);
  {
    Client c(port);
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n"));
    std::string r = c.ReadAll();
    EXPECT_EQ(StatusLine(r), "HTTP/1.1 200 OK");
    EXPECT_TRUE(r.ends_with("\r\n\r\nfm_up 1\n")) << r;
  }
  {
    Client c(port);
    // The head may arrive in pieces.
    ASSERT_TRUE(c.Send("GET /nope HT"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(c.Send("TP/1.1\r\n\r\n"));
    EXPECT_EQ(StatusLine(c.ReadAll()), "HTTP/1.1 404 Not Found");
  }
  {
    Client c(port);
    ASSERT_TRUE(c.Send("PUT /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_EQ(StatusLine(c.ReadAll()), "HTTP/1.1 405 Method Not Allowed");
  }
  EXPECT_EQ(server->Stats().requests, 3u);
}

TEST(MetricsServer, OversizedRequestHeadIs431) {
  HttpServerOptions o;
  o.max_request_bytes = 1024;
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->local_endpoint().port);
  ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\nX-Filler: " + std::string(4000, 'a')));
  bool closed = false;
  std::string r = c.ReadAll(&closed);
  EXPECT_EQ(StatusLine(r), "HTTP/1.1 431 Request Header Fields Too Large");
  EXPECT_TRUE(closed);
}

TEST(MetricsServer, SilentClientIsClosedAtTheDeadline) {
  HttpServerOptions o;
  o.timeout = std::chrono::milliseconds(200);
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->local_endpoint().port);
  ASSERT_TRUE(c.Send("GET /metrics HTTP/1.1\r\n"));  // never finished
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  EXPECT_EQ(c.ReadAll(&closed), "");
  EXPECT_TRUE(closed) << "still open after the 5 s receive timeout";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(server->Stats().timed_out, 1u);
}

TEST(MetricsServer, ConnectionsOverTheCapAreClosedAtOnce) {
  HttpServerOptions o;
  o.max_connections = 2;
  o.timeout = std::chrono::seconds(10);
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  uint16_t port = server->local_endpoint().port;
  Client idle1(port), idle2(port);
  ASSERT_TRUE(idle1.connected() && idle2.connected());
  // The server accepts in order; give it the two before the third arrives.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    Client third(port);
    ASSERT_TRUE(third.connected());  // the kernel accepts; meshd closes it
    third.Send("GET /metrics HTTP/1.1\r\n\r\n");
    bool closed = false;
    EXPECT_EQ(third.ReadAll(&closed), "");
    EXPECT_TRUE(closed);
  }
  EXPECT_EQ(server->Stats().rejected, 1u);
  // The open ones are still served.
  ASSERT_TRUE(idle1.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(StatusLine(idle1.ReadAll()), "HTTP/1.1 200 OK");
  // With one slot free again, a new client is served.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Client fourth(port);
  ASSERT_TRUE(fourth.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(StatusLine(fourth.ReadAll()), "HTTP/1.1 200 OK");
}

TEST(MetricsServer, BindFailureNamesTheAddress) {
  auto first = StartServer();
  ASSERT_TRUE(first);
  HttpServerOptions o;
  o.listen = first->local_endpoint();
  Result<std::unique_ptr<HttpServer>> second = HttpServer::Start(o, Body);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(o.listen.ToString()), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("in use"), std::string::npos)
      << second.status().message();
}

TEST(MetricsServer, StopWithOpenConnectionsReturns) {
  auto server = StartServer();
  ASSERT_TRUE(server);
  Client idle(server->local_endpoint().port);
  ASSERT_TRUE(idle.connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server->Stop();
  bool closed = false;
  idle.ReadAll(&closed);
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace flowmesh::metrics
