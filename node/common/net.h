// IP addresses and endpoints as meshd handles them: family plus 16 bytes,
// IPv4-mapped IPv6 folded to IPv4 so one connection has one spelling.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "node/common/status.h"

namespace flowmesh {

struct IpAddr {
  uint16_t family = 0;  // AF_INET or AF_INET6; 0 = unset
  std::array<uint8_t, 16> bytes{};  // IPv4 in the first four bytes

  static IpAddr V4(uint32_t network_order);
  static IpAddr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d);
  static IpAddr V6(const uint8_t bytes[16]);
  // From raw bytes as the kernel reports them; folds v4-mapped v6 to v4.
  static IpAddr FromRaw(uint16_t family, const uint8_t bytes[16]);
  static Result<IpAddr> Parse(std::string_view text);

  bool is_v4() const;
  bool is_unspecified() const;
  bool is_loopback() const;
  std::string ToString() const;
  auto operator<=>(const IpAddr&) const = default;
};

struct Endpoint {
  IpAddr addr;
  uint16_t port = 0;

  // Accepts "10.0.0.1:80", "[::1]:80"; with allow_no_port, also a bare address.
  static Result<Endpoint> Parse(std::string_view text, bool allow_no_port = false);
  std::string ToString() const;  // "10.0.0.1:80", "[::1]:80"
  auto operator<=>(const Endpoint&) const = default;
};

// Does a socket listening on `listener` accept connections to `addr`? The
// same address does; 0.0.0.0 takes any IPv4 address, :: any address on a
// dual-stack host; an unspecified `addr` asks about any address.
bool ListenerServes(const IpAddr& listener, const IpAddr& addr);

struct IpAddrHash {
  size_t operator()(const IpAddr& a) const noexcept;
};

// Parses a port list "80,443,8000-8010" (ranges expanded, at most `max` ports).
Result<std::vector<uint16_t>> ParsePortList(std::string_view text, size_t max = 1024);

}  // namespace flowmesh
