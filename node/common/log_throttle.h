// Rate-limits a recurring log line (a refusal an attacker can repeat at will):
// at most one line per interval, and that line says how many were held back.
//
//   static LogThrottle throttle;
//   if (auto held = throttle.Admit(MonotonicNs()))
//     FM_LOG(Warn, "mesh") << "refused ..." << LogThrottle::Since(*held);
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

namespace flowmesh {

class LogThrottle {
 public:
  static constexpr int64_t kDefaultIntervalNs = 10'000'000'000;
  explicit LogThrottle(int64_t interval_ns = kDefaultIntervalNs) : interval_ns_(interval_ns) {}

  // Whether to log now; if so, how many earlier ones were held back since the
  // last line. Safe from any thread.
  std::optional<uint64_t> Admit(int64_t now_ns) {
    std::lock_guard lock(mu_);
    if (logged_ && now_ns - last_ns_ < interval_ns_) {
      held_++;
      return std::nullopt;
    }
    logged_ = true;
    last_ns_ = now_ns;
    uint64_t held = held_;
    held_ = 0;
    return held;
  }

  // " (and N more since the last report)", or "" for none.
  static std::string Since(uint64_t held) {
    return held == 0 ? std::string()
                     : " (and " + std::to_string(held) + " more since the last report)";
  }

 private:
  std::mutex mu_;
  const int64_t interval_ns_;
  bool logged_ = false;
  int64_t last_ns_ = 0;
  uint64_t held_ = 0;
};

}  // namespace flowmesh
