// RocksDB's info log routed to meshd's log: warnings and errors only, and no
// LOG file on the data disk. A LOG file that hit a full disk aborts the
// process on the next line in Debian's librocksdb 7.8 (built with
// assertions: WritableFileWriter::AssertFalseAndGetStatusForPrevError).
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/store/store_impl.h"

namespace flowmesh {
namespace {

class RocksLog : public rocksdb::Logger {
 public:
  RocksLog() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel() || level == rocksdb::InfoLogLevel::HEADER_LEVEL) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    // While a disk stays full RocksDB retries every few seconds and says so
    // each time: one line per distinct message per minute is enough.
    {
      std::lock_guard lock(mu_);
      const int64_t now = MonotonicNs();
      auto it = last_.find(line);
      if (it != last_.end() && now - it->second < kRepeatNs) return;
      if (last_.size() > 256) last_.clear();
      last_[line] = now;
    }
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL)
      FM_LOG(Error, "rocksdb") << line;
    else
      FM_LOG(Warn, "rocksdb") << line;
  }

 private:
  static constexpr int64_t kRepeatNs = 60'000'000'000;
  std::mutex mu_;
  std::unordered_map<std::string, int64_t> last_;  // message -> when last written
};

}  // namespace

std::shared_ptr<rocksdb::Logger> MakeRocksLog() { return std::make_shared<RocksLog>(); }

}  // namespace flowmesh
