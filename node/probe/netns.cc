// Network namespace discovery, setns there-and-back, per-namespace sockets.
#include "node/probe/netns.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "node/common/log.h"
#include "node/proc/process.h"

namespace flowmesh {
namespace {

class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Switches the thread back to its own namespace when it goes out of scope.
// Failing to do so would leave this thread silently tracing (and binding
// sockets in) another namespace, so that is fatal rather than an error.
class NetnsRestorer {
 public:
  explicit NetnsRestorer(int self_fd) : self_fd_(self_fd) {}
  ~NetnsRestorer() {
    if (setns(self_fd_, CLONE_NEWNET) != 0) {
      FM_LOG(Error, "netns") << "cannot return to our own network namespace: "
                             << Status::FromErrno(errno, "setns").message() << "; aborting";
      std::abort();
    }
  }
  NetnsRestorer(const NetnsRestorer&) = delete;
  NetnsRestorer& operator=(const NetnsRestorer&) = delete;

 private:
  int self_fd_;
};

constexpr const char* kThreadSelfNet = "/proc/thread-self/ns/net";

}  // namespace

Result<std::vector<NetnsRef>> ListNetns(const std::string& proc_root) {
  ProcReader reader(proc_root);
  FM_ASSIGN_OR_RETURN(std::vector<uint32_t> pids, reader.Pids());
  std::map<uint32_t, NetnsRef> found;  // ordered: ascending inode
  for (uint32_t pid : pids) {          // ascending, so the first pid seen is the lowest
    Result<uint32_t> inode = reader.NetnsInode(pid);
    if (!inode.ok()) continue;
    auto [it, inserted] = found.try_emplace(*inode);
    if (inserted) it->second = {*inode, pid, reader.PidPath(pid, "ns/net")};
  }
  std::vector<NetnsRef> out;
  out.reserve(found.size());
  for (auto& [inode, ref] : found) out.push_back(std::move(ref));
  return out;
}

Result<uint32_t> SelfNetnsInode() {
  struct stat st {};
  if (stat(kThreadSelfNet, &st) != 0)
    return Status::FromErrno(
        errno, std::string("cannot stat ") + kThreadSelfNet + " (is procfs mounted on /proc?)");
  return static_cast<uint32_t>(st.st_ino);
}

Result<uint32_t> NetnsInodeOfPath(const std::string& path) {
  ScopedFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound(path + ": no such network namespace");
    return Status::FromErrno(err, "cannot open " + path);
  }
  struct statfs fs {};
  if (fstatfs(fd.get(), &fs) != 0) return Status::FromErrno(errno, "cannot statfs " + path);
  if (fs.f_type != NSFS_MAGIC)
    return InvalidArgument(path + " is not a namespace file (a /run/netns entry whose namespace "
                           "is gone is a plain file: ip netns del it)");
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type >= 0 && type != CLONE_NEWNET)
    return InvalidArgument(path + " is a namespace, but not a network namespace");
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "cannot stat " + path);
  return static_cast<uint32_t>(st.st_ino);
}

