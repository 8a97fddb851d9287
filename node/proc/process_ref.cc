// ProcessRef's comm setter.
#include "node/proc/process_ref.h"

#include <algorithm>

namespace flowmesh {

void ProcessRef::set_comm(std::string_view c) {
  std::memset(comm, 0, sizeof comm);
  std::memcpy(comm, c.data(), std::min(c.size(), sizeof comm - 1));
}

}  // namespace flowmesh
