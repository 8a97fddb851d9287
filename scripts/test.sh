#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, and runs
# every test (unit, unit under ASan+UBSan, the fuzz harnesses for a bounded
# time, kernel, lab, vagrant validate) through ctest.
# Kernel, lab and package tests need root; without it they skip (setup.sh
# only checks the packages then), and under CI=true a skipped test is a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
bash scripts/build.sh --asan
bash scripts/build.sh --fuzz
bash scripts/build.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root: the unit tier (also under ASan+UBSan), the fuzz harnesses and every" \
    "test that needs no root run; the kernel, lab and package tests that need root (BPF," \
    "namespaces, dpkg) skip, each saying so. Every tier: sudo bash scripts/test.sh" >&2
  if [ "${CI:-}" = "true" ]; then echo "test: CI=true: those skips count as failures" >&2; fi
fi
cd build
# One test per core: the kernel, lab and package tests are RUN_SERIAL (real
# sockets, namespaces, dpkg: ctest runs each alone); the rest share nothing.
ctest --output-on-failure --timeout 300 --parallel "$(nproc)" "$@"
