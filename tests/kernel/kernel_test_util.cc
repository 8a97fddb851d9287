// The root check kernel tests share.
#include "tests/kernel/kernel_test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <string_view>

namespace flowmesh::testing {

void RequireRoot() {
  if (geteuid() == 0) return;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && (std::string_view(ci) == "true" || std::string_view(ci) == "1")) {
    FAIL() << "this kernel test needs root (real sockets, BPF, network namespaces) and CI=" << ci
           << " says every test must run here: run kernel_tests as root";
  }
  GTEST_SKIP() << "needs root (real sockets, BPF, network namespaces); run kernel_tests with "
                  "sudo to include it";
}

}  // namespace flowmesh::testing
