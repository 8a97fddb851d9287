#!/usr/bin/env bash
# Captures real conntrack messages for tests/unit/testdata/conntrack_messages.txt:
# two network namespaces on a veth (client c, server s), nftables rules in c
# (DNAT of a VIP in the output hook, IPv4 and IPv6, and an SNAT), real TCP
# connections through them, and tests/tools/conntrack_capture (built in
# build/tests/kernel) listening in c. Needs root; leaves nothing behind.
#
#   tests/tools/conntrack_capture.sh [BUILD_DIR] > messages.txt
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
capture="${1:-$root/build}/tests/kernel/conntrack_capture"
p="fmctcap$$"
c="$p-c" s="$p-s"

cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
  ip netns del "$c" 2>/dev/null || true
  ip netns del "$s" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$c"
ip netns add "$s"
ip link add "${p}c0" netns "$c" type veth peer name "${p}s0" netns "$s"
ip -n "$c" link set lo up
ip -n "$s" link set lo up
ip -n "$c" addr add 10.97.0.1/24 dev "${p}c0"
ip -n "$c" addr add 10.97.0.11/32 dev "${p}c0"
ip -n "$c" -6 addr add fd97::1/64 dev "${p}c0" nodad
ip -n "$s" addr add 10.97.0.2/24 dev "${p}s0"
ip -n "$s" -6 addr add fd97::2/64 dev "${p}s0" nodad
ip -n "$c" link set "${p}c0" up
ip -n "$s" link set "${p}s0" up
ip -n "$c" route add 10.97.250.0/24 dev "${p}c0"
ip -n "$c" -6 route add fd97:250::/64 dev "${p}c0"
# Short TCP timeouts so that closed connections are destroyed (and their
# DESTROY events sent) within seconds rather than after TIME_WAIT's 120 s.
ip netns exec "$c" sysctl -qw net.netfilter.nf_conntrack_acct=1  # CTA_COUNTERS_* in the messages
for t in time_wait close fin_wait close_wait last_ack; do
  ip netns exec "$c" sysctl -qw "net.netfilter.nf_conntrack_tcp_timeout_$t=1"
done

ip netns exec "$c" nft -f - <<'EOF'
table ip fmcap {
  chain out { type nat hook output priority -100; ip daddr 10.97.250.1 tcp dport 80 dnat to 10.97.0.2:8080; }
  chain post { type nat hook postrouting priority 100; ip daddr 10.97.0.2 tcp dport 8081 snat to 10.97.0.11; }
}
table ip6 fmcap6 {
  chain out { type nat hook output priority -100; ip6 daddr fd97:250::1 tcp dport 80 dnat to [fd97::2]:8080; }
}
EOF

# The server: accepts on [::]:8080 and [::]:8081 (dual stack), reads to EOF.
ip netns exec "$s" python3 - <<'EOF' &
import socket, threading
def serve(port):
    l = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    l.bind(("::", port)); l.listen(16)
    while True:
        a, _ = l.accept()
        a.sendall(b"hi"); a.recv(16); a.close()
for port in (8080, 8081):
    threading.Thread(target=serve, args=(port,), daemon=True).start()
threading.Event().wait(30)
EOF
server=$!
sleep 1

ip netns exec "$c" "$capture" 5 &
cap=$!
sleep 1
# DNAT v4, DNAT v6, SNAT only, and one held open across the dump.
ip netns exec "$c" python3 - <<'EOF'
import socket, time
def talk(family, addr, done=True):
    s = socket.socket(family, socket.SOCK_STREAM); s.connect(addr)
    s.recv(2)
    if done: s.sendall(b"x")  # the server closes on it
    return s
for fam, addr in ((socket.AF_INET, ("10.97.250.1", 80)), (socket.AF_INET6, ("fd97:250::1", 80)),
                  (socket.AF_INET, ("10.97.0.2", 8081))):
    talk(fam, addr).close()
held = talk(socket.AF_INET, ("10.97.250.1", 80), done=False)
time.sleep(7)
EOF
wait "$cap"
echo "# kernel $(uname -r), nftables $(nft --version | awk '{print $2}'), captured $(date -u +%F)" >&2
