// One check for every secret meshd reads from a file (ssh's rule for keys).
#include "node/common/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace flowmesh {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result<std::string> ReadSecretFile(const std::string& path, std::string_view what, size_t max_bytes,
                                   std::string_view size_hint) {
  const std::string name = std::string(what) + " " + path;
  Fd f;
  // O_NONBLOCK: a FIFO in its place must be refused below, not wait for a writer.
  f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (f.fd < 0) return Status::FromErrno(errno, "cannot open " + name);
  struct stat st {};
  if (fstat(f.fd, &st) != 0) return Status::FromErrno(errno, "cannot stat " + name);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(name + " is not a file");
  // A secret others can read is no longer secret.
  if (st.st_mode & 077) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied(name + " has mode " + mode +
                            ", so group or others can access it; run `chmod 600 " + path +
                            "` (and consider what is in it compromised if others read it)");
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    return InvalidArgument(name + " is " + std::to_string(st.st_size) + " bytes; " +
                           std::string(size_hint));
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t have = 0;
  while (have < text.size()) {
    ssize_t n = read(f.fd, text.data() + have, text.size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read " + name);
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  text.resize(have);
  return text;
}

}  // namespace flowmesh
