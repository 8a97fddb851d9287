#!/usr/bin/env bash
# meshctl stays free of the data path (STYLE.md "Rooms with one job"): its
# link line names none of meshd's data-path libraries nor RocksDB, libbpf,
# libmnl or libelf, ldd shows none of them, and none of its objects depends
# on node/store/store.h, so a change there does not rebuild it.
# usage: check_meshctl_deps.sh NINJA BUILD_DIR
set -u
ninja=${1:?usage: check_meshctl_deps.sh NINJA BUILD_DIR}
build=${2:?usage: check_meshctl_deps.sh NINJA BUILD_DIR}
status=0
fail() { echo "FAIL: $*"; status=1; }

# 1. The link line. (ldd alone cannot tell: RocksDB is linked statically and
# --as-needed drops unused shared libraries, so a link line that drags the
# data path in can still give a clean ldd.)
link=$("$ninja" -C "$build" -t commands meshctl | grep -E -- "-o [^ ]*cli/meshctl( |$)")
[ -n "$link" ] || fail "no link command for meshctl in $build"
for lib in librocksdb libbpf libmnl libelf libflowmesh_probe libflowmesh_flow \
           libflowmesh_store libflowmesh_look libflowmesh_mesh libflowmesh_metrics \
           libflowmesh_control_server libflowmesh_daemon_lib libflowmesh_bpf; do
  if grep -q -- "$lib" <<<"$link"; then fail "meshctl's link line has $lib"; fi
done

# 2. What the dynamic loader will load.
deps=$(ldd "$build/cli/meshctl") || fail "ldd $build/cli/meshctl failed"
if grep -E "librocksdb|libbpf|libmnl|libelf" <<<"$deps"; then
  fail "ldd shows a data-path library"
fi

# 3. No change to store.h rebuilds meshctl: no object meshctl is linked from
# includes it, by the header dependencies the compiler reported (ninja's
# deps log). A dry run after a touch (ninja -n meshctl) cannot tell here: the
# CONFIGURE_DEPENDS globs make every dry run stop at "Re-running CMake".
objects() { "$ninja" -C "$build" -t inputs "$1" | grep -E '/CMakeFiles/.*\.o$'; }
# "$1": a target. Prints the headers of its objects; fails when an object's
# dependencies were never recorded (not built yet) or are out of date.
headers() {
  local deps
  deps=$("$ninja" -C "$build" -t deps $(objects "$1")) || return 1
  if grep -E '^[^ ].*: ' <<<"$deps" | grep -v '(VALID)$'; then return 1; fi
  grep -E '^ ' <<<"$deps"
}
store_h=node/store/store.h
meshctl_headers=$(headers meshctl) || fail "header dependencies of meshctl's objects are missing or stale: build meshctl first"
store_headers=$(headers flowmesh_store) || fail "header dependencies of flowmesh_store's objects are missing or stale"
# The check must be able to see a dependency: the store's own objects have it.
grep -q "$store_h" <<<"$store_headers" || fail "no object of flowmesh_store includes $store_h; the check cannot see dependencies"
if grep -q "$store_h" <<<"$meshctl_headers"; then
  fail "$store_h is a dependency of meshctl; these objects include it:"
  "$ninja" -C "$build" -t deps $(objects meshctl) | grep -E "^[^ ]|$store_h" |
    grep -B1 "$store_h" | grep -E '^[^ -]' | sed 's/: #deps.*//'
fi

# Nor any header of RocksDB, libbpf, libmnl, libelf or the BPF skeleton.
library_headers=$(grep -E "/rocksdb/|/bpf/libbpf|/bpf/bpf\.h|libmnl|/gelf\.h|/libelf\.h|\.skel\.h" \
  <<<"$meshctl_headers" | sort -u)
if [ -n "$library_headers" ]; then
  fail "meshctl's objects include data-path library headers, among them:"
  head -5 <<<"$library_headers"
fi

[ $status -eq 0 ] && echo "ok: meshctl links no data-path library, and store.h does not rebuild it"
exit $status
