#!/usr/bin/env bash
# meshd started on a busy host: N idle pooled connections open and a churn
# running at full rate in a namespace of its own, then meshd started in it
# (--netns self). Prints how long the start-up snapshot took and what
# `meshctl status` counted: events, lost, and how many were held in memory
# while meshd started (held_at_start, held_peak_bytes).
#
#   bash bench/startup_under_churn.sh [--idle N] [--meshd PATH] [--ring SIZE]
#
# Root (a network namespace). Traffic stays on the namespace's loopback and
# stops after 8 s.
set -euo pipefail

idle=10000
build=${BUILD_DIR:-build}
meshd=$build/node/daemon/meshd
meshctl=$build/cli/meshctl
ring=4M
while [ $# -gt 0 ]; do
  case $1 in
    --idle) idle=$2; shift 2 ;;
    --meshd) meshd=$2; shift 2 ;;
    --ring) ring=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown flag $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "needs root (a network namespace)" >&2; exit 2; }

ns=fm-startup-bench
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del $ns 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns del $ns 2>/dev/null || true
ip netns add $ns
ip netns exec $ns ip link set lo up
ulimit -n "$(ulimit -Hn)"
pool=$(dirname "$0")/../tests/tools/pool.py
# The idle connections in parts a process can hold (each end is a file),
# a server per part sharing the port (SO_REUSEPORT), as bench_env.IdlePool.
per=$(( ($(ulimit -n) - 100) * 3 / 4 ))
parts=$(( idle > 0 ? (idle + per - 1) / per : 1 ))
for i in $(seq 0 $((parts - 1))); do
  ip netns exec $ns python3 "$pool" serve --listen 127.0.0.1:5432 --name fm-bench-db \
    > "$tmp/serve$i.log" 2>&1 &
  pids+=($!)
done
sleep 1
for i in $(seq 0 $((parts - 1))); do
  [ "$idle" -gt 0 ] || break
  count=$(( idle / parts + (i < idle % parts ? 1 : 0) ))
  ip netns exec $ns python3 "$pool" clients --connect 127.0.0.1:5432 --count "$count" \
    --source-base "127.1.$i.1" --sources 16 --quiet --name fm-bench-app > "$tmp/clients$i.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 120); do grep -q ready "$tmp/clients$i.log" && break; sleep 1; done
  grep -q ready "$tmp/clients$i.log" || { cat "$tmp/clients$i.log"; exit 1; }
done
ip netns exec $ns "$build/bench/churn" --duration 8 --threads 2 --concurrency 16 --addrs 1 \
  --port 18473 > "$tmp/churn.json" 2>&1 &
pids+=($!)
sleep 2
ip netns exec $ns "$meshd" --netns self --data-dir "$tmp/data" --log-level info \
  --node-name startup-bench --control-socket "$tmp/meshd.sock" --ring-buffer-size "$ring" \
  > "$tmp/meshd.log" 2>&1 &
meshd_pid=$!
pids+=($meshd_pid)
sleep 5
echo "== meshd started under churn with $idle idle connections ($((2 * idle)) sockets), ring $ring"
grep -E "attached|seeded|ready|held|caught up" "$tmp/meshd.log" | cut -d' ' -f1,4- || true
"$meshctl" --socket "$tmp/meshd.sock" status | grep -E "^events|^lost|held_|lost_ringbuf|ring_high" || true
