#!/usr/bin/env bash
# The test command: installs what is missing, builds everything, and runs
# every test (unit, unit under ASan+UBSan, the fuzz harnesses for a bounded
# time, kernel, lab, vagrant validate) through ctest.
# Kernel and lab tests need root; under CI=true a skipped test is a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

bash scripts/setup.sh
bash scripts/build.sh --asan
bash scripts/build.sh --fuzz
bash scripts/build.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root: kernel and lab tests will skip (they need root for BPF and namespaces)" >&2
fi
cd build
ctest --output-on-failure --timeout 300 "$@"
