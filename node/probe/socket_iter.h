// SocketIter: which process holds which socket, from the BPF task_file
// iterator in bpf/tcptrace.bpf.c (socket_owners): the kernel walks every
// process's file table and hands over (socket inode, pid) pairs in one read,
// where the walk of /proc/<pid>/fd costs a readlink() per descriptor of
// every process on the host. BpfProbe loads and attaches it with the
// tracing programs (one parse of the kernel's BTF for both) and hands out
// this reader; SocketOwners takes it as its holder source
// (SocketOwners::set_holder_source).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "node/common/status.h"

namespace flowmesh {

class SocketIter {
 public:
  // `link_fd`: the attached iterator's link, which outlives this reader.
  explicit SocketIter(int link_fd) : link_fd_(link_fd) {}

  // Every (socket inode, holder pid) pair now, in no order, a pair for each
  // process holding the socket (pids as the kernel's initial pid namespace
  // numbers them, as /proc does outside a container). Thread-safe: each
  // call reads its own iterator.
  Result<std::vector<std::pair<uint32_t, uint32_t>>> Holders() const;

 private:
  const int link_fd_;
};

}  // namespace flowmesh
