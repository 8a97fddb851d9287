// NETLINK_SOCK_DIAG through libmnl: the dump request, the reply loop and the
// parser for inet_diag_msg + INET_DIAG_INFO (struct tcp_info).
#include "node/probe/sock_diag.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>

#include "node/common/log.h"

namespace flowmesh {
namespace {

// Large enough for any dump datagram: the kernel sizes them by the largest
// buffer we ever passed to recvmsg, capped at 32 KiB.
constexpr size_t kRecvBufSize = 64 * 1024;
constexpr int kDumpAttempts = 3;
// A dump always ends with NLMSG_DONE; this only guards against a kernel or
// seccomp oddity leaving the probe thread blocked forever.
constexpr int kRecvTimeoutSec = 5;

// Copies one tcp_info field if the attribute is long enough to hold it.
template <typename T>
void InfoField(const uint8_t* info, size_t len, size_t offset, T* out) {
  if (offset + sizeof(T) <= len) std::memcpy(out, info + offset, sizeof(T));
}

#define FM_TCPI(field) offsetof(struct tcp_info, field)

void ParseTcpInfo(const uint8_t* info, size_t len, TcpCounters* c) {
  // Older kernels send a shorter struct (bytes_acked arrived in 4.1, segs in
  // 4.2); fields beyond the attribute's length stay 0.
  InfoField(info, len, FM_TCPI(tcpi_bytes_acked), &c->bytes_tx);
  InfoField(info, len, FM_TCPI(tcpi_bytes_received), &c->bytes_rx);
  InfoField(info, len, FM_TCPI(tcpi_segs_out), &c->segs_out);
  InfoField(info, len, FM_TCPI(tcpi_segs_in), &c->segs_in);
  InfoField(info, len, FM_TCPI(tcpi_total_retrans), &c->retrans);
  InfoField(info, len, FM_TCPI(tcpi_rtt), &c->rtt_us);
  InfoField(info, len, FM_TCPI(tcpi_rttvar), &c->rttvar_us);
}

// mnl_nlmsg_ok, but with the length compared unsigned: libmnl casts
// nlmsg_len to int, so a length of 2^31 or more passed as fitting and the walk
// (and ParseDiagMessage, which trusts nlmsg_len) ran off the datagram.
bool MessageFits(const nlmsghdr* m, int len) {
  return len >= static_cast<int>(sizeof(nlmsghdr)) && m->nlmsg_len >= sizeof(nlmsghdr) &&
         m->nlmsg_len <= static_cast<uint32_t>(len);
}

Status WithFix(const Status& s, const std::string& fix) {
  return {s.code(), s.message() + "; " + fix};
}

Status OpenError(int err) {
  Status s = Status::FromErrno(err, "cannot open NETLINK_SOCK_DIAG socket");
  switch (err) {
    case EPERM:
    case EACCES:
      return WithFix(s,
                     "a seccomp or LSM policy is blocking netlink sockets (container runtime, "
                     "systemd RestrictAddressFamilies=); allow AF_NETLINK for meshd or use "
                     "--probe-mode streaming");
    case EPROTONOSUPPORT:
    case EAFNOSUPPORT:
      return WithFix(s,
                     "this kernel has no sock_diag; enable CONFIG_INET_DIAG or run "
                     "'modprobe inet_diag tcp_diag'");
    default: return s;
  }
}

Status DumpError(int err, uint16_t family) {
  std::string what = std::string("sock_diag dump of ") + (family == AF_INET ? "IPv4" : "IPv6") +
                     " TCP sockets failed";
  Status s = Status::FromErrno(err, what);
  if (err == ENOENT)
    return WithFix(s, "the kernel has no TCP sock_diag handler; 'modprobe tcp_diag'");
  if (err == EAGAIN) return WithFix(s, "no reply within " + std::to_string(kRecvTimeoutSec) + "s");
  return s;
}

}  // namespace

std::string_view TcpStateName(uint8_t state) {
  static constexpr std::string_view kNames[] = {
      "UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",   "TIME_WAIT",
      "CLOSE",   "CLOSE_WAIT",  "LAST_ACK", "LISTEN",   "CLOSING",   "NEW_SYN_RECV"};
  return state < std::size(kNames) ? kNames[state] : kNames[0];
}

Status ParseDiagMessage(const struct nlmsghdr* nlh, uint32_t netns, DiagSocket* out) {
  constexpr size_t kMin = NLMSG_HDRLEN + sizeof(inet_diag_msg);
  if (nlh == nullptr) return InvalidArgument("sock_diag message: null");
  if (nlh->nlmsg_len < kMin)
    return InvalidArgument("sock_diag message of " + std::to_string(nlh->nlmsg_len) +
                           " bytes is shorter than its header and inet_diag_msg (" +
                           std::to_string(kMin) + " bytes)");
  if (nlh->nlmsg_type != SOCK_DIAG_BY_FAMILY)
    return InvalidArgument("sock_diag message of type " + std::to_string(nlh->nlmsg_type) +
                           ", expected SOCK_DIAG_BY_FAMILY (" +
                           std::to_string(SOCK_DIAG_BY_FAMILY) + ")");
  const auto* payload = reinterpret_cast<const uint8_t*>(nlh) + NLMSG_HDRLEN;
  inet_diag_msg msg;
  std::memcpy(&msg, payload, sizeof msg);  // no alignment assumed
  if (msg.idiag_family != AF_INET && msg.idiag_family != AF_INET6)
    return InvalidArgument("sock_diag message with address family " +
                           std::to_string(msg.idiag_family) + ", expected AF_INET or AF_INET6");

  DiagSocket s;
  s.state = msg.idiag_state;
  s.key.netns = netns;
  s.key.laddr =
      IpAddr::FromRaw(msg.idiag_family, reinterpret_cast<const uint8_t*>(msg.id.idiag_src));
  s.key.lport = ntohs(msg.id.idiag_sport);
  if (s.state != kTcpListen) {  // a listener's peer is all zeros; keep ConnEvent's "unset"
    s.key.raddr =
        IpAddr::FromRaw(msg.idiag_family, reinterpret_cast<const uint8_t*>(msg.id.idiag_dst));
    s.key.rport = ntohs(msg.id.idiag_dport);
  }
  s.inode = msg.idiag_inode;
  s.uid = msg.idiag_uid;
  s.cookie = uint64_t{msg.id.idiag_cookie[0]} | (uint64_t{msg.id.idiag_cookie[1]} << 32);

  // Attributes follow the aligned inet_diag_msg; each must fit in what is left.
  size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(inet_diag_msg));
  const auto* base = reinterpret_cast<const uint8_t*>(nlh);
  while (offset + NLA_HDRLEN <= nlh->nlmsg_len) {
    nlattr attr;
    std::memcpy(&attr, base + offset, sizeof attr);
    size_t left = nlh->nlmsg_len - offset;
    if (attr.nla_len < NLA_HDRLEN || attr.nla_len > left)
      return InvalidArgument("sock_diag attribute " +
                             std::to_string(attr.nla_type & NLA_TYPE_MASK) + " claims " +
                             std::to_string(attr.nla_len) + " bytes, " + std::to_string(left) +
                             " left in the message");
    if ((attr.nla_type & NLA_TYPE_MASK) == INET_DIAG_INFO) {
      s.has_info = true;
      ParseTcpInfo(base + offset + NLA_HDRLEN, attr.nla_len - NLA_HDRLEN, &s.counters);
    }
    offset += NLA_ALIGN(attr.nla_len);
  }
  *out = s;
  return Status::Ok();
}

