// The polling probe's netlink parser: one datagram of a SOCK_DIAG_BY_FAMILY
// dump reply, walked by ParseDumpDatagram (node/probe/sock_diag.cc) exactly
// as SockDiag::Dump walks what recv returns: message headers, the dump's
// sequence and port filter, NLMSG_DONE / NLMSG_ERROR, and ParseDiagMessage
// on each inet_diag_msg and its attributes (struct tcp_info).
//
//   input = the datagram; the dump it answers is the one its first message
//   names, so that message is never filtered out
#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "node/common/log.h"
#include "node/probe/sock_diag.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  // The receive buffer is aligned for nlmsghdr; so is this copy.
  std::vector<uint32_t> aligned((size + 3) / 4);
  if (size) std::memcpy(aligned.data(), data, size);
  nlmsghdr first{};
  std::memcpy(&first, data, std::min(size, sizeof first));

  std::vector<DiagSocket> sockets;
  DumpProgress progress;
  Status s =
      ParseDumpDatagram(std::span<const char>(reinterpret_cast<const char*>(aligned.data()), size),
                        first.nlmsg_seq, first.nlmsg_pid, 4026531840u, &sockets, &progress);
  if (!s.ok() && (!progress.done || progress.error <= 0)) __builtin_trap();
  for (const DiagSocket& d : sockets) (void)TcpStateName(d.state);
  return 0;
}
