// The little of HTTP/1.x the metrics endpoint needs, without sockets: find
// the end of a request head, answer it, write the response. One request per
// connection (Connection: close), which is what Prometheus's scraper does well
// with and keeps the server free of keep-alive state.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace flowmesh::metrics {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string allow;       // the Allow header of a 405
  bool head_only = false;  // HEAD: headers (with the body's length) but no body
  // Status line, headers (Content-Length, Connection: close) and body.
  std::string Serialize() const;
};

// Bytes up to and including the blank line that ends the request head, or 0
// while it has not arrived.
size_t RequestHeadLength(std::string_view buffered);

// Answers one request head: GET or HEAD of `path` (a query string is ignored)
// calls `render` for the body, which is served as `content_type`; any other
// path is 404, any other method on it 405, a head that is not HTTP/1.x 400.
HttpResponse Answer(std::string_view head, std::string_view path, std::string_view content_type,
                    const std::function<std::string()>& render);

// What a request that grew past the server's limit before its head ended gets.
HttpResponse TooLarge(size_t limit);

std::string_view ReasonPhrase(int status);

}  // namespace flowmesh::metrics
