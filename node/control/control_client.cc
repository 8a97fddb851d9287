// Blocking control-socket client with deadlines.
#include "node/control/control_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace flowmesh {
namespace {

using Clock = std::chrono::steady_clock;

// Closes on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string ConnectError(const std::string& path, int err) {
  std::string msg = "cannot connect to meshd at " + path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM) {
    struct stat st {};
    std::string owner = "its owner";
    if (stat(path.c_str(), &st) == 0)
      owner = st.st_uid == 0 ? "root" : "its owner (uid " + std::to_string(st.st_uid) + ")";
    return msg + "; the control socket is mode 0600, so run meshctl as " + owner +
           (st.st_uid == 0 ? " (e.g. with sudo)" : "");
  }
  return msg + "; is meshd running? (use --socket PATH to point elsewhere)";
}

Result<int> Dial(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return InvalidArgument("cannot connect to meshd at '" + path +
                           "': not a valid Unix socket path (1 to " +
                           std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno(errno, "cannot create a Unix socket");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    Status::Code code = err == EACCES || err == EPERM ? Status::Code::kPermissionDenied
                                                      : Status::Code::kUnavailable;
    return Status(code, ConnectError(path, err));
  }
  return fd;
}

Status WriteAll(int fd, const std::vector<uint8_t>& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot send the request to meshd");
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Reads until `decoder` has a frame. Returns false (and Ok) when the
// deadline passes first; `deadline` of max() waits forever.
Result<bool> ReadFrame(int fd, FrameDecoder& decoder, Frame* out, Clock::time_point deadline) {
  uint8_t buf[64 * 1024];
  while (!decoder.Next(out)) {
    int wait_ms = -1;
    if (deadline != Clock::time_point::max()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      wait_ms = static_cast<int>(std::min<int64_t>(left, 60'000));
    }
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return Status::FromErrno(errno, "cannot wait for meshd");
    if (rc == 0) continue;  // re-check the deadline
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "cannot read from meshd");
    if (n == 0)
      return Unavailable(decoder.idle() ? "meshd closed the connection (did it stop?)"
                                        : "meshd closed the connection in the middle of a reply");
    Status fed = decoder.Feed(buf, static_cast<size_t>(n));
    if (!fed.ok()) return fed.WithContext("bad reply from meshd");
  }
  return true;
}

ControlRequest Request(RequestKind kind, const WatchFilter& filter = {}) {
  ControlRequest r;
  r.kind = kind;
  r.filter = filter;
  return r;
}

// The workload of the i-th item of a reply; none when meshd sent none.
const Workload& WorkloadOf(const ControlResponse& r, size_t i) {
  static const Workload kNone;
  return i < r.workloads.size() ? r.workloads[i] : kNone;
}

Status AnswerError(const ControlResponse& r) {
  if (r.kind == ControlResponse::Kind::kError) return Unavailable("meshd: " + r.error);
  return Internal("meshd sent an unexpected reply (are meshd and meshctl the same version?)");
}

// Sends one request. meshd may refuse a connection at once (too many
// clients) by writing its reason and closing; a request sent after that
// close fails with EPIPE, and the reason is still waiting to be read: the
// caller gets meshd's words, not "Broken pipe".
Status SendRequest(int fd, const ControlRequest& request) {
  FM_ASSIGN_OR_RETURN(std::vector<uint8_t> frame, EncodeRequest(request));
  Status sent = WriteAll(fd, frame);
  if (sent.ok()) return sent;
  FrameDecoder decoder(kMaxResponseBytes);
  Frame reply;
  Result<bool> got = ReadFrame(fd, decoder, &reply, Clock::now() + std::chrono::seconds(1));
  if (!got.ok() || !*got) return sent;
  Result<ControlResponse> r = DecodeResponse(reply);
  if (!r.ok() || r->kind != ControlResponse::Kind::kError) return sent;
  return AnswerError(*r);
}

}  // namespace

Result<ControlClient> ControlClient::Connect(const std::string& path) {
  FM_ASSIGN_OR_RETURN(int fd, Dial(path));
  return ControlClient(path, fd);
}

ControlClient::ControlClient(ControlClient&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), io_timeout_(other.io_timeout_) {
  other.fd_ = -1;
}

ControlClient& ControlClient::operator=(ControlClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    io_timeout_ = other.io_timeout_;
    other.fd_ = -1;
  }
  return *this;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) close(fd_);
}

Result<int> ControlClient::TakeConnection() {
  if (fd_ >= 0) return std::exchange(fd_, -1);
  return Dial(path_);
}

Result<ControlResponse> ControlClient::Call(const ControlRequest& request) {
  return Call(request, io_timeout_);
}

Result<ControlResponse> ControlClient::Call(const ControlRequest& request,
                                            std::chrono::milliseconds timeout) {
  FM_ASSIGN_OR_RETURN(int raw, TakeConnection());
  Fd fd(raw);
  FM_RETURN_IF_ERROR(SendRequest(fd.get(), request));
  FrameDecoder decoder(kMaxResponseBytes);
  Frame reply;
  FM_ASSIGN_OR_RETURN(bool got, ReadFrame(fd.get(), decoder, &reply, Clock::now() + timeout));
  if (!got)
    return Unavailable("meshd at " + path_ + " did not answer within " +
                       std::to_string(timeout.count()) + "ms (is it overloaded or stuck?)");
  return DecodeResponse(reply);
}