Status ParseDumpDatagram(std::span<const char> datagram, uint32_t seq, uint32_t portid,
                         uint32_t netns, std::vector<DiagSocket>* out, DumpProgress* progress) {
  int len = static_cast<int>(std::min<size_t>(datagram.size(), INT_MAX));
  const auto* m = reinterpret_cast<const nlmsghdr*>(datagram.data());
  for (; MessageFits(m, len); m = mnl_nlmsg_next(m, &len)) {
    // Replies to an earlier dump that was abandoned half-way (a receive
    // error) are still queued; they are not part of this one.
    if (m->nlmsg_seq != seq || (m->nlmsg_pid != 0 && m->nlmsg_pid != portid)) continue;
    if (m->nlmsg_flags & NLM_F_DUMP_INTR) progress->interrupted = true;
    if (m->nlmsg_type == NLMSG_ERROR || m->nlmsg_type == NLMSG_DONE) {
      int err = 0;
      if (mnl_nlmsg_get_payload_len(m) >= sizeof(int))
        std::memcpy(&err, mnl_nlmsg_get_payload(m), sizeof err);
      progress->done = true;
      if (err < 0) {
        // Errnos are small; anything else (INT_MIN cannot even be negated)
        // is a garbled message, not a code to show the user.
        progress->error = err >= -4095 ? -err : EPROTO;
        return Status::FromErrno(progress->error, "sock_diag dump ended with an error");
      }
      return Status::Ok();
    }
    if (m->nlmsg_type < NLMSG_MIN_TYPE) continue;  // NLMSG_NOOP and friends
    DiagSocket s;
    Status st = ParseDiagMessage(m, netns, &s);
    if (!st.ok()) {
      progress->malformed++;
      FM_LOG(Debug, "sock_diag") << "skipped: " << st.message();
      continue;
    }
    out->push_back(s);
  }
  if (len > 0) {  // trailing bytes that are not a whole message
    progress->malformed++;
    FM_LOG(Debug, "sock_diag") << "skipped " << len << " trailing bytes of a dump datagram";
  }
  return Status::Ok();
}

