// Prints the raw nfnetlink_conntrack messages of the calling network
// namespace as hex, one message per line, for tests/unit/testdata: the
// events of the NEW and DESTROY groups for `seconds`, a dump of IPv4 and
// IPv6 entries, and the events of one more second (the DESTROYs of the
// expired entries the dump evicted). Only TCP messages are printed (tests/tools/conntrack_capture.sh
// drives it through real DNAT'd connections).
//
//   conntrack_capture SECONDS     lines: "event <hex>" | "dump <hex>"
//   conntrack_capture --probe     what each step needs: opens a socket, joins
//                                 the event groups, dumps without them, then
//                                 ConntrackReader::Open (run it under capsh
//                                 --drop=... to see which capability matters)
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "node/nat/conntrack.h"

namespace {

void Print(const char* what, const nlmsghdr* m) {
  flowmesh::CtEvent ev;
  if (!flowmesh::ParseCtMessage(m, 0, &ev).ok()) return;  // not TCP (or not ours)
  std::printf("%s ", what);
  const auto* p = reinterpret_cast<const unsigned char*>(m);
  for (uint32_t i = 0; i < m->nlmsg_len; i++) std::printf("%02x", p[i]);
  std::printf("\n");
}

void Walk(const char* what, const char* buf, int len) {
  for (auto* m = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(m, len);
       m = mnl_nlmsg_next(m, &len)) {
    if (m->nlmsg_type == NLMSG_ERROR) {
      const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(m));
      if (e->error) std::fprintf(stderr, "conntrack_capture: %s: %s\n", what, strerror(-e->error));
    }
    if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) return;
    Print(what, m);
  }
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void Listen(mnl_socket* ev, int64_t ms, std::vector<char>& buf) {
  const int64_t end = NowMs() + ms;
  for (int64_t left; (left = end - NowMs()) > 0;) {
    pollfd pfd{mnl_socket_get_fd(ev), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) continue;
    int n = static_cast<int>(mnl_socket_recvfrom(ev, buf.data(), buf.size()));
    if (n < 0) {
      std::perror("conntrack_capture: recv");
      continue;
    }
    Walk("event", buf.data(), n);
  }
  std::fflush(stdout);
}

void Dump(mnl_socket* q, uint8_t family, std::vector<char>& buf) {
  char req[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = family;
  auto* gen = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  gen->nfgen_family = family;
  gen->version = NFNETLINK_V0;
  if (mnl_socket_sendto(q, nlh, nlh->nlmsg_len) < 0) return std::perror("conntrack_capture: send");
  std::fflush(stdout);
  for (bool done = false; !done;) {
    int n = static_cast<int>(mnl_socket_recvfrom(q, buf.data(), buf.size()));
    if (n <= 0) return std::perror("conntrack_capture: dump");
    Walk("dump", buf.data(), n);
    int len = n;
    for (auto* m = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(m, len);
         m = mnl_nlmsg_next(m, &len))
      if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) done = true;
  }
  std::fflush(stdout);
}

}  // namespace

int Probe() {
  std::vector<char> buf(64 * 1024);
  mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  std::printf("socket(NETLINK_NETFILTER): %s\n", nl ? "ok" : strerror(errno));
  if (!nl) return 1;
  int r = mnl_socket_bind(nl, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_DESTROY,
                          MNL_SOCKET_AUTOPID);
  std::printf("bind(NEW|DESTROY groups): %s\n", r == 0 ? "ok" : strerror(errno));
  mnl_socket_close(nl);
  nl = mnl_socket_open(NETLINK_NETFILTER);
  r = mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID);
  std::printf("bind(no groups): %s\n", r == 0 ? "ok" : strerror(errno));
  std::printf("dump: ");
  Dump(nl, AF_INET, buf);
  std::printf("(end of dump)\n");
  mnl_socket_close(nl);
  auto reader = flowmesh::ConntrackReader::Open();
  std::printf("ConntrackReader::Open: %s\n",
              reader.ok() ? "ok" : reader.status().ToString().c_str());
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--probe") == 0) return Probe();
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  std::vector<char> buf(64 * 1024);
  mnl_socket* ev = mnl_socket_open(NETLINK_NETFILTER);
  if (!ev || mnl_socket_bind(ev, NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_DESTROY,
                             MNL_SOCKET_AUTOPID) < 0) {
    std::perror("conntrack_capture: event socket");
    return 1;
  }
  Listen(ev, seconds * 1000, buf);
  mnl_socket* q = mnl_socket_open(NETLINK_NETFILTER);
  if (!q || mnl_socket_bind(q, 0, MNL_SOCKET_AUTOPID) < 0) return 1;
  for (uint8_t family : {AF_INET, AF_INET6}) Dump(q, family, buf);
  // A dump evicts the entries whose timeout ran out: their DESTROY events
  // come now rather than at the next garbage collection.
  Listen(ev, 1000, buf);
  mnl_socket_close(q);
  mnl_socket_close(ev);
  return 0;
}
