// ProbeFilter, applied in user space by the poller (BPF applies its .rodata copy).
#include <algorithm>

#include "node/probe/probe.h"

namespace flowmesh {

bool ProbeFilter::Matches(const ConnKey& key) const {
  if (netns != 0 && key.netns != netns) return false;
  if (family != 0 && key.family() != family) return false;
  if (ports.empty()) return true;
  return std::find(ports.begin(), ports.end(), key.lport) != ports.end() ||
         (key.rport != 0 && std::find(ports.begin(), ports.end(), key.rport) != ports.end());
}

}  // namespace flowmesh
