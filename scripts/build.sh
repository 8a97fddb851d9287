#!/usr/bin/env bash
# Configures and builds flowmesh into build/ (and, with --asan, the unit tests
# under AddressSanitizer and UndefinedBehaviorSanitizer into build-asan/; with
# --fuzz, the libFuzzer harnesses of tests/fuzz with clang into build-fuzz/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=$(nproc)

# ccache, when present, with its cache outside the clone: a fresh clone on a
# machine that has built flowmesh before recompiles almost nothing.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_DIR="${CCACHE_DIR:-$( [ -w /var/cache ] && echo /var/cache/flowmesh-ccache || echo "$HOME/.cache/flowmesh-ccache")}"
  # Clones live in different folders; hash relative paths so they share hits.
  export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

if [ "${1:-}" = "--asan" ]; then
  # unit_tests: every unit_<module> binary and the libraries they link, no more.
  cmake -S . -B build-asan -G Ninja "${launcher[@]}" -DFLOWMESH_SANITIZE=ON -DFLOWMESH_BENCH=OFF >/dev/null
  ninja -C build-asan -j "$jobs" unit_tests
  exit 0
fi
if [ "${1:-}" = "--fuzz" ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja "${launcher[@]}" -DFLOWMESH_FUZZ=ON \
    -DFLOWMESH_BENCH=OFF >/dev/null
  ninja -C build-fuzz -j "$jobs"
  exit 0
fi
extra=()
[ -d build-asan/tests/unit ] && extra+=(-DFLOWMESH_ASAN_UNIT_DIR="$root/build-asan/tests/unit")
[ -d build-fuzz/tests/fuzz ] && extra+=(-DFLOWMESH_FUZZ_DIR="$root/build-fuzz/tests/fuzz")
cmake -S . -B build -G Ninja "${launcher[@]}" "${extra[@]}" >/dev/null
ninja -C build -j "$jobs"
