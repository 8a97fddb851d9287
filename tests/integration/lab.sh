#!/usr/bin/env bash
# The multi-host lab on one machine (DESIGN.md "The lab"): each host is a
# network namespace with one veth into a bridge that lives in a namespace of
# its own; addresses 10.213.0.<i>/16, no route out. Lab traffic can reach
# only the lab's own addresses.
#
#   lab.sh up PREFIX N    create hosts PREFIX-1 .. PREFIX-N (10.213.0.1 ..)
#   lab.sh add PREFIX I   add host PREFIX-I (10.213.0.<I>) to a lab that is up
#   lab.sh del PREFIX I   remove host PREFIX-I (and PREFIX-<I>c, and what runs in them)
#   lab.sh down PREFIX    remove them (and PREFIX-<I>c, a host's container) and the bridge
#   lab.sh addr I         print host I's address
#   lab.sh mac I          print host I's MAC address (its eth0)
#
# Every host knows every other host on its bridge by a permanent neighbour
# entry (LAB_NEIGH=dynamic: by ARP instead, which fails past ~32 hosts); the
# lab's link carries no IPv6.
# Run a command on a host with: ip netns exec PREFIX-I COMMAND
set -euo pipefail

usage() { sed -n 2,17p "$0" >&2; exit 2; }
die() { echo "lab.sh: $1" >&2; exit "${2:-1}"; }

# The kernel's neighbour table is one for all namespaces, and its garbage
# collector starts refusing new entries at gc_thresh3 (1024): N hosts that all
# talk to each other need N*(N-1) entries, so past ~32 hosts ARP entries are
# evicted and refused, packets wait or drop, and the mesh flaps. Permanent
# entries are exempt from that limit, and only the lab's own namespaces get
# them: the machine's settings stay as they are.
neigh=${LAB_NEIGH:-permanent}
case "$neigh" in
  permanent|dynamic) ;;
  *) die "LAB_NEIGH must be permanent or dynamic, not '$neigh'" 2 ;;
esac

addr_fmt=10.213.0.%d
# Fixed per index (locally administered, the address's bytes), so a host
# recreated under the same index keeps its MAC and every entry naming it stays true.
mac_fmt=02:00:0a:d5:00:%02x
# shellcheck disable=SC2059  # the formats above
addr() { printf "$addr_fmt\n" "$1"; }
# shellcheck disable=SC2059
mac() { printf "$mac_fmt\n" "$1"; }

check_index() {
  if ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt 250 ]; then die "$2 must be 1..250" 2; fi
}
has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# Indexes of the hosts whose veth is in PREFIX's bridge, one per line.
members() { ip -n "$1-br" -o link show master br0 | sed -nE 's/^[0-9]+: p([0-9]+)@.*/\1/p'; }

# One permanent entry per index in INDEXES (but I's own) into host I, in one
# `ip -batch`: one exec per host, not one per entry (40,000 at 200 hosts).
neigh_into() {
  local prefix=$1 i=$2 j; shift 2
  [ "$neigh" = permanent ] || return 0
  # printf, not $(addr ...): a fork per line would cost more than the entries.
  for j in "$@"; do
    # shellcheck disable=SC2059
    [ "$j" = "$i" ] || printf "neigh replace $addr_fmt lladdr $mac_fmt dev eth0 nud permanent\n" "$j" "$j"
  done | ip -n "$prefix-$i" -batch - ||
    die "cannot install neighbour entries in $prefix-$i (ip -batch failed; see above)"
}

# Host I's namespace and veth, without neighbour entries.
create() {
  local prefix=$1 i=$2 br="$1-br" host="$1-$2"
  has_ns "$host" && die "host $host exists already (remove it first: lab.sh del $prefix $i)"
  ip netns add "$host"
  # veth names are per-namespace; create both ends in the host, move one.
  ip -n "$host" link add eth0 address "$(mac "$i")" type veth peer name "p$i"
  # No IPv6 on the lab's link (its addresses are IPv4): a link-local address
  # and its multicast reports put ~6 entries per host into the kernel's other
  # neighbour table (ndisc, also 1024 for every namespace), ~1,200 at 200 hosts.
  ip netns exec "$host" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
  ip -n "$host" link set "p$i" netns "$br"
  ip -n "$br" link set "p$i" master br0 up
  ip -n "$host" addr add "$(addr "$i")/16" dev eth0
  ip -n "$host" link set eth0 up
  ip -n "$host" link set lo up
}

add() {
  local prefix=$1 i=$2 j others
  check_index "$i" I
  has_ns "$prefix-br" || die "no lab $prefix is up"
  create "$prefix" "$i"
  others=$(members "$prefix" | grep -vx "$i" || true)
  # shellcheck disable=SC2086  # one index per word
  neigh_into "$prefix" "$i" $others
  [ "$neigh" = permanent ] || return 0
  # replace, not add: whatever the others held for this address is refreshed.
  for j in $others; do
    ip -n "$prefix-$j" neigh replace "$(addr "$i")" lladdr "$(mac "$i")" dev eth0 nud permanent
  done
}

del() {
  local prefix=$1 i=$2 host="$1-$2" j ns pid
  check_index "$i" I
  has_ns "$host" || die "no host $host"
  for ns in "$host" "${host}c"; do
    has_ns "$ns" || continue
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns"
  done
  # The others' entries for it go too: a stale permanent entry would outlive
  # any MAC a later host at this address has (add refreshes them anyway).
  has_ns "$prefix-br" || return 0
  for j in $(members "$prefix"); do
    ip -n "$prefix-$j" neigh del "$(addr "$i")" dev eth0 2>/dev/null || true
  done
}

up() {
  local prefix=$1 n=$2 br="$1-br" i all
  check_index "$n" N
  down "$prefix" 2>/dev/null || true
  ip netns add "$br"
  # The bridge and every port moved into it take this namespace's default.
  ip netns exec "$br" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  ip -n "$br" link add br0 type bridge
  ip -n "$br" link set br0 up
  ip -n "$br" link set lo up
  for i in $(seq 1 "$n"); do create "$prefix" "$i"; done
  all=$(seq 1 "$n")
  # shellcheck disable=SC2086  # one index per word
  for i in $all; do neigh_into "$prefix" "$i" $all; done
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
  del) [ $# -eq 3 ] || usage; del "$2" "$3" ;;
  down) [ $# -eq 2 ] || usage; down "$2" ;;
  addr) [ $# -eq 2 ] || usage; addr "$2" ;;
  mac) [ $# -eq 2 ] || usage; check_index "$2" I; mac "$2" ;;
  *) usage ;;
esac
