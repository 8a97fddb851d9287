// The task_file iterator's reader.
#include "node/probe/socket_iter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node/probe/bpf_probe.h"

namespace flowmesh {

Result<std::vector<std::pair<uint32_t, uint32_t>>> SocketIter::Holders() const {
  const int fd = bpf_iter_create(link_fd_);
  if (fd < 0) return BpfError(fd, "cannot start the socket-owner iterator");
  std::vector<std::pair<uint32_t, uint32_t>> out;
  // The program writes whole 8-byte records; a read returns whole ones.
  uint32_t buf[2 * 1024];
  size_t carry = 0;  // bytes of a record split across reads (none expected)
  for (;;) {
    const ssize_t n = read(fd, reinterpret_cast<char*>(buf) + carry, sizeof buf - carry);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      close(fd);
      return BpfError(-err, "cannot read the socket-owner iterator");
    }
    if (n == 0) break;
    const size_t have = carry + static_cast<size_t>(n);
    const size_t records = have / 8;
    for (size_t i = 0; i < records; i++) out.emplace_back(buf[2 * i], buf[2 * i + 1]);
    carry = have % 8;
    if (carry) std::memmove(buf, reinterpret_cast<char*>(buf) + records * 8, carry);
  }
  close(fd);
  return out;
}

}  // namespace flowmesh
