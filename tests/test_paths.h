// Where the tests find the data, binaries and scripts they use: absolute paths
// of this clone and build tree, compiled into test_paths.cc alone
// (flowmesh_test_paths in tests/CMakeLists.txt). A test file that spelled them
// itself would compile differently in every clone, and ccache would miss it.
#pragma once

namespace flowmesh::testing::paths {

extern const char* const kTestdata;  // tests/unit/testdata
extern const char* const kMeshd;
extern const char* const kMeshctl;
extern const char* const kLabSh;  // tests/integration/lab.sh
extern const char* const kTopologySh;
extern const char* const kPingPongPy;
extern const char* const kHostilePeerPy;
extern const char* const kLookLinesPy;  // tests/integration/look_lines.py
extern const char* const kPoolPy;  // tests/tools/pool.py
extern const char* const kUiBrowserPy;  // tests/integration/ui_browser_test.py
extern const char* const kArtifacts;    // where tests leave screenshots (build/test-artifacts)

}  // namespace flowmesh::testing::paths

#define FLOWMESH_TESTDATA (::flowmesh::testing::paths::kTestdata)
#define MESHD_BIN (::flowmesh::testing::paths::kMeshd)
#define MESHCTL_BIN (::flowmesh::testing::paths::kMeshctl)
#define LAB_SH (::flowmesh::testing::paths::kLabSh)
#define TOPOLOGY_SH (::flowmesh::testing::paths::kTopologySh)
#define PING_PONG_PY (::flowmesh::testing::paths::kPingPongPy)
#define HOSTILE_PEER_PY (::flowmesh::testing::paths::kHostilePeerPy)
#define LOOK_LINES_PY (::flowmesh::testing::paths::kLookLinesPy)
#define POOL_PY (::flowmesh::testing::paths::kPoolPy)
#define UI_BROWSER_PY (::flowmesh::testing::paths::kUiBrowserPy)
#define TEST_ARTIFACTS (::flowmesh::testing::paths::kArtifacts)
