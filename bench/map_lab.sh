#!/usr/bin/env bash
# The map on the real lab (issue 16): the nine hosts of tests/integration/
# topology.sh (prefix fmb, so a demo or the lab tests may be up beside it),
# real traffic, then `meshctl map --since 10m --format json` on one host
# timed R times, interleaved with as many `meshctl status` calls (meshctl's
# start-up and one control round trip, which every map pays too). Prints the
# median and p99 of both and of their difference, and each member's answer
# size on the wire (members[].answer_bytes of the map's JSON).
#
# Usage (as root): bench/map_lab.sh [--rounds R] [--host NAME] [--keep]
#   --rounds R   timed maps (default 50, 1..10000)
#   --host NAME  the asking host (default client-1)
#   --keep       keep the lab and its work dir
# Binaries: MESHD, MESHCTL (env), default build/node/daemon/meshd and
# build/cli/meshctl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
topology=$root/tests/integration/topology.sh
rounds=50
host=client-1
keep=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
die() { echo "map_lab: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [ $# -ge 2 ] || usage; rounds=$2; shift 2 ;;
    --host) [ $# -ge 2 ] || usage; host=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
[[ $rounds =~ ^[0-9]+$ ]] && [ "$rounds" -ge 1 ] && [ "$rounds" -le 10000 ] || die "--rounds must be 1..10000"
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces)"

export TOPOLOGY_PREFIX=fmb
export MESHD=${MESHD:-$root/build/node/daemon/meshd} MESHCTL=${MESHCTL:-$root/build/cli/meshctl}
work=$(mktemp -d /tmp/fm-mapbench-XXXXXX)
cleanup() {
  [ $keep -eq 1 ] && { echo "map_lab: kept: bash $topology down $work"; return; }
  bash "$topology" down "$work" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

bash "$topology" up "$work" >/dev/null
bash "$topology" traffic "$work" 20 >/dev/null
sleep 3  # a flush interval and the endpoint gossip

ctl() { bash "$topology" ctl "$work" "$host" "$@"; }
ctl map --since 10m --format json >"$work/map.json"
python3 - "$work/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s = m["summary"]
print(f"map_lab: {s['members']} members, {s['answered']} answered, {s['workloads']} workloads, "
      f"{s['external']} external, {s['balancers']} balancers, {s['edges']} edges")
sizes = sorted(x["answer_bytes"] for x in m["members"] if x["answered"])
print(f"map_lab: answer bytes per member: min {sizes[0]}, median {sizes[len(sizes)//2]}, "
      f"max {sizes[-1]}, all {sum(sizes)}")
PY

now_ms() { date +%s%N | awk '{ printf "%.3f\n", $1 / 1e6 }'; }
: >"$work/map.ms"; : >"$work/status.ms"
for _ in $(seq "$rounds"); do
  t0=$(now_ms); ctl map --since 10m --format json >/dev/null; t1=$(now_ms)
  ctl status >/dev/null; t2=$(now_ms)
  echo "$t0 $t1" | awk '{ print $2 - $1 }' >>"$work/map.ms"
  echo "$t1 $t2" | awk '{ print $2 - $1 }' >>"$work/status.ms"
done
python3 - "$work/map.ms" "$work/status.ms" "$rounds" "$host" <<'PY'
import sys
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
m = [float(x) for x in open(sys.argv[1])]
s = [float(x) for x in open(sys.argv[2])]
d = [a - b for a, b in zip(m, s)]
print(f"map_lab: {sys.argv[3]} maps from {sys.argv[4]} (ms)   median     p99")
for name, v in (("meshctl map", m), ("meshctl status", s), ("map - status", d)):
    print(f"map_lab:   {name:<22} {q(v, .5):8.1f} {q(v, .99):8.1f}")
PY
