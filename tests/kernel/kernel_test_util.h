// Shared helpers for kernel tests: the root check every such test starts with.
#pragma once

#include <gtest/gtest.h>

namespace flowmesh::testing {

// Skips the current test with a message when not running as root; under
// CI=true (where every tier must run) it fails instead. Use FM_REQUIRE_ROOT().
void RequireRoot();

}  // namespace flowmesh::testing

// First statement of a kernel test: returns from it after RequireRoot skipped
// or failed it.
#define FM_REQUIRE_ROOT()                                                           \
  do {                                                                              \
    ::flowmesh::testing::RequireRoot();                                             \
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFatalFailure()) return; \
  } while (0)
