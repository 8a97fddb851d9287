// Stderr writer behind FM_LOG.
#include "node/common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "node/common/json_string.h"

namespace flowmesh::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::Info)};
// Tests only: the lines of the live Capture.
std::mutex g_capture_mu;
std::vector<std::string>* g_captured = nullptr;
std::atomic<bool> g_capturing{false};
std::atomic<int> g_format{static_cast<int>(Format::kText)};

const char* Name(Level level, Format format) {
  bool json = format == Format::kJson;
  switch (level) {
    case Level::Debug: return json ? "debug" : "DEBUG";
    case Level::Info: return json ? "info" : "INFO";
    case Level::Warn: return json ? "warn" : "WARN";
    case Level::Error: return json ? "error" : "ERROR";
  }
  return "?";
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }
Level GetLevel() { return static_cast<Level>(g_level.load()); }
bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::optional<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::Debug;
  if (name == "info") return Level::Info;
  if (name == "warn" || name == "warning") return Level::Warn;
  if (name == "error") return Level::Error;
  return std::nullopt;
}

void SetFormat(Format format) { g_format.store(static_cast<int>(format)); }

std::optional<Format> ParseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return std::nullopt;
}

std::string FormatLine(Format format, int64_t unix_ms, Level level, std::string_view component,
                       std::string_view message) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[40];
  size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  // Trailing newlines (libbpf's messages carry one) would split the line.
  while (!message.empty() && message.back() == '\n') message.remove_suffix(1);

  std::string line;
  line.reserve(80 + message.size());
  if (format == Format::kJson) {
    line += "{\"ts\":\"";
    line += stamp;
    line += "\",\"level\":\"";
    line += Name(level, format);
    line += "\",\"component\":";
    AppendJsonString(&line, component);
    line += ",\"msg\":";
    AppendJsonString(&line, message);
    line += "}\n";
    return line;
  }
  line += stamp;
  line += ' ';
  line += Name(level, format);
  line += ' ';
  line += component;
  line += ": ";
  line += message;
  line += '\n';
  return line;
}

void Write(Level level, std::string_view component, std::string_view message) {
  using namespace std::chrono;
  int64_t now_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  std::string line = FormatLine(static_cast<Format>(g_format.load(std::memory_order_relaxed)),
                                now_ms, level, component, message);
  // One write(2) per line keeps lines from different threads whole. A closed
  // or broken stderr fails the write (SIGPIPE is ignored in meshd's main) and
  // the line is lost: nothing else to do with it.
  ssize_t unused = ::write(STDERR_FILENO, line.data(), line.size());
  (void)unused;
  if (g_capturing.load(std::memory_order_relaxed)) {
    std::lock_guard lock(g_capture_mu);
    if (g_captured != nullptr) {
      // Without the time stamp ("1970-01-01T00:00:00.000Z ") and the newline.
      std::string bare = FormatLine(Format::kText, 0, level, component, message).substr(25);
      bare.pop_back();
      g_captured->push_back(std::move(bare));
    }
  }
}

Capture::Capture() {
  std::lock_guard lock(g_capture_mu);
  g_captured = new std::vector<std::string>();
  g_capturing.store(true);
}

Capture::~Capture() {
  std::lock_guard lock(g_capture_mu);
  g_capturing.store(false);
  delete g_captured;
  g_captured = nullptr;
}

std::vector<std::string> Capture::Lines() const {
  std::lock_guard lock(g_capture_mu);
  return g_captured ? *g_captured : std::vector<std::string>{};
}

size_t Capture::Count(std::string_view needle) const {
  size_t n = 0;
  for (const std::string& line : Lines()) n += line.find(needle) != std::string::npos;
  return n;
}

}  // namespace flowmesh::log