Result<std::vector<IpAddr>> InterfaceAddresses(bool with_loopback) {
  struct ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return Status::FromErrno(errno, "getifaddrs");
  std::vector<IpAddr> out;
  for (struct ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    IpAddr a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a = IpAddr::V4(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      a = IpAddr::FromRaw(AF_INET6,
                          reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr.s6_addr);
    } else {
      continue;
    }
    if ((a.is_loopback() && !with_loopback) || a.is_unspecified()) continue;
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  freeifaddrs(list);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::map<uint32_t, std::vector<IpAddr>>> NamespaceAddresses(
    const std::vector<NetnsRef>& namespaces, const std::string& proc_root,
    std::vector<Status>* skipped) {
  FM_ASSIGN_OR_RETURN(uint32_t self, SelfNetnsInode());
  std::map<uint32_t, std::vector<IpAddr>> out;
  std::optional<std::vector<NetnsRef>> listed;  // read once, if an inode needs a process
  Status last;
  for (const NetnsRef& want : namespaces) {
    Result<std::vector<IpAddr>> addrs = Internal("not read");
    NetnsRef ref = want;
    if (ref.inode != self && ref.path.empty()) {
      if (!listed) {
        FM_ASSIGN_OR_RETURN(listed, ListNetns(proc_root));
      }
      for (const NetnsRef& r : *listed)
        if (r.inode == ref.inode) ref = r;
    }
    if (ref.inode == self) {
      addrs = InterfaceAddresses(/*with_loopback=*/false);
    } else if (ref.path.empty()) {
      addrs = NotFound("no process under " + proc_root + " lives in it");
    } else {
      Status s = RunInNetns(ref.path, ref.inode, [&] {
        addrs = InterfaceAddresses(/*with_loopback=*/false);
        return addrs.status();
      });
      if (!s.ok()) addrs = s;
    }
    if (addrs.ok()) {
      out[ref.inode] = std::move(addrs).value();
      continue;
    }
    last = addrs.status().WithContext("addresses of network namespace " +
                                      std::to_string(ref.inode));
    if (skipped) skipped->push_back(last);
  }
  if (out.empty() && !last.ok()) return last;
  return out;
}

Status RunInNetns(const std::string& ns_path, uint32_t expected_inode,
                  const std::function<Status()>& fn) {
  ScopedFd self(open(kThreadSelfNet, O_RDONLY | O_CLOEXEC));
  if (self.get() < 0)
    return Status::FromErrno(
        errno, std::string("cannot open our own network namespace ") + kThreadSelfNet);
  ScopedFd target(open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (target.get() < 0) return Status::FromErrno(errno, "cannot open network namespace " + ns_path);
  if (expected_inode != 0) {
    struct stat st {};
    if (fstat(target.get(), &st) != 0)
      return Status::FromErrno(errno, "cannot stat network namespace " + ns_path);
    if (static_cast<uint32_t>(st.st_ino) != expected_inode)
      return NotFound(ns_path + " is now network namespace " + std::to_string(st.st_ino) +
                      ", not " + std::to_string(expected_inode) + " (its process exited)");
  }
  if (setns(target.get(), CLONE_NEWNET) != 0) {
    int err = errno;
    Status s = Status::FromErrno(err, "cannot enter network namespace " + ns_path);
    if (err == EPERM)
      return {s.code(), s.message() + "; run meshd as root (CAP_SYS_ADMIN) or use --netns self"};
    return s;
  }
  NetnsRestorer back(self.get());
  return fn();
}

Result<uint32_t> NetnsDiagCache::SelfInode() {
  if (self_inode_ == 0) {
    FM_ASSIGN_OR_RETURN(self_inode_, SelfNetnsInode());
  }
  return self_inode_;
}

Result<SockDiag*> NetnsDiagCache::Get(const NetnsRef& ns) {
  if (auto it = sockets_.find(ns.inode); it != sockets_.end()) return &it->second;
  FM_ASSIGN_OR_RETURN(uint32_t self, SelfInode());
  Result<SockDiag> opened = Internal("sock_diag socket not opened");
  if (ns.inode == self) {
    opened = SockDiag::Open();
  } else {
    Status s = RunInNetns(ns.path, ns.inode, [&] {
      opened = SockDiag::Open();
      return opened.status();
    });
    if (!s.ok()) return s.WithContext("network namespace " + std::to_string(ns.inode));
  }
  if (!opened.ok()) return opened.status();
  auto [it, inserted] = sockets_.emplace(ns.inode, std::move(opened).value());
  return &it->second;
}

void NetnsDiagCache::Retain(const std::vector<NetnsRef>& alive) {
  for (auto it = sockets_.begin(); it != sockets_.end();) {
    bool live = it->first == self_inode_ ||
                std::any_of(alive.begin(), alive.end(),
                            [&](const NetnsRef& r) { return r.inode == it->first; });
    if (live) {
      ++it;
      continue;
    }
    FM_LOG(Debug, "netns") << "network namespace " << it->first << " is gone; closing its socket";
    dropped_malformed_ += it->second.malformed();
    it = sockets_.erase(it);
  }
}

uint64_t NetnsDiagCache::malformed() const {
  uint64_t n = dropped_malformed_;
  for (const auto& [inode, diag] : sockets_) n += diag.malformed();
  return n;
}

}  // namespace flowmesh
