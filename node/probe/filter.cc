// ProbeFilter, applied in user space by the poller (BPF applies its .rodata copy).
#include <algorithm>

#include "node/probe/probe.h"

namespace flowmesh {

bool ProbeFilter::Matches(const ConnKey& key) const {
  if (!RecordsNetns(key.netns)) return false;
  if (family != 0 && key.family() != family) return false;
  if (ports.empty()) return true;
  return std::find(ports.begin(), ports.end(), key.lport) != ports.end() ||
         (key.rport != 0 && std::find(ports.begin(), ports.end(), key.rport) != ports.end());
}

bool ProbeFilter::RecordsNetns(uint32_t inode) const {
  return netns.empty() || std::any_of(netns.begin(), netns.end(),
                                      [&](const NetnsRef& n) { return n.inode == inode; });
}

}  // namespace flowmesh
