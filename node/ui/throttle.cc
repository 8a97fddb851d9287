// The per-source login throttle: a bounded LRU of failure rings.
#include "node/ui/throttle.h"

#include <algorithm>

#include "node/common/net.h"

namespace flowmesh::ui {

std::string SourceKey(std::string_view peer) {
  std::string_view host = peer;
  if (host.starts_with('[')) {
    size_t close = host.find(']');
    host = close == std::string_view::npos ? std::string_view() : host.substr(1, close - 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  Result<IpAddr> ip = IpAddr::Parse(host);
  if (!ip.ok()) return "";
  IpAddr a = *ip;
  if (!a.is_v4()) std::fill(a.bytes.begin() + 8, a.bytes.end(), 0);
  return a.is_v4() ? a.ToString() : a.ToString() + "/64";
}

bool SourceThrottle::Throttled(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) return false;
  const Entry& e = it->second;
  // Slot `next` holds the oldest of the last kMaxFailures.
  return e.recorded >= kMaxFailures && Clock::now() - e.at[e.next] < kWindow;
}

void SourceThrottle::Failed(const std::string& source) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxSources) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.push_front(source);
    it = entries_.emplace(source, Entry{}).first;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  Entry& e = it->second;
  e.at[e.next] = Clock::now();
  e.next = (e.next + 1) % kMaxFailures;
  if (e.recorded < kMaxFailures) ++e.recorded;
}

int64_t SourceThrottle::RetryAfterSeconds(const std::string& source) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) return 1;
  auto left = kWindow - (Clock::now() - it->second.at[it->second.next]);
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(left).count());
}

size_t SourceThrottle::sources() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace flowmesh::ui
