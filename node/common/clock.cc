// Clock conversions.
#include "node/common/clock.h"

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace flowmesh {
namespace {

int64_t Now(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::atomic<int64_t> g_offset{0};
std::atomic<int64_t> g_offset_at{0};  // 0 = never measured

}  // namespace

int64_t RealtimeNs() { return Now(CLOCK_REALTIME); }
int64_t MonotonicNs() { return Now(CLOCK_MONOTONIC); }

int64_t MonotonicToRealtimeOffsetNs() {
  int64_t mono_now = MonotonicNs();
  int64_t at = g_offset_at.load(std::memory_order_relaxed);
  if (at == 0 || mono_now - at > 1'000'000'000) {
    g_offset.store(RealtimeNs() - MonotonicNs(), std::memory_order_relaxed);
    g_offset_at.store(mono_now, std::memory_order_relaxed);
  }
  return g_offset.load(std::memory_order_relaxed);
}

int64_t MonotonicToRealtimeNs(uint64_t monotonic_ns) {
  return static_cast<int64_t>(monotonic_ns) + MonotonicToRealtimeOffsetNs();
}

uint64_t BoottimeNsToTicks(uint64_t boottime_ns) {
  static const long hz = sysconf(_SC_CLK_TCK);
  return boottime_ns / (1'000'000'000ULL / static_cast<uint64_t>(hz));
}

std::string FormatRfc3339(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  int millis = static_cast<int>((unix_ns / 1'000'000) % 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", millis);
  return buf;
}

std::string FormatClock(int64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm t{};
  localtime_r(&secs, &t);
  char buf[16];
  strftime(buf, sizeof buf, "%H:%M:%S", &t);
  return buf;
}

}  // namespace flowmesh
