// Request heads in, responses out; the socket side is in http_server.cc.
#include "node/metrics/http.h"

namespace flowmesh::metrics {
namespace {

HttpResponse Error(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Unknown";
}

std::string HttpResponse::Serialize() const {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) +
                    "\r\nContent-Type: " + content_type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
  if (!allow.empty()) out += "Allow: " + allow + "\r\n";
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

size_t RequestHeadLength(std::string_view buffered) {
  // RFC 9112 asks for CRLF but tolerates a bare LF; curl and Prometheus send CRLF.
  size_t crlf = buffered.find("\r\n\r\n");
  size_t lf = buffered.find("\n\n");
  if (crlf == std::string_view::npos && lf == std::string_view::npos) return 0;
  if (lf == std::string_view::npos || (crlf != std::string_view::npos && crlf < lf))
    return crlf + 4;
  return lf + 2;
}

HttpResponse Answer(std::string_view head, std::string_view path, std::string_view content_type,
                    const std::function<std::string()>& render) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  // "METHOD SP request-target SP HTTP/1.x"
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1)
    return Error(400, "malformed request line");
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return Error(400, "only HTTP/1.0 and HTTP/1.1 are served");
  std::string_view target_path = target.substr(0, target.find('?'));
  if (target_path != path) return Error(404, "not found; metrics are at " + std::string(path));
  if (method != "GET" && method != "HEAD") {
    HttpResponse r = Error(405, "method not allowed; use GET");
    r.allow = "GET, HEAD";
    return r;
  }
  HttpResponse r;
  r.content_type = std::string(content_type);
  r.body = render();
  r.head_only = method == "HEAD";
  return r;
}

HttpResponse TooLarge(size_t limit) {
  return Error(431, "request head larger than " + std::to_string(limit) + " bytes");
}

}  // namespace flowmesh::metrics
