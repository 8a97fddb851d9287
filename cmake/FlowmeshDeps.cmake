# Finds every library flowmesh uses, all from Debian's packages
# (scripts/setup.sh installs them). Each becomes an imported target.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.0)
pkg_check_modules(LIBMNL REQUIRED IMPORTED_TARGET libmnl)
find_package(CapnProto REQUIRED)
find_package(RocksDB REQUIRED)
find_package(CLI11 REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)

find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(flowmesh_asio INTERFACE)
target_include_directories(flowmesh_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
# ASIO_DISABLE_STD_ALIGNED_ALLOC: Asio picks its allocator by include order,
# so translation units can disagree and ASan reports alloc-dealloc
# mismatches (chriskohlhoff/asio#1139). One choice for every user.
target_compile_definitions(flowmesh_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED
  ASIO_DISABLE_STD_ALIGNED_ALLOC)
target_link_libraries(flowmesh_asio INTERFACE Threads::Threads)
