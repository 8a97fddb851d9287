// Reading a file that holds a secret (the cluster key file, the web page's
// token file): a regular file no one but its owner can access, of bounded size.
#pragma once

#include <string>
#include <string_view>

#include "node/common/status.h"

namespace flowmesh {

// The whole file. Refuses, naming `what` and `path` and the fix: a file that
// cannot be opened, is not a regular file (a FIFO is refused, not waited on),
// is accessible to group or others (mode beyond 0600: "run `chmod 600 PATH`"),
// or is larger than `max_bytes` (`size_hint` says what it should look like).
Result<std::string> ReadSecretFile(const std::string& path, std::string_view what, size_t max_bytes,
                                   std::string_view size_hint);

}  // namespace flowmesh
