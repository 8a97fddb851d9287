// The login throttle: a budget of wrong tokens per source address, so a
// guesser is slowed without locking anyone else out.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace flowmesh::ui {

// The source a wrong token is charged to, from HttpRequest::peer ("ip:port",
// "[v6]:port"): the IPv4 address, or the IPv6 /64 (one host commonly holds a
// whole /64, so a finer key would give a guesser 2^64 budgets). "" when the
// peer does not parse: those share one budget.
std::string SourceKey(std::string_view peer);

class SourceThrottle {
 public:
  // kMaxFailures wrong tokens from one source within kWindow, then that
  // source is refused unchecked until the oldest of them is kWindow old.
  static constexpr size_t kMaxFailures = 10;
  static constexpr std::chrono::seconds kWindow{60};
  // Sources remembered, least recently failing dropped first: memory stays
  // bounded (~100 bytes each) whatever the number of addresses a flood uses.
  static constexpr size_t kMaxSources = 4096;

  bool Throttled(const std::string& source);
  void Failed(const std::string& source);
  // Seconds until `source` may try again (Retry-After), at least 1.
  int64_t RetryAfterSeconds(const std::string& source) const;
  size_t sources() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    // The times of its last kMaxFailures failures, a ring.
    std::array<Clock::time_point, kMaxFailures> at{};
    size_t next = 0;
    size_t recorded = 0;
    std::list<std::string>::iterator lru;
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // most recently failing first
};

}  // namespace flowmesh::ui
