// A NETLINK_SOCK_DIAG client (libmnl): dumps the TCP sockets of one network
// namespace with their struct tcp_info counters.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>
#include <vector>

#include "node/common/status.h"
#include "node/probe/event.h"

struct mnl_socket;
struct nlmsghdr;

namespace flowmesh {

// TCP states as sock_diag reports them (the kernel's include/net/tcp_states.h;
// glibc's netinet/tcp.h has them too but clashes with linux/tcp.h).
enum TcpState : uint8_t {
  kTcpEstablished = 1,
  kTcpSynSent,
  kTcpSynRecv,
  kTcpFinWait1,
  kTcpFinWait2,
  kTcpTimeWait,
  kTcpClose,
  kTcpCloseWait,
  kTcpLastAck,
  kTcpListen,
  kTcpClosing,
  kTcpNewSynRecv,
};

// Which sockets a dump asks for, as masks of 1 << TcpState.
inline constexpr uint32_t kListenStates = 1u << kTcpListen;
// Every state from ESTABLISHED until the socket is gone (IsConnectedState).
// Not TIME_WAIT, SYN_SENT or request sockets: under churn TIME_WAIT alone is
// tens of thousands of sockets, which made every dump long and interrupted by
// the churn (NLM_F_DUMP_INTR) on every retry.
inline constexpr uint32_t kConnectedStates =
    (1u << kTcpEstablished) | (1u << kTcpFinWait1) | (1u << kTcpFinWait2) |
    (1u << kTcpCloseWait) | (1u << kTcpLastAck) | (1u << kTcpClosing);

// One socket as sock_diag reports it.
struct DiagSocket {
  ConnKey key;         // listeners: raddr unset and rport 0, as ConnEvent has them
  uint8_t state = 0;   // TcpState
  uint32_t inode = 0;  // 0 when no file refers to it (accept queue, TIME_WAIT, orphans)
  uint32_t uid = 0;
  uint64_t cookie = 0;    // the kernel's socket cookie: tells a reused 4-tuple apart
  bool has_info = false;  // INET_DIAG_INFO was present; counters are meaningful
  TcpCounters counters;
};

// "ESTABLISHED", "LISTEN", ... as ss(8) spells them; "UNKNOWN" otherwise.
std::string_view TcpStateName(uint8_t state);

// Parses one SOCK_DIAG_BY_FAMILY reply. Trusts nothing but nlh->nlmsg_len
// bytes from nlh: a short header, a bad attribute or an unknown family is an
// error (the dump counts it and skips the message). A tcp_info shorter than
// this build's (older kernels) fills only the counters it contains.
Status ParseDiagMessage(const struct nlmsghdr* nlh, uint32_t netns, DiagSocket* out);

// What one datagram of a dump reply said besides its sockets.
struct DumpProgress {
  bool done = false;         // NLMSG_DONE or NLMSG_ERROR ended the dump
  int error = 0;             // the errno NLMSG_ERROR or NLMSG_DONE carried (0: none)
  bool interrupted = false;  // NLM_F_DUMP_INTR: the kernel's tables changed during the walk
  uint64_t malformed = 0;    // messages skipped because they did not parse
};

// Walks one datagram of the reply to dump `seq` sent from `portid`: appends
// the sockets that parse to *out and skips what belongs to another dump. An
// error only when the dump itself ended with one (progress->error).
Status ParseDumpDatagram(std::span<const char> datagram, uint32_t seq, uint32_t portid,
                         uint32_t netns, std::vector<DiagSocket>* out, DumpProgress* progress);

// Move-only owner of one netlink socket. The socket belongs to the network
// namespace the calling thread was in when Open ran; Dump sees that one only.
class SockDiag {
 public:
  static Result<SockDiag> Open();

  SockDiag(SockDiag&& other) noexcept;
  SockDiag& operator=(SockDiag&& other) noexcept;
  SockDiag(const SockDiag&) = delete;
  SockDiag& operator=(const SockDiag&) = delete;
  ~SockDiag();

  // Every TCP socket of `family` (AF_INET or AF_INET6) in `states` (a mask
  // of 1 << TcpState). `netns_inode` is only stamped into each key. Messages
  // that do not parse are skipped and counted in malformed().
  Result<std::vector<DiagSocket>> Dump(uint16_t family, uint32_t netns_inode,
                                       uint32_t states = kListenStates | kConnectedStates);

  // Dump without holding the whole reply: each datagram's sockets (a few
  // hundred at most) go to `each` as soon as they parse, so 100,000 sockets
  // never sit in memory at once (11 MB as DiagSockets). The span is reused
  // after `each` returns. A walk the kernel's tables changed under
  // (NLM_F_DUMP_INTR) is read again, as Dump does, so `each` may be handed a
  // socket a second time: callers take a repeat as the same socket. An error
  // can come after some sockets went to `each`.
  using DiagRun = std::function<void(std::span<const DiagSocket> sockets)>;
  Status DumpEach(uint16_t family, uint32_t netns_inode, uint32_t states, const DiagRun& each);

  // Messages skipped as malformed, over this socket's life.
  uint64_t malformed() const { return malformed_; }

 private:
  explicit SockDiag(struct mnl_socket* nl);
  Status CheckDumpable(uint16_t family) const;
  // One walk; each datagram's sockets to `each`.
  Status DumpOnce(uint16_t family, uint32_t netns_inode, uint32_t states, const DiagRun& each,
                  bool* interrupted);

  struct mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  uint64_t malformed_ = 0;
  std::vector<char> buf_;
  std::vector<DiagSocket> datagram_;  // one datagram's sockets, reused
};

}  // namespace flowmesh
