// The paths of tests/test_paths.h, from the FM_PATH_* definitions its
// flowmesh_test_paths library is compiled with; a binary links the one it needs.
#include "tests/test_paths.h"

namespace flowmesh::testing::paths {

#ifdef FM_PATH_TESTDATA
const char* const kTestdata = FM_PATH_TESTDATA;
#endif
#ifdef FM_PATH_MESHD
const char* const kMeshd = FM_PATH_MESHD;
const char* const kMeshctl = FM_PATH_MESHCTL;
#endif
#ifdef FM_PATH_POOL_PY
const char* const kPoolPy = FM_PATH_POOL_PY;
#endif
#ifdef FM_PATH_LAB_SH
const char* const kLabSh = FM_PATH_LAB_SH;
const char* const kTopologySh = FM_PATH_TOPOLOGY_SH;
const char* const kPingPongPy = FM_PATH_PING_PONG_PY;
const char* const kHostilePeerPy = FM_PATH_HOSTILE_PEER_PY;
#endif
#ifdef FM_PATH_LOOK_LINES_PY
const char* const kLookLinesPy = FM_PATH_LOOK_LINES_PY;
#endif
#ifdef FM_PATH_UI_BROWSER_PY
const char* const kUiBrowserPy = FM_PATH_UI_BROWSER_PY;
const char* const kArtifacts = FM_PATH_ARTIFACTS;
#endif

}  // namespace flowmesh::testing::paths
