#!/usr/bin/env bash
# Configures and builds flowmesh into build/ (and, with --asan, the unit tests
# under AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

if [ "${1:-}" = "--asan" ]; then
  cmake -S . -B build-asan -G Ninja -DFLOWMESH_SANITIZE=ON -DFLOWMESH_BENCH=OFF >/dev/null
  ninja -C build-asan -j "$jobs" unit_tests
  exit 0
fi
extra=()
[ -x build-asan/tests/unit/unit_tests ] && extra+=(-DFLOWMESH_ASAN_UNIT_TESTS="$root/build-asan/tests/unit/unit_tests")
cmake -S . -B build -G Ninja "${extra[@]}" >/dev/null
ninja -C build -j "$jobs"
