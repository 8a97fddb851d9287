// Address parsing and formatting.
#include "node/common/net.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <vector>

namespace flowmesh {

IpAddr IpAddr::V4(uint32_t network_order) {
  IpAddr a;
  a.family = AF_INET;
  std::memcpy(a.bytes.data(), &network_order, 4);
  return a;
}

IpAddr IpAddr::V4(uint8_t b0, uint8_t b1, uint8_t b2, uint8_t b3) {
  IpAddr a;
  a.family = AF_INET;
  a.bytes[0] = b0;
  a.bytes[1] = b1;
  a.bytes[2] = b2;
  a.bytes[3] = b3;
  return a;
}

IpAddr IpAddr::V6(const uint8_t raw[16]) {
  IpAddr a;
  a.family = AF_INET6;
  std::memcpy(a.bytes.data(), raw, 16);
  return a;
}

IpAddr IpAddr::FromRaw(uint16_t family, const uint8_t raw[16]) {
  if (family == AF_INET) {
    IpAddr a;
    a.family = AF_INET;
    std::memcpy(a.bytes.data(), raw, 4);
    return a;
  }
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(raw, kMapped, 12) == 0) return V4(raw[12], raw[13], raw[14], raw[15]);
  return V6(raw);
}

Result<IpAddr> IpAddr::Parse(std::string_view text) {
  std::string s(text);
  uint8_t buf[16] = {};
  if (inet_pton(AF_INET, s.c_str(), buf) == 1) return FromRaw(AF_INET, buf);
  if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return FromRaw(AF_INET6, buf);
  return InvalidArgument("'" + s + "' is not an IPv4 or IPv6 address");
}

bool IpAddr::is_v4() const { return family == AF_INET; }

bool IpAddr::is_unspecified() const {
  size_t n = is_v4() ? 4 : 16;
  for (size_t i = 0; i < n; i++)
    if (bytes[i]) return false;
  return true;
}

bool ListenerServes(const IpAddr& listener, const IpAddr& addr) {
  if (addr.is_unspecified() || listener == addr) return true;
  return listener.is_unspecified() && (listener.family == addr.family || !listener.is_v4());
}

bool IpAddr::is_loopback() const {
  if (is_v4()) return bytes[0] == 127;
  static constexpr uint8_t kLoop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(bytes.data(), kLoop, 16) == 0;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    inet_ntop(AF_INET, bytes.data(), buf, sizeof buf);
  } else if (family == AF_INET6) {
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  } else {
    return "-";
  }
  return buf;
}

Result<Endpoint> Endpoint::Parse(std::string_view text, bool allow_no_port) {
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return InvalidArgument("'" + std::string(text) + "': missing ']' after IPv6 address");
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':')
        return InvalidArgument("'" + std::string(text) + "': expected ':port' after ']'");
      port = rest.substr(1);
    }
  } else if (auto colon = text.rfind(':');
             colon != std::string_view::npos && text.find(':') == colon) {
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  Endpoint ep;
  FM_ASSIGN_OR_RETURN(ep.addr, IpAddr::Parse(host));
  if (port.empty()) {
    if (!allow_no_port)
      return InvalidArgument("'" + std::string(text) + "': expected ip:port, e.g. 10.0.0.1:80 or [::1]:80");
    return ep;
  }
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535)
    return InvalidArgument("'" + std::string(text) + "': port must be a number from 1 to 65535");
  ep.port = static_cast<uint16_t>(value);
  return ep;
}

std::string Endpoint::ToString() const {
  std::string a = addr.ToString();
  if (addr.family == AF_INET6) a = "[" + a + "]";
  return a + ":" + std::to_string(port);
}

size_t IpAddrHash::operator()(const IpAddr& a) const noexcept {
  uint64_t lo, hi;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  return std::hash<uint64_t>{}(lo * 0x9e3779b97f4a7c15ULL ^ hi ^ a.family);
}

Result<std::vector<uint16_t>> ParsePortList(std::string_view text, size_t max) {
  std::vector<uint16_t> ports;
  auto parse_one = [&](std::string_view p) -> Result<uint16_t> {
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535)
      return InvalidArgument("'" + std::string(p) + "' is not a port (1-65535)");
    return static_cast<uint16_t>(v);
  };
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    auto dash = item.find('-');
    if (dash == std::string_view::npos) {
      FM_ASSIGN_OR_RETURN(uint16_t p, parse_one(item));
      ports.push_back(p);
    } else {
      FM_ASSIGN_OR_RETURN(uint16_t lo, parse_one(item.substr(0, dash)));
      FM_ASSIGN_OR_RETURN(uint16_t hi, parse_one(item.substr(dash + 1)));
      if (hi < lo) return InvalidArgument("port range '" + std::string(item) + "' is reversed");
      for (unsigned p = lo; p <= hi; p++) ports.push_back(static_cast<uint16_t>(p));
    }
    if (ports.size() > max)
      return InvalidArgument("too many ports (at most " + std::to_string(max) + ")");
  }
  if (ports.empty()) return InvalidArgument("empty port list");
  return ports;
}

}  // namespace flowmesh