Status ControlClient::Flows(const WatchFilter& filter, const TimeWindow& window, uint64_t limit,
                            RecordFn on_record, bool* truncated) {
  FM_ASSIGN_OR_RETURN(int raw, TakeConnection());
  Fd fd(raw);
  ControlRequest request = Request(RequestKind::kFlows, filter);
  request.window = window;
  request.limit = limit;
  FM_RETURN_IF_ERROR(SendRequest(fd.get(), request));
  FrameDecoder decoder(kMaxResponseBytes);
  for (;;) {
    Frame msg;
    // Each batch must come within the timeout; a long scan streams many.
    FM_ASSIGN_OR_RETURN(bool got, ReadFrame(fd.get(), decoder, &msg, Clock::now() + io_timeout_));
    if (!got)
      return Unavailable("meshd at " + path_ + " stopped sending records for " +
                         std::to_string(io_timeout_.count()) + "ms (is it overloaded or stuck?)");
    FM_ASSIGN_OR_RETURN(ControlResponse r, DecodeResponse(msg));
    if (r.kind != ControlResponse::Kind::kRecords) return AnswerError(r);
    for (size_t i = 0; i < r.records.size(); i++)
      if (on_record && !on_record(r.records[i], WorkloadOf(r, i))) return Status::Ok();
    if (r.done) {
      if (truncated) *truncated = r.truncated;
      return Status::Ok();
    }
  }
}

Result<std::vector<EndpointView>> ControlClient::Endpoints() {
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(Request(RequestKind::kEndpoints)));
  if (r.kind != ControlResponse::Kind::kEndpoints) return AnswerError(r);
  return std::move(r.endpoints);
}

Result<std::vector<PeerView>> ControlClient::Peers() {
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(Request(RequestKind::kPeers)));
  if (r.kind != ControlResponse::Kind::kPeers) return AnswerError(r);
  return std::move(r.peers);
}

Result<std::vector<EndpointView>> ControlClient::MeshEndpoints() {
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(Request(RequestKind::kMeshEndpoints)));
  if (r.kind != ControlResponse::Kind::kEndpoints) return AnswerError(r);
  return std::move(r.endpoints);
}

Result<LookNode> ControlClient::Look(const LookQuery& query, std::chrono::milliseconds timeout) {
  ControlRequest request = Request(RequestKind::kLook);
  request.look = query;
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(request, timeout));
  if (r.kind != ControlResponse::Kind::kLook) return AnswerError(r);
  return std::move(r.look);
}

Result<MapResult> ControlClient::Map(const MapQuery& query, std::chrono::milliseconds timeout) {
  ControlRequest request = Request(RequestKind::kMap);
  request.map = query;
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(request, timeout));
  if (r.kind == ControlResponse::Kind::kMap) return std::move(r.map);
  // A meshd of before cannot decode the request: its words are "meshd could
  // not decode the request: unknown request 9 (...)" (messages.cc).
  if (r.kind == ControlResponse::Kind::kError &&
      r.error.find("unknown request") != std::string::npos)
    return Unavailable("this meshd does not know `map`; upgrade it (meshd: " + r.error + ")");
  return AnswerError(r);
}

Result<std::vector<NodeKeys>> ControlClient::Keys(KeyOp op, const std::string& key,
                                                  std::chrono::milliseconds timeout) {
  ControlRequest request = Request(RequestKind::kKeys);
  request.key_op = op;
  request.key = key;
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(request, timeout));
  if (r.kind != ControlResponse::Kind::kKeys) return AnswerError(r);
  return std::move(r.keys);
}

Result<NodeStatus> ControlClient::Status() {
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(Request(RequestKind::kStatus)));
  if (r.kind != ControlResponse::Kind::kStatus) return AnswerError(r);
  return std::move(r.status);
}

Result<std::vector<OpenConnection>> ControlClient::Connections(const WatchFilter& filter,
                                                               std::vector<Workload>* workloads) {
  FM_ASSIGN_OR_RETURN(ControlResponse r, Call(Request(RequestKind::kConnections, filter)));
  if (r.kind != ControlResponse::Kind::kConnections) return AnswerError(r);
  if (workloads != nullptr) {
    workloads->clear();
    for (size_t i = 0; i < r.connections.size(); i++) workloads->push_back(WorkloadOf(r, i));
  }
  return std::move(r.connections);
}

Status ControlClient::Watch(const WatchFilter& filter, EventFn on_event,
                            std::function<void(uint64_t dropped)> on_dropped,
                            std::chrono::milliseconds timeout) {
  FM_ASSIGN_OR_RETURN(int raw, TakeConnection());
  Fd fd(raw);
  FM_RETURN_IF_ERROR(SendRequest(fd.get(), Request(RequestKind::kWatch, filter)));
  Clock::time_point deadline =
      timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  FrameDecoder decoder(kMaxResponseBytes);
  for (;;) {
    Frame msg;
    FM_ASSIGN_OR_RETURN(bool got, ReadFrame(fd.get(), decoder, &msg, deadline));
    if (!got) return Status::Ok();  // --timeout reached
    FM_ASSIGN_OR_RETURN(ControlResponse r, DecodeResponse(msg));
    switch (r.kind) {
      case ControlResponse::Kind::kEvent:
        if (on_event && !on_event(r.event, WorkloadOf(r, 0))) return Status::Ok();
        break;
      case ControlResponse::Kind::kWatchDropped:
        if (on_dropped) on_dropped(r.dropped);
        break;
      default: return AnswerError(r);
    }
  }
}

}  // namespace flowmesh
