#!/usr/bin/env bash
# The multi-host lab on one machine (DESIGN.md "The lab"): each host is a
# network namespace with one veth into a bridge that lives in a namespace of
# its own; addresses 10.213.0.<i>/16, no route out. Lab traffic can reach
# only the lab's own addresses.
#
#   lab.sh up PREFIX N    create hosts PREFIX-1 .. PREFIX-N (10.213.0.1 ..)
#   lab.sh add PREFIX I   add host PREFIX-I (10.213.0.<I>) to a lab that is up
#   lab.sh down PREFIX    remove them (and PREFIX-<I>c, a host's container) and the bridge
#   lab.sh addr I         print host I's address
#
# Run a command on a host with: ip netns exec PREFIX-I COMMAND
set -euo pipefail

usage() { sed -n 2,13p "$0" >&2; exit 2; }

addr() { echo "10.213.0.$1"; }

add() {
  local prefix=$1 i=$2 br="$1-br" host="$1-$2"
  [ "$i" -ge 1 ] && [ "$i" -le 250 ] || { echo "lab.sh: I must be 1..250" >&2; exit 2; }
  ip netns list | awk '{print $1}' | grep -qx "$br" || { echo "lab.sh: no lab $prefix is up" >&2; exit 1; }
  ip netns add "$host"
  # veth names are per-namespace; create both ends in the host, move one.
  ip -n "$host" link add eth0 type veth peer name "p$i"
  ip -n "$host" link set "p$i" netns "$br"
  ip -n "$br" link set "p$i" master br0 up
  ip -n "$host" addr add "$(addr "$i")/16" dev eth0
  ip -n "$host" link set eth0 up
  ip -n "$host" link set lo up
}

up() {
  local prefix=$1 n=$2 br="$1-br"
  [ "$n" -ge 1 ] && [ "$n" -le 250 ] || { echo "lab.sh: N must be 1..250" >&2; exit 2; }
  down "$prefix" 2>/dev/null || true
  ip netns add "$br"
  ip -n "$br" link add br0 type bridge
  ip -n "$br" link set br0 up
  ip -n "$br" link set lo up
  for i in $(seq 1 "$n"); do add "$prefix" "$i"; done
}

down() {
  local prefix=$1
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$prefix-([0-9]+c?|br)$" || true); do
    # Anything still running in the namespace goes with it.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
}

[ $# -ge 1 ] || usage
case "$1" in
  up) [ $# -eq 3 ] || usage; up "$2" "$3" ;;
  add) [ $# -eq 3 ] || usage; add "$2" "$3" ;;
  down) [ $# -eq 2 ] || usage; down "$2" ;;
  addr) [ $# -eq 2 ] || usage; addr "$2" ;;
  *) usage ;;
esac
