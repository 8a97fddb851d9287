// SocketIter: which process holds which socket, from a BPF task_file
// iterator (bpf/sockowners.bpf.c): the kernel walks every process's file
// table and hands over (socket inode, pid) pairs in one read, where the walk
// of /proc/<pid>/fd costs a readlink() per descriptor (0.3 s for 20,000
// sockets here; meshd's start-up snapshot waited on it). SocketOwners uses
// it as its holder source (SocketOwners::set_holder_source) when it loads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "node/common/status.h"

struct sockowners_bpf;
struct bpf_link;

namespace flowmesh {

class SocketIter {
 public:
  // Loads and attaches the iterator; an error says why (no BTF, no
  // CAP_BPF/CAP_PERFMON, a kernel without task_file iterators).
  static Result<std::unique_ptr<SocketIter>> Open();
  ~SocketIter();
  SocketIter(const SocketIter&) = delete;
  SocketIter& operator=(const SocketIter&) = delete;

  // Every (socket inode, holder pid) pair now, in no order, a pair for each
  // process holding the socket (pids as the kernel's initial pid namespace
  // numbers them, as /proc does outside a container). Thread-safe: each
  // call reads its own iterator.
  Result<std::vector<std::pair<uint32_t, uint32_t>>> Holders() const;

 private:
  SocketIter() = default;
  sockowners_bpf* skel_ = nullptr;
  bpf_link* link_ = nullptr;
};

}  // namespace flowmesh
