#!/usr/bin/env bash
# Many meshd on one kernel (issue 17): N lab hosts (tests/integration/lab.sh,
# prefix fls, so the demo's and the lab tests' labs may be up beside it), each
# running its own meshd --netns self in one sealed mesh with a small store.
# Prints, per node: convergence after the last start; idle CPU, RSS, PSS and
# BPF map memory (fdinfo memlock) over --minutes; gossip bytes per second;
# meshctl look latency; the time until a kill -9'd member is dead on all the
# others and, restarted, alive again; and false positives (live members
# suspected or declared dead) over the whole run. Removes everything it made
# on exit, Ctrl-C included.
#
# Usage (as root): bench/lab_scale.sh [--hosts N] [--minutes M] [--rounds R]
#                                     [--neigh permanent|dynamic] [--prefix P]
#   --hosts N      meshd to run (default 200, 3..250); each takes ~35 MB RSS
#                  (~12 MB PSS) and, with the default BPF maps, ~50 MB of kernel memory
#   --minutes M    the idle window (default 1, 0.5..30)
#   --rounds R     looks timed from each of three nodes (default 20, 1..1000)
#   --neigh MODE   permanent (default): lab.sh's permanent neighbour entries;
#                  dynamic: ARP as before them, to show what they fix (past ~32
#                  hosts this overflows the kernel's one ARP table, which every
#                  namespace on the machine shares, other labs' included)
#   --prefix P     namespace prefix (default fls)
# Binaries: MESHD, MESHCTL (env), default build/node/daemon/meshd and build/cli/meshctl.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
lab=$root/tests/integration/lab.sh
hosts=200 minutes=1 rounds=20 neigh=permanent prefix=fls

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
die() { echo "lab_scale: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --hosts|--minutes|--rounds|--neigh|--prefix)
      [ $# -ge 2 ] || die "$1 needs a value (see --help)"
      declare "${1#--}=$2"; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
int_in() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
int_in "$hosts" 3 250 || die "--hosts must be 3..250, not '$hosts'"
if ! [[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v m="$minutes" 'BEGIN { exit !(m >= 0.5 && m <= 30) }'; then
  die "--minutes must be 0.5..30, not '$minutes'"
fi
int_in "$rounds" 1 1000 || die "--rounds must be 1..1000, not '$rounds'"
case "$neigh" in permanent|dynamic) ;; *) die "--neigh must be permanent or dynamic, not '$neigh'" ;; esac
[[ $prefix =~ ^[a-z][a-z0-9]{1,7}$ ]] || die "--prefix must be 2-8 lower-case letters and digits, not '$prefix'"
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and BPF): sudo bash $0"
meshd=$(realpath "${MESHD:-$root/build/node/daemon/meshd}")
meshctl=$(realpath "${MESHCTL:-$root/build/cli/meshctl}")
for b in "$meshd" "$meshctl"; do [ -x "$b" ] || die "$b is missing (build: ninja -C build meshd meshctl, or set MESHD/MESHCTL)"; done
command -v curl >/dev/null || die "curl is not installed (run: sudo bash $root/scripts/setup.sh)"
if ip netns list | awk '{print $1}' | grep -qE "^$prefix-([0-9]+|br)$"; then
  die "namespaces $prefix-* exist: another run, or one that was killed; remove them: bash $lab down $prefix"
fi

work=$(mktemp -d "/tmp/$prefix-scale.XXXXXX")
failed=1
measure=
cleanup() {
  trap - EXIT INT TERM
  [ -z "$measure" ] || kill "$measure" 2>/dev/null || true
  # SIGKILL (lab.sh down): the stores are thrown away, and 200 leaving
  # members would only gossip their leave to each other.
  bash "$lab" down "$prefix" || echo "lab_scale: lab.sh down $prefix failed; run it again" >&2
  if [ "$failed" -eq 1 ]; then
    rm -rf "$work"/h*/data
    echo "lab_scale: failed; meshd logs kept in $work/h*/meshd.log" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'failed=2; exit 130' INT TERM

echo "lab_scale: $hosts hosts (prefix $prefix, neighbour entries $neigh), meshd $meshd"
echo "lab_scale: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs," \
  "$(awk '/MemAvailable/ { printf "%.1f GiB available", $2 / 1048576 }' /proc/meminfo)"
t=$SECONDS
LAB_NEIGH=$neigh bash "$lab" up "$prefix" "$hosts"
echo "lab_scale: lab.sh up $prefix $hosts took $((SECONDS - t)) s"

(umask 077; head -c 32 /dev/urandom | base64 >"$work/cluster.key")
for i in $(seq "$hosts"); do
  d=$work/h$i; mkdir -p "$d/data"
  args=(--node-name "h$i" --netns self --bind "$(bash "$lab" addr "$i"):7946"
        --cluster-key-file "$work/cluster.key" --data-dir "$d/data" --control-socket "$d/meshd.sock"
        --retention-size 64M --cgroup-root off)
  [ "$i" -eq 1 ] || args+=(--join "$(bash "$lab" addr 1):7946")
  # setsid: a session of its own, so Ctrl-C reaches this script (which
  # cleans up) and not every meshd at once.
  printf '#!/bin/sh\n# Starts h%s'"'"'s meshd (bench/lab_scale.sh).\nip netns exec %q setsid %q' \
    "$i" "$prefix-$i" "$meshd" >"$d/start.sh"
  printf ' %q' "${args[@]}" >>"$d/start.sh"
  printf ' </dev/null >%q 2>&1 &\necho $! >%q\n' "$d/meshd.log" "$d/meshd.pid" >>"$d/start.sh"
done

# In the background and waited for: a signal to this script then runs the
# traps at once instead of after the measurement.
python3 "$here/lab_scale.py" --work "$work" --hosts "$hosts" --prefix "$prefix" \
  --meshctl "$meshctl" --minutes "$minutes" --rounds "$rounds" &
measure=$!
wait "$measure"
echo "lab_scale: done $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
failed=0