SockDiag::SockDiag(struct mnl_socket* nl)
    : nl_(nl), portid_(mnl_socket_get_portid(nl)), buf_(kRecvBufSize) {}

SockDiag::SockDiag(SockDiag&& other) noexcept
    : nl_(other.nl_),
      portid_(other.portid_),
      seq_(other.seq_),
      malformed_(other.malformed_),
      buf_(std::move(other.buf_)) {
  other.nl_ = nullptr;
}

SockDiag& SockDiag::operator=(SockDiag&& other) noexcept {
  if (this != &other) {
    if (nl_) mnl_socket_close(nl_);
    nl_ = other.nl_;
    portid_ = other.portid_;
    seq_ = other.seq_;
    malformed_ = other.malformed_;
    buf_ = std::move(other.buf_);
    other.nl_ = nullptr;
  }
  return *this;
}

SockDiag::~SockDiag() {
  if (nl_) mnl_socket_close(nl_);
}

Result<SockDiag> SockDiag::Open() {
  struct mnl_socket* nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
  if (!nl) return OpenError(errno);
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(nl);
    return Status::FromErrno(err, "cannot bind NETLINK_SOCK_DIAG socket");
  }
  timeval tv{kRecvTimeoutSec, 0};
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return SockDiag(nl);
}

Status SockDiag::CheckDumpable(uint16_t family) const {
  if (family != AF_INET && family != AF_INET6)
    return InvalidArgument("sock_diag dump: family " + std::to_string(family) +
                           " is neither AF_INET nor AF_INET6");
  if (!nl_) return Internal("sock_diag dump on a moved-from SockDiag");
  return Status::Ok();
}

Result<std::vector<DiagSocket>> SockDiag::Dump(uint16_t family, uint32_t netns_inode,
                                               uint32_t states) {
  FM_RETURN_IF_ERROR(CheckDumpable(family));
  std::vector<DiagSocket> out;
  const DiagRun append = [&](std::span<const DiagSocket> part) {
    out.insert(out.end(), part.begin(), part.end());
  };
  for (int attempt = 1;; attempt++) {
    out.clear();
    bool interrupted = false;
    FM_RETURN_IF_ERROR(DumpOnce(family, netns_inode, states, append, &interrupted));
    // NLM_F_DUMP_INTR: sockets came and went while the kernel walked its
    // tables, so the result may be inconsistent; a fresh walk usually is not.
    // After the last attempt the slightly inconsistent result beats none.
    if (!interrupted || attempt == kDumpAttempts) return out;
    FM_LOG(Debug, "sock_diag") << "dump interrupted by socket churn; retrying";
  }
}

Status SockDiag::DumpEach(uint16_t family, uint32_t netns_inode, uint32_t states,
                          const DiagRun& each) {
  FM_RETURN_IF_ERROR(CheckDumpable(family));
  for (int attempt = 1;; attempt++) {
    bool interrupted = false;
    FM_RETURN_IF_ERROR(DumpOnce(family, netns_inode, states, each, &interrupted));
    // What the interrupted walk handed over stays handed over; the next walk
    // repeats most of it and adds what the changing tables made it skip.
    if (!interrupted || attempt == kDumpAttempts) return Status::Ok();
    FM_LOG(Debug, "sock_diag") << "dump interrupted by socket churn; reading it again";
  }
}

Status SockDiag::DumpOnce(uint16_t family, uint32_t netns_inode, uint32_t states,
                          const DiagRun& each, bool* interrupted) {
  char req_buf[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(inet_diag_req_v2))] = {};
  nlmsghdr* nlh = mnl_nlmsg_put_header(req_buf);
  nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  const uint32_t seq = ++seq_;
  nlh->nlmsg_seq = seq;
  auto* req =
      static_cast<inet_diag_req_v2*>(mnl_nlmsg_put_extra_header(nlh, sizeof(inet_diag_req_v2)));
  req->sdiag_family = static_cast<uint8_t>(family);
  req->sdiag_protocol = IPPROTO_TCP;
  req->idiag_states = states;
  req->idiag_ext = 1 << (INET_DIAG_INFO - 1);
  if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) return DumpError(errno, family);

  for (;;) {
    ssize_t n = mnl_socket_recvfrom(nl_, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return DumpError(errno, family);
    }
    DumpProgress progress;
    datagram_.clear();
    Status s = ParseDumpDatagram(std::span<const char>(buf_.data(), static_cast<size_t>(n)), seq,
                                 portid_, netns_inode, &datagram_, &progress);
    malformed_ += progress.malformed;
    if (!datagram_.empty()) each(datagram_);
    if (progress.interrupted) *interrupted = true;
    if (!s.ok()) return DumpError(-progress.error, family);
    if (progress.done) return Status::Ok();
  }
}

}  // namespace flowmesh
