// The task_file iterator's loader and reader.
#include "node/probe/socket_iter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "node/probe/bpf_probe.h"
#include "sockowners.skel.h"

namespace flowmesh {

Result<std::unique_ptr<SocketIter>> SocketIter::Open() {
  std::unique_ptr<SocketIter> it(new SocketIter());
  it->skel_ = sockowners_bpf::open_and_load();
  if (!it->skel_) return BpfError(-errno, "cannot load the socket-owner iterator");
  it->link_ = bpf_program__attach_iter(it->skel_->progs.socket_owners, nullptr);
  if (!it->link_)
    return BpfError(-errno, "cannot attach the socket-owner iterator (iter/task_file)");
  return it;
}

SocketIter::~SocketIter() {
  if (link_) bpf_link__destroy(link_);
  if (skel_) sockowners_bpf::destroy(skel_);
}

Result<std::vector<std::pair<uint32_t, uint32_t>>> SocketIter::Holders() const {
  const int fd = bpf_iter_create(bpf_link__fd(link_));
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
