// The conntrack parser: one datagram of nfnetlink_conntrack messages (an
// event, or a part of a dump reply), walked as ConntrackReader walks what
// recv returns (each message must fit in what is left) and handed to
// ParseCtMessage (node/nat/conntrack_parse.cc) one message at a time.
//
//   input = the datagram
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "node/common/log.h"
#include "node/nat/conntrack.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  flowmesh::log::SetLevel(flowmesh::log::Level::Error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowmesh;
  // The receive buffer is aligned for nlmsghdr; so is this copy.
  std::vector<uint32_t> aligned((size + 3) / 4);
  if (size) std::memcpy(aligned.data(), data, size);
  const auto* base = reinterpret_cast<const uint8_t*>(aligned.data());
  size_t offset = 0;
  while (size - offset >= sizeof(nlmsghdr)) {
    const auto* m = reinterpret_cast<const nlmsghdr*>(base + offset);
    if (m->nlmsg_len < sizeof(nlmsghdr) || m->nlmsg_len > size - offset) break;
    CtEvent ev;
    Status s = ParseCtMessage(m, 4026531840u, &ev);
    if (s.ok()) {
      // A parsed entry is whole: every address of the message's family (an
      // IPv6 message may carry v4-mapped addresses, which IpAddr folds to v4).
      const uint8_t family = base[offset + NLMSG_HDRLEN];  // nfgenmsg.nfgen_family
      for (const Endpoint* e : {&ev.entry.original.src, &ev.entry.original.dst,
                                &ev.entry.reply.src, &ev.entry.reply.dst}) {
        const uint16_t f = e->addr.family;
        if (f != family && !(family == AF_INET6 && f == AF_INET)) __builtin_trap();
      }
      (void)ev.entry.translated();
    }
    // The last message's padding may run past the datagram (mnl_nlmsg_next
    // leaves a negative length then, which ends the walk).
    const size_t step = NLMSG_ALIGN(m->nlmsg_len);
    if (step >= size - offset) break;
    offset += step;
  }
  return 0;
}
