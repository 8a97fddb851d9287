#!/usr/bin/env bash
# Runs the libFuzzer harnesses of tests/fuzz (built by scripts/build.sh --fuzz)
# for a bounded time each, from their seed corpora in tests/fuzz/corpus/, and
# fails if any crashes. New inputs go to a scratch folder, so a run leaves the
# repository as it was; with --grow they are merged (-merge=1, only those that
# add coverage) into tests/fuzz/corpus/<name>/ to be committed.
#
#   scripts/fuzz.sh [--grow] [--build DIR] [SECONDS] [NAME...]
#   scripts/fuzz.sh --seeds [--build DIR]   rewrites the seeds from real
#                                           messages (tests/fuzz/make_seeds.cc)
#
# SECONDS per harness (default 20); NAMEs as in tests/fuzz (mesh_stream, ...),
# default all. Crashing inputs are kept in DIR/artifacts/<name>/; replay one
# with DIR/<name>_fuzz FILE. Prints one line per harness: executions per
# second and the coverage libFuzzer reached (cov: edges, ft: features).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

grow=0
seeds=0
dir="$root/build-fuzz/tests/fuzz"
seconds=20
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --grow) grow=1 ;;
    --seeds) seeds=1 ;;
    --build) dir="$2"; shift ;;
    [0-9]*) seconds="$1" ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) names+=("$1") ;;
  esac
  shift
done
if [ "$seeds" -eq 1 ]; then
  exec "$dir/fuzz_make_seeds" "$root" "$root/tests/fuzz/corpus"
fi
if [ ${#names[@]} -eq 0 ]; then
  for bin in "$dir"/*_fuzz; do
    [ -x "$bin" ] && names+=("$(basename "$bin" _fuzz)")
  done
fi
if [ ${#names[@]} -eq 0 ]; then
  echo "fuzz: no harnesses in $dir; build them with scripts/build.sh --fuzz" >&2
  exit 1
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

failed=()
for name in "${names[@]}"; do
  bin="$dir/${name}_fuzz"
  corpus="$root/tests/fuzz/corpus/$name"
  [ -x "$bin" ] || { echo "fuzz: $bin is missing" >&2; failed+=("$name"); continue; }
  mkdir -p "$scratch/$name" "$dir/artifacts/$name" "$corpus"
  log="$scratch/$name.log"
  # -timeout: one input running 10 s is a hang, and fails like a crash.
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/$name/" "$scratch/$name" "$corpus" >"$log" 2>&1; then
    echo "fuzz: $name FAILED; the input is in $dir/artifacts/$name/" >&2
    grep -v '^#' "$log" | tail -60 >&2
    failed+=("$name")
    continue
  fi
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$done_line")
  ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$done_line")
  execs=$(sed -E 's/^#([0-9]+).*/\1/' <<<"$done_line")
  rate=$(sed -E 's/.* exec\/s: ([0-9]+).*/\1/' <<<"$done_line")
  printf 'fuzz: %-14s %10s runs %8s exec/s  cov: %-6s ft: %s\n' "$name" "$execs" "$rate" "$cov" "$ft"
  if [ "$grow" -eq 1 ]; then
    before=$(find "$corpus" -type f | wc -l)
    "$bin" -merge=1 "$corpus" "$scratch/$name" >"$scratch/$name.merge.log" 2>&1
    echo "fuzz: $name corpus $before -> $(find "$corpus" -type f | wc -l) inputs"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed or missing: ${failed[*]}" >&2
  exit 1
fi
