// The web listener's request parsing (node/http/http.cc) without sockets:
// request line, target, percent-encoding, query parameters, headers, forms.
#include <gtest/gtest.h>

#include "node/http/http.h"

namespace flowmesh::http {
namespace {

TEST(HttpRequest, ParsesMethodPathQueryAndHeaders) {
  Result<HttpRequest> r = ParseRequestHead(
      "GET /api/map%2Edot?since=2h&host=web%2D1&workload=a+b&flag HTTP/1.1\r\n"
      "Host: x\r\nAuthorization:   Bearer abc  \r\nX-Two: 1\r\nx-two: 2\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->method, "GET");
  EXPECT_EQ(r->path, "/api/map.dot");
  ASSERT_EQ(r->query.size(), 4u);
  EXPECT_EQ(r->query[0], (std::pair<std::string, std::string>{"since", "2h"}));
  EXPECT_EQ(r->query[1].second, "web-1");
  EXPECT_EQ(r->query[2].second, "a b");
  EXPECT_EQ(r->query[3], (std::pair<std::string, std::string>{"flag", ""}));
  EXPECT_EQ(r->Header("authorization"), "Bearer abc");
  EXPECT_EQ(r->Header("x-two"), "1") << "the first of a repeated header";
  EXPECT_FALSE(r->Header("cookie").has_value());
  EXPECT_FALSE(r->head());
  EXPECT_TRUE(ParseRequestHead("HEAD / HTTP/1.0\n\n")->head());
}

TEST(HttpRequest, DuplicateParametersAreKeptForTheRouteToRefuse) {
  Result<HttpRequest> r = ParseRequestHead("GET /api/map?since=1h&since=2h HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->query.size(), 2u);
  EXPECT_EQ(r->query[1].second, "2h");
}

TEST(HttpRequest, MalformedHeadsAreRefusedWithTheReason) {
  struct Case {
    const char* head;
    const char* error;
  };
  for (const Case& c : {
           Case{"\r\n\r\n", "malformed request line"},
           Case{"GET /\r\n\r\n", "malformed request line"},
           Case{"GET  / HTTP/1.1\r\n\r\n", "malformed request line"},
           Case{"GET / HTTP/2\r\n\r\n", "only HTTP/1.0 and HTTP/1.1 are served"},
           Case{"GET * HTTP/1.1\r\n\r\n", "not a path starting with /"},
           Case{"GET http://x/ HTTP/1.1\r\n\r\n", "not a path starting with /"},
           Case{"GET /a%zz HTTP/1.1\r\n\r\n", "bad percent-encoding at '%zz'"},
           Case{"GET /a%4 HTTP/1.1\r\n\r\n", "bad percent-encoding"},
           Case{"GET /?since=%G1 HTTP/1.1\r\n\r\n", "query string: bad percent-encoding"},
           Case{"GET /a%00b HTTP/1.1\r\n\r\n", "percent-encoded NUL"},
           Case{"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "malformed header line"},
           Case{"GET / HTTP/1.1\r\n: empty name\r\n\r\n", "malformed header line"},
           Case{"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "whitespace before ':'"},
       }) {
    Result<HttpRequest> r = ParseRequestHead(c.head);
    ASSERT_FALSE(r.ok()) << c.head;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.head << " -> " << r.status().message();
  }
}

TEST(HttpRequest, FormsDecodePlusAndPercent) {
  auto f = ParseForm("token=a%2Bb+c&&empty=&x");
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 3u);
  EXPECT_EQ((*f)[0].second, "a+b c");
  EXPECT_EQ((*f)[1].second, "");
  EXPECT_EQ((*f)[2].first, "x");
  EXPECT_FALSE(ParseForm("token=%").ok());
  EXPECT_EQ(*PercentDecode("a+b", false), "a+b") << "a path keeps its '+'";
}

TEST(HttpRequest, ResponsesCarryExtraHeadersInOrder) {
  HttpResponse r = TextError(401, "no");
  r.headers = {{"WWW-Authenticate", "Bearer"}, {"Cache-Control", "no-store"}};
  std::string wire = r.Serialize();
  EXPECT_TRUE(wire.starts_with("HTTP/1.1 401 Unauthorized\r\n")) << wire;
  EXPECT_NE(wire.find("\r\nWWW-Authenticate: Bearer\r\nCache-Control: no-store\r\n\r\nno\n"),
            std::string::npos)
      << wire;
  for (int code : {303, 401, 413, 429, 501, 503}) EXPECT_NE(ReasonPhrase(code), "Unknown") << code;
}

}  // namespace
}  // namespace flowmesh::http
