// Network namespaces for the poller: which ones exist (from the proc root),
// running code inside one on the calling thread, and one sock_diag socket per
// namespace, kept while the namespace lives.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/common/status.h"
#include "node/probe/sock_diag.h"

namespace flowmesh {

struct NetnsRef {
  uint32_t inode = 0;
  uint32_t pid = 0;  // the lowest pid living in it
  std::string path;  // "<proc_root>/<pid>/ns/net": what setns opens
};

// The distinct network namespaces of the processes under `proc_root`,
// ascending by inode. Namespaces with no process (only a bind mount, e.g. an
// idle `ip netns add`) are not found. Processes whose link cannot be read
// (exited, or EACCES) are skipped.
Result<std::vector<NetnsRef>> ListNetns(const std::string& proc_root);

// The inode of the calling thread's network namespace.
Result<uint32_t> SelfNetnsInode();

// Runs `fn` on the calling thread inside the network namespace at `ns_path`
// and switches back before returning, whatever `fn` returns. When
// `expected_inode` is not 0 the opened namespace must be that one (a pid
// from an older listing may now belong to a process elsewhere). Needs
// CAP_SYS_ADMIN; the error says so.
Status RunInNetns(const std::string& ns_path, uint32_t expected_inode,
                  const std::function<Status()>& fn);

// One SockDiag per network namespace. A netlink socket belongs to the
// namespace it was created in, so it is opened there once (setns there and
// back) and then dumped from here without switching again.
class NetnsDiagCache {
 public:
  NetnsDiagCache() = default;
  NetnsDiagCache(const NetnsDiagCache&) = delete;
  NetnsDiagCache& operator=(const NetnsDiagCache&) = delete;

  // The socket for `ns`, opened on first use. Our own namespace needs no
  // setns (and so no privilege).
  Result<SockDiag*> Get(const NetnsRef& ns);
  // Closes the sockets of namespaces not in `alive`. A netlink socket holds a
  // reference on its namespace: keeping it would keep a dead one alive.
  void Retain(const std::vector<NetnsRef>& alive);

  size_t size() const { return sockets_.size(); }
  // Malformed messages over every socket, open or since dropped.
  uint64_t malformed() const;
  // This thread's own namespace inode (looked up once).
  Result<uint32_t> SelfInode();

 private:
  uint32_t self_inode_ = 0;
  uint64_t dropped_malformed_ = 0;
  std::unordered_map<uint32_t, SockDiag> sockets_;
};

}  // namespace flowmesh
