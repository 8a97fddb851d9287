// Control socket set-up (directory, stale socket, permissions), accepting and
// shutdown. The per-connection protocol is in control_session.cc.
#include "node/control/control_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio/dispatch.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

#include "node/common/log.h"
#include "node/control/control_session.h"

namespace flowmesh {
namespace {

using control_internal::ServerState;
using control_internal::Session;
using Acceptor = asio::local::stream_protocol::acceptor;

// More concurrent meshctl connections than any operator runs; the limit
// keeps a runaway script from exhausting meshd's file descriptors.
constexpr size_t kMaxSessions = 64;
constexpr std::chrono::milliseconds kAcceptRetry{100};
const std::string kFixHint = "; choose another path with --control-socket";
const std::string kOrFixHint = " or choose another path with --control-socket";

// mkdir -p for the socket's parent, 0755 so meshctl can reach the socket.
Status MakeParentDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (mkdir(dir.c_str(), 0755) == 0) {
      FM_LOG(Info, "control") << "created directory " << dir;
    } else if (errno != EEXIST) {
      return Status::FromErrno(errno, "cannot create directory " + dir + " for the control socket")
          .WithContext("control socket " + path);
    }
  }
  return Status::Ok();
}

// A socket file left by a meshd that died is removed; one that answers is
// another meshd's, and stealing it would cut that meshd off from meshctl.
Status ClearStaleSocket(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::FromErrno(errno, "cannot inspect " + path);
  }
  if (!S_ISSOCK(st.st_mode))
    return InvalidArgument(path + " exists and is not a socket; remove it" + kOrFixHint);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::FromErrno(errno, "cannot create a socket to probe " + path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int err = errno;
  close(fd);
  // EAGAIN: a listener whose backlog is full, so very much alive.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
    return Unavailable("another meshd is serving " + path + "; stop it first" + kOrFixHint);
  if (err != ECONNREFUSED && err != ENOENT)
    return Status::FromErrno(err, "cannot tell whether " + path + " is in use");
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Status::FromErrno(errno, "cannot remove stale control socket " + path);
  FM_LOG(Info, "control") << "removed stale control socket " << path
                          << " (nothing was listening on it)";
  return Status::Ok();
}

void Accept(std::shared_ptr<ServerState> state, std::shared_ptr<Acceptor> acceptor) {
  acceptor->async_accept(state->strand, [state, acceptor](const asio::error_code& ec,
                                                          control_internal::UnixSocket socket) {
    if (state->stopped.load() || !acceptor->is_open()) return;
    if (ec) {
      // EMFILE and friends fail again at once: pause instead of spinning.
      FM_LOG(Warn, "control") << "accept failed: " << ec.message() << "; retrying in "
                              << kAcceptRetry.count() << "ms";
      auto timer = std::make_shared<asio::steady_timer>(state->strand, kAcceptRetry);
      timer->async_wait([state, acceptor, timer](const asio::error_code&) {
        if (!state->stopped.load()) Accept(state, acceptor);
      });
      return;
    }
    state->accepted.fetch_add(1);
    auto session = std::make_shared<Session>(state, std::move(socket));
    session->Start(state->sessions.size() >= kMaxSessions
                       ? "meshd is serving too many control connections; try again"
                       : nullptr);
    Accept(state, acceptor);
  });
}

// Idempotent: closes the acceptor and every session.
void CloseAll(const std::shared_ptr<ServerState>& state,
              const std::shared_ptr<Acceptor>& acceptor) {
  asio::error_code ignored;
  if (acceptor) acceptor->close(ignored);
  std::vector<std::shared_ptr<Session>> open;
  for (auto& [ptr, weak] : state->sessions)
    if (auto s = weak.lock()) open.push_back(std::move(s));
  for (auto& s : open) s->Close();  // each erases itself from state->sessions
  state->sessions.clear();
}

}  // namespace

ControlServer::ControlServer(asio::io_context& io, ControlBackend& backend)
    : io_(io), state_(std::make_shared<ServerState>(io, backend, worker_.get_executor())) {}

ControlServer::~ControlServer() {
  Stop();
  // No thread runs the io_context now (see the header), so closing inline is
  // safe, and needed when the io_context stopped before Stop's handler ran.
  CloseAll(state_, acceptor_);
  worker_.join();
}

Status ControlServer::Listen(const std::string& path) {
  if (listening_) return Internal("control server already listening on " + path_);
  if (state_->stopped.load()) return Internal("control server was stopped; create a new one");
  if (path.empty()) return InvalidArgument("empty control socket path" + kFixHint);
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    return InvalidArgument("control socket path " + path + " is " + std::to_string(path.size()) +
                           " bytes; Unix sockets allow at most " +
                           std::to_string(sizeof(sockaddr_un::sun_path) - 1) + kFixHint);
  FM_RETURN_IF_ERROR(MakeParentDirs(path));
  FM_RETURN_IF_ERROR(ClearStaleSocket(path));

  auto acceptor = std::make_shared<Acceptor>(state_->strand);
  asio::local::stream_protocol::endpoint endpoint(path);
  asio::error_code ec;
  acceptor->open(endpoint.protocol(), ec);
  if (ec) return IoError("cannot create the control socket " + path + ": " + ec.message());
  // umask makes the file 0600 from birth, so there is no moment in which
  // another user could connect; chmod below makes sure whatever the umask was.
  mode_t old_mask = umask(0177);
  acceptor->bind(endpoint, ec);
  umask(old_mask);
  if (ec == asio::error::address_in_use)
    return Unavailable("another meshd is serving " + path + " (it appeared just now)" + kFixHint);
  if (ec == asio::error::access_denied)
    return PermissionDenied("cannot create the control socket " + path + ": " + ec.message() +
                            "; run meshd as root" + kOrFixHint);
  if (ec) return IoError("cannot bind the control socket " + path + ": " + ec.message() + kFixHint);
  struct stat st {};
  if (chmod(path.c_str(), 0600) != 0 || stat(path.c_str(), &st) != 0) {
    Status s = Status::FromErrno(errno, "cannot set mode 0600 on the control socket " + path);
    unlink(path.c_str());
    return s;
  }
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    unlink(path.c_str());
    return IoError("cannot listen on the control socket " + path + ": " + ec.message());
  }
  path_ = path;
  inode_ = st.st_ino;
  acceptor_ = acceptor;
  listening_ = true;
  asio::dispatch(state_->strand, [state = state_, acceptor] { Accept(state, acceptor); });
  FM_LOG(Debug, "control") << "listening on " << path << " (mode 0600)";
  return Status::Ok();
}

void ControlServer::Stop() {
  if (state_->stopped.exchange(true)) return;
  worker_.stop();
  if (listening_) {
    // Remove the name first so no new client can find us, then close.
    struct stat st {};
    if (stat(path_.c_str(), &st) == 0 && st.st_ino == inode_) unlink(path_.c_str());
  }
  if (io_.stopped() || state_->strand.running_in_this_thread()) {
    CloseAll(state_, acceptor_);
  } else {
    asio::dispatch(state_->strand,
                   [state = state_, acceptor = acceptor_] { CloseAll(state, acceptor); });
  }
}

uint64_t ControlServer::malformed_frames() const { return state_->malformed.load(); }
uint64_t ControlServer::accepted() const { return state_->accepted.load(); }

}  // namespace flowmesh
