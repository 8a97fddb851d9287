// meshd's entry point: parse flags, start, serve, exit with a meaningful code.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "node/common/log.h"
#include "node/daemon/config.h"
#include "node/daemon/daemon.h"

namespace {

// A daemon's stdin, stdout and stderr may come closed (`meshd 2>&-`, a
// supervisor that closed them). The next file meshd opens would then take
// descriptor 2 and receive the log; /dev/null takes the slot instead.
void OccupyStandardDescriptors() {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0 && null != fd) {
      dup2(null, fd);
      close(null);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace flowmesh;
  // A fixed mmap threshold: glibc otherwise raises it to the size of every
  // large block freed (up to 32 MiB), after which multi-MiB mesh frames come
  // from the heap and their memory is kept after they are freed. Fixed, each
  // block of 128 KiB or more is its own mapping and goes back at free().
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  // A log line to a stderr whose reader went away (a closed pipe, a dead
  // journal connection) must fail that write, not kill meshd with SIGPIPE;
  // every socket write already copes with EPIPE.
  signal(SIGPIPE, SIG_IGN);
  OccupyStandardDescriptors();
  int exit_code = 0;
  std::optional<DaemonConfig> config = ParseDaemonArgs(argc, argv, &exit_code);
  if (!config) return exit_code;
  // Before anything logs, so every line of this run has the chosen shape.
  if (auto level = log::ParseLevel(config->log_level)) log::SetLevel(*level);
  log::Format format = log::ParseFormat(config->log_format).value_or(log::Format::kText);
  log::SetFormat(format);

  Daemon daemon(std::move(*config));
  if (Status s = daemon.Init(); !s.ok()) {
    if (format == log::Format::kJson)
      log::Write(log::Level::Error, "meshd", s.message());
    else
      std::fprintf(stderr, "meshd: %s\n", s.message().c_str());
    return 1;
  }
  return daemon.Run();
}
