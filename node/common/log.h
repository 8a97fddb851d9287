// The logging facade: one line per message on stderr, with time, level and
// component, as text or as one JSON object per line for log shippers.
// libbpf's print callback is routed here (node/probe/bpf_probe.cc).
//
//   FM_LOG(Info, "probe") << "attached " << name;
//
//   text: 2026-11-30T00:41:02.113Z INFO probe: attached tp_btf
//   json: {"ts":"2026-11-30T00:41:02.113Z","level":"info","component":"probe","msg":"attached
//   tp_btf"}
#pragma once

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace flowmesh::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Format { kText, kJson };

void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);
// Parses "debug", "info", "warn", "error".
std::optional<Level> ParseLevel(std::string_view name);

void SetFormat(Format format);
// Parses "text", "json".
std::optional<Format> ParseFormat(std::string_view name);

// The line Write would emit (with its trailing newline), for a given time.
std::string FormatLine(Format format, int64_t unix_ms, Level level, std::string_view component,
                       std::string_view message);

// Writes one complete line; safe to call from any thread.
void Write(Level level, std::string_view component, std::string_view message);

// Tests: while a Capture lives, every line written (at an enabled level) is
// also kept, as "LEVEL component: message", so a test can check what an
// operator would read. One at a time.
class Capture {
 public:
  Capture();
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;
  std::vector<std::string> Lines() const;
  // Lines containing `needle`.
  size_t Count(std::string_view needle) const;
};

// Lets a message that may repeat at packet rate through at most once per
// interval; the line that gets through reports how many were held back.
// Times come from the caller, so simulations on a virtual clock work too.
class RateLimit {
 public:
  explicit RateLimit(int64_t interval_ns) : interval_ns_(interval_ns) {}
  // True when a line may be written at now_ns; *held is then the number of
  // calls that returned false since the last true.
  bool Allow(int64_t now_ns, uint64_t* held) {
    if (written_ && now_ns - last_ns_ < interval_ns_) {
      held_++;
      return false;
    }
    written_ = true;
    last_ns_ = now_ns;
    *held = held_;
    held_ = 0;
    return true;
  }

 private:
  int64_t interval_ns_;
  int64_t last_ns_ = 0;
  bool written_ = false;
  uint64_t held_ = 0;
};

class Line {
 public:
  Line(Level level, std::string_view component) : level_(level), component_(component) {}
  ~Line() { Write(level_, component_, stream_.str()); }
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;
  template <typename T>
  Line& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  Level level_;
  std::string_view component_;
  std::ostringstream stream_;
};

// Lets FM_LOG be a single expression, safe inside an unbraced if/else.
struct Voidify {
  void operator&(const Line&) {}
};

}  // namespace flowmesh::log

#define FM_LOG(level, component)                           \
  !::flowmesh::log::Enabled(::flowmesh::log::Level::level) \
      ? (void)0                                            \
      : ::flowmesh::log::Voidify() &                       \
            ::flowmesh::log::Line(::flowmesh::log::Level::level, component)
