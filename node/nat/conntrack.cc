// ConntrackReader over NETLINK_NETFILTER (libmnl): an event socket joined to
// the conntrack NEW and DESTROY groups, and a second, blocking socket for
// dumps and lookups so that their replies never interleave with events.
#include "node/nat/conntrack.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <functional>

#include "node/common/log.h"

namespace flowmesh {
namespace {

constexpr size_t kRecvBufSize = 64 * 1024;
// Room for bursts of connection churn between two drains: about 30,000
// events of ~250 bytes of skb each. The kernel doubles what is asked.
constexpr int kEventRcvBuf = 8 << 20;
// A dump or a get always ends with NLMSG_DONE or an ack; this only bounds a
// kernel or seccomp oddity that would leave the probe thread blocked.
constexpr int kRecvTimeoutSec = 5;
constexpr char kThreadSelfNet[] = "/proc/thread-self/ns/net";

// mnl_nlmsg_ok with the length compared unsigned (libmnl casts it to int).
bool MessageFits(const nlmsghdr* m, int len) {
  return len >= static_cast<int>(sizeof(nlmsghdr)) && m->nlmsg_len >= sizeof(nlmsghdr) &&
         m->nlmsg_len <= static_cast<uint32_t>(len);
}

Status WithFix(const Status& s, const std::string& fix) {
  return {s.code(), s.message() + "; " + fix};
}

const char kNeedsNetAdmin[] =
    "the conntrack netlink interface needs CAP_NET_ADMIN; run as root or grant CAP_NET_ADMIN "
    "(systemd: AmbientCapabilities=CAP_NET_ADMIN), or go on without NAT translations";

Status SocketError(int err) {
  Status s = Status::FromErrno(err, "cannot open a NETLINK_NETFILTER socket");
  switch (err) {
    case EPERM:
    case EACCES:
      return WithFix(s,
                     "a seccomp or LSM policy is blocking netlink sockets (container runtime, "
                     "systemd RestrictAddressFamilies=); allow AF_NETLINK for meshd");
    case EPROTONOSUPPORT:
    case EAFNOSUPPORT:
      return WithFix(s,
                     "this kernel has no nfnetlink; enable CONFIG_NETFILTER_NETLINK or run "
                     "'modprobe nfnetlink'");
    default: return s;
  }
}

// An error the kernel answered a conntrack request with.
Status RequestError(int err, const std::string& what) {
  Status s = Status::FromErrno(err, what);
  switch (err) {
    case EPERM:
    case EACCES: return WithFix(s, kNeedsNetAdmin);
    // No conntrack netlink subsystem: nfnetlink asked for the module and
    // did not get it (EINVAL on current kernels, EOPNOTSUPP/ENOENT on others).
    case EINVAL:
    case EOPNOTSUPP:
    case EPROTONOSUPPORT:
      return WithFix(s,
                     "nf_conntrack_netlink is not loaded; run 'modprobe nf_conntrack_netlink' "
                     "(kernel: CONFIG_NF_CT_NETLINK)");
    case EAGAIN:
      return WithFix(s, "no reply within " + std::to_string(kRecvTimeoutSec) + "s");
    default: return s;
  }
}

Result<uint32_t> ThreadNetns() {
  struct stat st {};
  if (stat(kThreadSelfNet, &st) != 0)
    return Status::FromErrno(
        errno, std::string("cannot stat ") + kThreadSelfNet + " (is procfs mounted on /proc?)");
  return static_cast<uint32_t>(st.st_ino);
}

// What walking one datagram said besides its messages.
struct Progress {
  bool done = false;       // NLMSG_DONE or NLMSG_ERROR (an ack is an error of 0)
  int error = 0;           // the errno it carried
  bool interrupted = false;
  uint64_t skipped = 0;    // trailing bytes that are not a whole message
};

// Calls `on_msg` for each message of a datagram that belongs to request
// `seq` from `portid` (seq 0: multicast events, any sender but the kernel is
// skipped); stops at NLMSG_DONE / NLMSG_ERROR.
void WalkDatagram(const char* data, size_t size, uint32_t seq, uint32_t portid,
                  const std::function<void(const nlmsghdr*)>& on_msg, Progress* p) {
  int len = static_cast<int>(std::min<size_t>(size, INT_MAX));
  const auto* m = reinterpret_cast<const nlmsghdr*>(data);
  for (; MessageFits(m, len); m = mnl_nlmsg_next(m, &len)) {
    // Replies to an earlier request abandoned half-way (a timeout) may still
    // be queued; they are not part of this one.
    if (m->nlmsg_seq != seq || (m->nlmsg_pid != 0 && m->nlmsg_pid != portid)) continue;
    if (m->nlmsg_flags & NLM_F_DUMP_INTR) p->interrupted = true;
    if (m->nlmsg_type == NLMSG_ERROR || m->nlmsg_type == NLMSG_DONE) {
      int err = 0;
      if (mnl_nlmsg_get_payload_len(m) >= sizeof(int))
        std::memcpy(&err, mnl_nlmsg_get_payload(m), sizeof err);
      p->done = true;
      if (err < 0) p->error = err >= -4095 ? -err : EPROTO;
      return;
    }
    if (m->nlmsg_type < NLMSG_MIN_TYPE) continue;  // NLMSG_NOOP, NLMSG_OVERRUN
    on_msg(m);
  }
  if (len > 0) p->skipped++;
}

// The header of a request to ctnetlink, in `buf` (MNL_SOCKET_BUFFER_SIZE).
nlmsghdr* PutRequest(char* buf, uint16_t msg, uint16_t flags, uint8_t family) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | msg;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  auto* gen = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  gen->nfgen_family = family;
  gen->version = NFNETLINK_V0;
  return nlh;
}

class NetlinkConntrackReader final : public ConntrackReader {
 public:
  NetlinkConntrackReader(mnl_socket* events, mnl_socket* query, uint32_t netns)
      : events_(events), query_(query), buf_(kRecvBufSize) {
    netns_ = netns;
  }
  ~NetlinkConntrackReader() override {
    mnl_socket_close(events_);
    mnl_socket_close(query_);
  }

