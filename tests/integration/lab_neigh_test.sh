#!/usr/bin/env bash
# Checks lab.sh's neighbour entries (issue 17) on every path that makes or
# removes a host: up, add, del and add again, down; that lab traffic needs no
# ARP; that a lab past the kernel's gc_thresh3 gets all its entries without a
# refusal; and that nothing lands outside the lab's namespaces. As root
# (prefix fmn); skips without root unless CI=true.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lab=$here/lab.sh
p=fmn
fails=0

if [ "$(id -u)" -ne 0 ]; then
  [ "${CI:-}" != "true" ] || { echo "lab_neigh_test: FAILED: needs root under CI=true" >&2; exit 1; }
  echo "lab_neigh_test: skipped: needs root (network namespaces)"; exit 0
fi
if ip netns list | awk '{print $1}' | grep -qE "^$p-([0-9]+|br)$"; then
  echo "lab_neigh_test: FAILED: namespaces $p-* exist (another run?); remove them: bash $lab down $p" >&2
  exit 1
fi
trap 'bash "$lab" down "$p" >/dev/null 2>&1 || true' EXIT

check() {  # WHAT EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok   $1"; else echo "FAIL $1: expected '$2', got '$3'" >&2; fails=$((fails + 1)); fi
}
# Host I's entries as "ADDR MAC STATE" lines, sorted.
entries() { ip -n "$p-$1" -4 neigh show dev eth0 | awk '{print $1, $3, $NF}' | sort; }
# What host I must hold: a permanent entry for each index given but its own.
expect() {
  local i=$1 j; shift
  for j in "$@"; do [ "$j" = "$i" ] || echo "$(bash "$lab" addr "$j") $(bash "$lab" mac "$j") PERMANENT"; done | sort
}
root_before=$(ip -4 neigh show | grep -c '^10\.213\.' || true)
table_fulls() { ip -s ntable show name arp_cache | awk '/table_fulls/ {print $2; exit}'; }

bash "$lab" up "$p" 4
for i in 1 2 3 4; do check "up: host $i knows the other three" "$(expect "$i" 1 2 3 4)" "$(entries "$i")"; done
check "up: no IPv6 on the lab's link" 1 "$(ip netns exec "$p-1" sysctl -n net.ipv6.conf.eth0.disable_ipv6)"
check "up: the bridge's namespace holds no entries" "" "$(ip -n "$p-br" neigh show)"

# Real traffic between two hosts; afterwards still only the permanent entries.
ip netns exec "$p-4" setsid python3 -m http.server 8000 --bind 10.213.0.4 --directory /var/empty \
  </dev/null >/dev/null 2>&1 &
disown
code=000
for _ in $(seq 50); do
  code=$(ip netns exec "$p-1" curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    http://10.213.0.4:8000/ 2>/dev/null) || true
  [ "$code" = 000 ] || break
  sleep 0.1
done
check "traffic: host 1 reaches host 4" 404 "$code"
check "traffic: no ARP-learned entry on host 1" "$(expect 1 1 2 3 4)" "$(entries 1)"
check "traffic: none on host 4" "$(expect 4 1 2 3 4)" "$(entries 4)"

bash "$lab" add "$p" 6
check "add: the new host knows the others" "$(expect 6 1 2 3 4)" "$(entries 6)"
for i in 1 2 3 4; do check "add: host $i knows the new one" "$(expect "$i" 1 2 3 4 6)" "$(entries "$i")"; done
if bash "$lab" add "$p" 6 2>/dev/null; then check "add: a host that exists is refused" refused accepted; fi

# A stale entry (as a host recreated with another MAC would leave) goes with del,
# and add writes the right one again.
ip -n "$p-1" neigh replace 10.213.0.6 lladdr 02:00:00:00:00:99 dev eth0 nud permanent
bash "$lab" del "$p" 6
for i in 1 2 3 4; do check "del: host $i forgot it" "$(expect "$i" 1 2 3 4)" "$(entries "$i")"; done
bash "$lab" add "$p" 6
check "add again: host 1's entry is the new host's" "$(expect 1 1 2 3 4 6)" "$(entries 1)"
bash "$lab" down "$p"
check "down: no namespaces left" "" "$(ip netns list | awk '{print $1}' | grep -E "^$p-" || true)"

LAB_NEIGH=dynamic bash "$lab" up "$p" 3
check "LAB_NEIGH=dynamic: no entries" "" "$(entries 1)"
bash "$lab" down "$p"

# 40 hosts: 1,560 permanent entries, over gc_thresh3 (1024 unless the machine
# says otherwise) on one kernel-wide table, all accepted.
fulls=$(table_fulls)
bash "$lab" up "$p" 40
total=0
for i in $(seq 40); do total=$((total + $(entries "$i" | grep -c PERMANENT))); done
check "40 hosts: every host knows the other 39" 1560 "$total"
check "40 hosts: no table-full refusal" "$fulls" "$(table_fulls)"
bash "$lab" down "$p"
check "nothing in the root namespace's table" "$root_before" "$(ip -4 neigh show | grep -c '^10\.213\.' || true)"

[ "$fails" -eq 0 ] || { echo "lab_neigh_test: $fails checks FAILED" >&2; exit 1; }
echo "lab_neigh_test: all passed"
