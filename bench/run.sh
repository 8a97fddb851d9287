#!/bin/sh
# Builds churn, meshd and meshctl (RelWithDebInfo, no sanitizers) and runs the
# interleaved tracer benchmark; arguments go to tracer_bench.py (e.g. --quick).
# BUILD_DIR picks the build tree (default: <repo>/build-bench, its own, because
# this forces the build type and turns sanitizers off).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$repo/build-bench}

mkdir -p "$build"
cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFLOWMESH_SANITIZE=OFF -DFLOWMESH_BENCH=ON >"$build/cmake-configure.log" 2>&1 || {
  cat "$build/cmake-configure.log" >&2
  exit 1
}
if ! ninja -C "$build" churn meshd meshctl; then
  echo "run.sh: build failed; without meshd run" \
    "python3 bench/tracer_bench.py --churn $build/bench/churn --arms none,tcplife" >&2
  exit 1
fi

find_exe() { find "$build" -type f -name "$1" -perm -u+x -not -path '*/CMakeFiles/*' | head -n 1; }
exec python3 "$repo/bench/tracer_bench.py" --churn "$build/bench/churn" \
  --meshd "$(find_exe meshd)" --meshctl "$(find_exe meshctl)" "$@"