  int fd() const override { return mnl_socket_get_fd(events_); }
  Status Drain(std::vector<CtEvent>* out, size_t max, bool* lost) override;
  Status Dump(std::vector<CtEntry>* out) override;
  Result<std::optional<CtEntry>> Get(const CtTuple& original) override;
  ConntrackStats Stats() const override { return stats_; }

  // The kernel's answer to IPCTNL_MSG_CT_GET_STATS: proves the subsystem is
  // there and that we may talk to it, before anyone relies on us.
  Status Probe();

 private:
  // Sends `req` on the query socket and reads its replies to the end;
  // conntrack messages go to `entries` (TCP only; the others are skipped,
  // malformed ones counted).
  Status Request(nlmsghdr* req, const std::string& what, std::vector<CtEntry>* entries,
                 bool* interrupted);
  void Take(const nlmsghdr* m, std::vector<CtEvent>* out);

  mnl_socket* events_;
  mnl_socket* query_;
  uint32_t seq_ = 0;
  std::vector<char> buf_;
  ConntrackStats stats_;
};

void NetlinkConntrackReader::Take(const nlmsghdr* m, std::vector<CtEvent>* out) {
  CtEvent ev;
  Status s = ParseCtMessage(m, netns_, &ev);
  if (s.ok()) {
    out->push_back(ev);
  } else if (s.code() != Status::Code::kNotFound) {
    stats_.malformed++;
    FM_LOG(Debug, "conntrack") << "skipped: " << s.message();
  }
}

Status NetlinkConntrackReader::Drain(std::vector<CtEvent>* out, size_t max, bool* lost) {
  *lost = false;
  const size_t start = out->size();
  while (out->size() - start < max) {
    sockaddr_nl from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd(), buf_.data(), buf_.size(), MSG_DONTWAIT,
                         reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Ok();
      if (errno == ENOBUFS) {
        // The kernel dropped events for us; what is queued after is still good.
        stats_.overflows++;
        *lost = true;
        continue;
      }
      return Status::FromErrno(errno, "cannot read conntrack events");
    }
    if (from.nl_pid != 0) continue;  // only the kernel sends conntrack events
    Progress p;
    WalkDatagram(buf_.data(), static_cast<size_t>(n), 0, 0,
                 [&](const nlmsghdr* m) {
                   stats_.events++;
                   Take(m, out);
                 },
                 &p);
    stats_.malformed += p.skipped;
  }
  return Status::Ok();
}

Status NetlinkConntrackReader::Request(nlmsghdr* req, const std::string& what,
                                       std::vector<CtEntry>* entries, bool* interrupted) {
  const uint32_t seq = ++seq_;
  req->nlmsg_seq = seq;
  if (mnl_socket_sendto(query_, req, req->nlmsg_len) < 0) return RequestError(errno, what);
  std::vector<CtEvent> events;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(query_, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return RequestError(errno, what);
    }
    Progress p;
    // The port id is the kernel's choice at bind (MNL_SOCKET_AUTOPID).
    WalkDatagram(buf_.data(), static_cast<size_t>(n), seq, mnl_socket_get_portid(query_),
                 [&](const nlmsghdr* m) {
                   if (entries) Take(m, &events);
                 },
                 &p);
    stats_.malformed += p.skipped;
    if (p.interrupted && interrupted) *interrupted = true;
    if (p.error) return RequestError(p.error, what);
    if (p.done) break;
  }
  if (entries)
    for (CtEvent& ev : events) entries->push_back(ev.entry);
  return Status::Ok();
}

