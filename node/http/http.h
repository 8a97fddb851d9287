// The little of HTTP/1.x meshd's listeners need, without sockets: find the end
// of a request head, parse it (method, path, decoded query parameters,
// headers), answer it, write the response. One request per connection
// (Connection: close): what Prometheus's scraper and a page of a few files do
// well with, and it keeps the server free of keep-alive state.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node/common/status.h"

namespace flowmesh::http {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;       // the Allow header of a 405
  bool head_only = false;  // HEAD: headers (with the body's length) but no body
  // More headers, in order ("Set-Cookie", "..."); names and values must hold
  // no CR or LF (the callers write constants and digests).
  std::vector<std::pair<std::string, std::string>> headers;
  // Status line, headers (Content-Length, Connection: close) and body.
  std::string Serialize() const;
};

struct HttpRequest {
  std::string method;  // "GET", as sent
  std::string target;  // the request-target as sent
  std::string path;    // percent-decoded, without the query
  // Percent-decoded ('+' is a space) in the order sent; a name may repeat.
  std::vector<std::pair<std::string, std::string>> query;
  // Names lower-cased, values trimmed; a name may repeat.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // at most HttpServerOptions::max_body_bytes
  std::string peer;  // "ip:port" of the client
  bool head() const { return method == "HEAD"; }
  // The first header of that (lower-case) name.
  std::optional<std::string_view> Header(std::string_view name) const;
};

// Bytes up to and including the blank line that ends the request head, or 0
// while it has not arrived.
size_t RequestHeadLength(std::string_view buffered);

// The request line and headers of one head (RequestHeadLength bytes). Errors
// say what is malformed; the server answers them 400.
Result<HttpRequest> ParseRequestHead(std::string_view head);

// "a%20b" -> "a b"; with `plus_is_space`, '+' too (query strings and forms).
// A '%' not followed by two hex digits, or one that decodes to NUL, is an error.
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// "a=1&b=2" (a query string or an application/x-www-form-urlencoded body).
Result<std::vector<std::pair<std::string, std::string>>> ParseForm(std::string_view text);

// Answers one request head: GET or HEAD of `path` (a query string is ignored)
// calls `render` for the body, which is served as `content_type`; any other
// path is 404, any other method on it 405, a head that is not HTTP/1.x 400.
HttpResponse Answer(std::string_view head, std::string_view path, std::string_view content_type,
                    const std::function<std::string()>& render);

// A plain-text error: `body` and a newline.
HttpResponse TextError(int status, std::string body);

// What a request that grew past the server's limit before its head ended gets.
HttpResponse TooLarge(size_t limit);

std::string_view ReasonPhrase(int status);

}  // namespace flowmesh::http
