// Request heads in, responses out; the socket side is in server.cc.
#include "node/http/http.h"

#include <algorithm>
#include <cctype>

namespace flowmesh::http {
namespace {

struct RequestLine {
  std::string_view method, target, version;
};

// "METHOD SP request-target SP HTTP/1.x": the one check both the metrics
// endpoint (Answer) and the full parser make, so they refuse the same heads.
Result<RequestLine> ParseRequestLine(std::string_view head) {
  std::string_view line = head.substr(0, head.find('\n'));
  if (line.ends_with('\r')) line.remove_suffix(1);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1)
    return InvalidArgument("malformed request line");
  RequestLine r{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), line.substr(sp2 + 1)};
  if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0")
    return InvalidArgument("only HTTP/1.0 and HTTP/1.1 are served");
  return r;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "Unknown";
}

std::string HttpResponse::Serialize() const {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(ReasonPhrase(status)) +
                    "\r\nContent-Type: " + content_type +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
  if (!allow.empty()) out += "Allow: " + allow + "\r\n";
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  if (!head_only) out += body;
  return out;
}

std::optional<std::string_view> HttpRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (n == name) return std::string_view(v);
  return std::nullopt;
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

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%') {
      int hi = i + 2 < text.size() ? HexDigit(text[i + 1]) : -1;
      int lo = hi >= 0 ? HexDigit(text[i + 2]) : -1;
      if (lo < 0)
        return InvalidArgument("bad percent-encoding at '" + std::string(text.substr(i, 3)) +
                               "': '%' takes two hex digits");
      if (hi == 0 && lo == 0) return InvalidArgument("percent-encoded NUL (%00) is not accepted");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseForm(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view part = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (part.empty()) continue;  // "a=1&&b=2"
    size_t eq = part.find('=');
    FM_ASSIGN_OR_RETURN(std::string name, PercentDecode(part.substr(0, eq), true));
    std::string value;
    if (eq != std::string_view::npos) {
      FM_ASSIGN_OR_RETURN(value, PercentDecode(part.substr(eq + 1), true));
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

Result<HttpRequest> ParseRequestHead(std::string_view head) {
  FM_ASSIGN_OR_RETURN(RequestLine line, ParseRequestLine(head));
  HttpRequest r;
  r.method = std::string(line.method);
  r.target = std::string(line.target);
  if (!line.target.starts_with('/'))
    return InvalidArgument("request target '" + r.target + "' is not a path starting with /");
  size_t q = line.target.find('?');
  FM_ASSIGN_OR_RETURN(r.path, PercentDecode(line.target.substr(0, q), false));
  if (q != std::string_view::npos) {
    Result<std::vector<std::pair<std::string, std::string>>> query =
        ParseForm(line.target.substr(q + 1));
    if (!query.ok()) return query.status().WithContext("query string");
    r.query = std::move(query).value();
  }
  std::string_view rest = head.substr(std::min(head.size(), head.find('\n') + 1));
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view l = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (l.ends_with('\r')) l.remove_suffix(1);
    if (l.empty()) break;  // the blank line that ends the head
    size_t colon = l.find(':');
    if (colon == 0 || colon == std::string_view::npos)
      return InvalidArgument("malformed header line (no 'Name:')");
    std::string name(l.substr(0, colon));
    // RFC 9112 5.1: whitespace before the colon invites request smuggling.
    if (name.find_first_of(" \t") != std::string::npos)
      return InvalidArgument("header name '" + name + "' has whitespace before ':'");
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers.emplace_back(std::move(name), std::string(Trim(l.substr(colon + 1))));
  }
  return r;
}

HttpResponse TextError(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.body += '\n';
  return r;
}

HttpResponse Answer(std::string_view head, std::string_view path, std::string_view content_type,
                    const std::function<std::string()>& render) {
  Result<RequestLine> line = ParseRequestLine(head);
  if (!line.ok()) return TextError(400, line.status().message());
  std::string_view target_path = line->target.substr(0, line->target.find('?'));
  if (target_path != path) return TextError(404, "not found; metrics are at " + std::string(path));
  if (line->method != "GET" && line->method != "HEAD") {
    HttpResponse r = TextError(405, "method not allowed; use GET");
    r.allow = "GET, HEAD";
    return r;
  }
  HttpResponse r;
  r.content_type = std::string(content_type);
  r.body = render();
  r.head_only = line->method == "HEAD";
  return r;
}

HttpResponse TooLarge(size_t limit) {
  return TextError(431, "request head larger than " + std::to_string(limit) + " bytes");
}

}  // namespace flowmesh::http