Status NetlinkConntrackReader::Probe() {
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_GET_STATS, NLM_F_ACK, AF_UNSPEC);
  return Request(nlh, "cannot query conntrack", nullptr, nullptr);
}

Status NetlinkConntrackReader::Dump(std::vector<CtEntry>* out) {
  stats_.dumps++;
  std::vector<CtEntry> all;
  for (uint8_t family : {AF_INET, AF_INET6}) {
    const std::string what =
        std::string("conntrack dump of ") + (family == AF_INET ? "IPv4" : "IPv6") + " entries";
    for (int attempt = 1;; attempt++) {
      char buf[MNL_SOCKET_BUFFER_SIZE];
      nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family);
      std::vector<CtEntry> part;
      bool interrupted = false;
      FM_RETURN_IF_ERROR(Request(nlh, what, &part, &interrupted));
      // NLM_F_DUMP_INTR: the table changed under the walk. One more walk
      // usually is consistent; after it, the entries we have beat none (the
      // events say what changed meanwhile).
      if (!interrupted || attempt == 2) {
        if (interrupted) FM_LOG(Warn, "conntrack") << what << " was interrupted twice by churn";
        all.insert(all.end(), part.begin(), part.end());
        break;
      }
    }
  }
  *out = std::move(all);
  return Status::Ok();
}

Result<std::optional<CtEntry>> NetlinkConntrackReader::Get(const CtTuple& original) {
  const uint16_t family = original.src.addr.family;
  if ((family != AF_INET && family != AF_INET6) || original.dst.addr.family != family)
    return InvalidArgument("conntrack lookup of " + original.src.ToString() + " -> " +
                           original.dst.ToString() + ": the addresses are not of one family");
  stats_.gets++;
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = PutRequest(buf, IPCTNL_MSG_CT_GET, NLM_F_ACK, static_cast<uint8_t>(family));
  const bool v4 = family == AF_INET;
  const size_t alen = v4 ? 4 : 16;
  nlattr* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, alen, original.src.addr.bytes.data());
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, alen, original.dst.addr.bytes.data());
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(original.src.port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(original.dst.port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);

  std::vector<CtEntry> found;
  Status s = Request(nlh, "conntrack lookup of " + original.src.ToString() + " -> " +
                              original.dst.ToString(), &found, nullptr);
  if (s.code() == Status::Code::kNotFound) return std::optional<CtEntry>();
  if (!s.ok()) return s;
  if (found.empty()) return std::optional<CtEntry>();
  return std::optional<CtEntry>(found.front());
}

}  // namespace

Result<std::unique_ptr<ConntrackReader>> ConntrackReader::Open() {
  FM_ASSIGN_OR_RETURN(uint32_t netns, ThreadNetns());
  mnl_socket* events = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!events) return SocketError(errno);
  mnl_socket* query = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!query) {
    int err = errno;
    mnl_socket_close(events);
    return SocketError(err);
  }
  auto reader = std::make_unique<NetlinkConntrackReader>(events, query, netns);
  if (mnl_socket_bind(events, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_DESTROY,
                      MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    Status s = Status::FromErrno(err, "cannot join the conntrack event groups");
    return err == EPERM || err == EACCES ? WithFix(s, kNeedsNetAdmin) : s;
  }
  if (mnl_socket_bind(query, 0, MNL_SOCKET_AUTOPID) < 0)
    return Status::FromErrno(errno, "cannot bind the conntrack query socket");
  // FORCE passes rmem_max (needs CAP_NET_ADMIN, which we have if the bind
  // worked); plain SO_RCVBUF is the fallback, capped at rmem_max.
  int size = kEventRcvBuf;
  if (setsockopt(mnl_socket_get_fd(events), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
      setsockopt(mnl_socket_get_fd(events), SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0)
    FM_LOG(Warn, "conntrack") << "cannot enlarge the event socket's buffer: " << strerror(errno);
  // Off is the default; said here because lost events must surface as
  // ENOBUFS (the caller re-dumps) rather than vanish.
  int no_enobufs = 0;
  setsockopt(mnl_socket_get_fd(events), SOL_NETLINK, NETLINK_NO_ENOBUFS, &no_enobufs,
             sizeof no_enobufs);
  timeval tv{kRecvTimeoutSec, 0};
  setsockopt(mnl_socket_get_fd(query), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  FM_RETURN_IF_ERROR(reader->Probe());

  // net.netfilter.nf_conntrack_events=0 silences the groups: only dumps
  // would show translations then.
  std::ifstream sysctl("/proc/sys/net/netfilter/nf_conntrack_events");
  int events_mode = -1;
  if (sysctl >> events_mode && events_mode == 0)
    FM_LOG(Warn, "conntrack") << "conntrack events are off in this network namespace "
                                 "(net.netfilter.nf_conntrack_events=0): translations are seen "
                                 "only by dumps; set it to 1 or 2";
  return std::unique_ptr<ConntrackReader>(std::move(reader));
}

}  // namespace flowmesh
