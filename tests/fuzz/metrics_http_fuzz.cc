// The metrics endpoint's HTTP request parsing (node/http/http.cc), fed the
// way http_server.cc feeds it: bytes accumulate chunk by chunk until
// RequestHeadLength finds the end of the head or the buffer reaches the
// limit, then Answer (or TooLarge) and the serialized response.
//
//   input = [chunk size][bytes off the socket...]
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "node/http/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  using namespace flowmesh::http;
  if (size < 1) return 0;
  const size_t chunk = data[0] ? data[0] : 4096;
  constexpr size_t kLimit = 8192;  // HttpServerOptions::max_request_bytes
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string request;
  for (size_t at = 0; at < in.size(); at += chunk) {
    request.append(in.substr(at, chunk));
    size_t head = RequestHeadLength(request);
    if (head > request.size()) __builtin_trap();
    HttpResponse response;
    if (head > kLimit || (head == 0 && request.size() >= kLimit)) {
      response = TooLarge(kLimit);
    } else if (head == 0) {
      continue;
    } else {
      response = Answer(std::string_view(request).substr(0, head), "/metrics",
                        "text/plain; version=0.0.4", [] { return std::string("up 1\n"); });
    }
    // The web listener's parser reads the same heads (node/http/server.cc).
    Result<HttpRequest> parsed = ParseRequestHead(std::string_view(request).substr(0, head));
    if (parsed.ok() && !parsed->path.starts_with('/')) __builtin_trap();
    std::string out = response.Serialize();
    if (!out.starts_with("HTTP/1.1 ") || ReasonPhrase(response.status) == "Unknown")
      __builtin_trap();
    return 0;
  }
  return 0;
}
