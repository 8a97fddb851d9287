// Network namespaces for the poller: which ones exist (from the proc root),
// running code inside one on the calling thread, their addresses, and one
// sock_diag socket per namespace, kept while the namespace lives.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "node/common/net.h"
#include "node/common/status.h"
#include "node/probe/probe.h"
#include "node/probe/sock_diag.h"

namespace flowmesh {

// The distinct network namespaces of the processes under `proc_root`,
// ascending by inode. Namespaces with no process (only a bind mount, e.g. an
// idle `ip netns add`) are not found. Processes whose link cannot be read
// (exited, or EACCES) are skipped.
Result<std::vector<NetnsRef>> ListNetns(const std::string& proc_root);

// The inode of the calling thread's network namespace.
Result<uint32_t> SelfNetnsInode();

// The inode of the network namespace file at `path` (/run/netns/NAME,
// /proc/PID/ns/net). Errors say what the path is instead: missing, not a
// namespace (an unmounted /run/netns entry is a plain file), another kind.
Result<uint32_t> NetnsInodeOfPath(const std::string& path);

// The addresses of each namespace in `namespaces` (loopback and unspecified
// left out), by inode, read inside each (getifaddrs after setns; our own
// without). A namespace without a path is entered through a process in it
// under `proc_root`. One that cannot be read is left out of the map and its
// reason appended to `skipped`; an error only when none could be read.
// The addresses of this thread's network namespace's interfaces, sorted,
// each once (getifaddrs).
Result<std::vector<IpAddr>> InterfaceAddresses(bool with_loopback);

Result<std::map<uint32_t, std::vector<IpAddr>>> NamespaceAddresses(
    const std::vector<NetnsRef>& namespaces, const std::string& proc_root,
    std::vector<Status>* skipped = nullptr);

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
