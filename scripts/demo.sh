#!/usr/bin/env bash
# The main job: sets up and builds flowmesh, then starts the nine-host lab of
# tests/integration/topology.sh on this machine (network namespaces, one meshd
# each, in a sealed mesh):
#
#   client-1 --curl--> web-1 nginx :80 --> app-1, app-2 python3 :8000
#                                            --> cache-1 redis :6379
#                                            --> kv-1 memcached :11211
#   client-2 --curl, redis-cli--> Service VIPs 10.213.250.1:80, .2:6379 (DNAT
#            on client-2) --> web-1, cache-1; --curl--> lb-1 :8000 (balancer)
#            --> app-1, app-2
#   client-1 --curl--> docker-1 :9090 (published port) --> nginx in a container
#
# sends real requests through it and prints what meshctl on client-1 shows:
# the mesh's members, every endpoint in the mesh and the dependency tree of
# web-1's nginx. Needs root (BPF, network namespaces).
#
#   scripts/demo.sh [--keep] [--no-build]
#     --keep       leave the lab running and print how to explore it
#     --no-build   skip setup.sh and build.sh (use build/ as it is)
#
# Everything it starts is stopped on exit (unless --keep); lab traffic stays
# on the lab's own addresses (10.213.0.0/16 inside the namespaces).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

keep=0 build=1
for a in "$@"; do
  case "$a" in
    --keep) keep=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (meshd loads BPF programs, the lab makes network namespaces): sudo bash scripts/demo.sh" >&2
  exit 1
fi
if [ $build -eq 1 ]; then
  bash scripts/setup.sh
  bash scripts/build.sh >/dev/null
fi

topology=$root/tests/integration/topology.sh
work=$(mktemp -d /tmp/flowmesh-demo.XXXXXX)
cleanup() {
  local rc=$?
  if [ $keep -eq 1 ]; then
    [ $rc -eq 0 ] || echo "demo: failed; the lab (if it came up) is kept: bash $topology down" >&2
    return
  fi
  bash "$topology" down >/dev/null 2>&1 || true
  if [ $rc -eq 0 ]; then rm -rf "$work"
  else echo "demo: failed; logs kept in $work (each host's meshd.log and server.log)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ctl() { bash "$topology" ctl "$work" "$@"; }

echo "== starting the lab: 9 hosts, 9 meshd, nginx, 2 x python3, redis, memcached, nginx in a container, NAT rules;"
echo "   each server in a systemd unit's, a docker container's or a Kubernetes pod's cgroup"
bash "$topology" up "$work"

echo
echo "== 20 requests of each kind: client-1 to nginx on web-1, client-2 through the VIPs and the balancer, client-1 to docker-1's published port"
bash "$topology" traffic "$work" 20
sleep 3 # one flush interval (1 s) on every node, and the endpoint gossip

echo
echo "== meshctl peers   (on client-1: the mesh's members)"
ctl client-1 peers

echo
echo "== meshctl endpoints --all   (on client-1: every listening endpoint in the mesh)"
ctl client-1 endpoints --all

echo
echo "== meshctl look 10.213.0.2:80   (on client-1: who calls web-1's nginx, and what it calls)"
ctl client-1 look 10.213.0.2:80

echo
echo "== meshctl look 10.213.0.5:6379 --direction in   (on kv-1: who uses redis, up to the client)"
ctl kv-1 look 10.213.0.5:6379 --direction in

echo
echo "== meshctl look 10.213.0.1   (on web-1: what client-1's processes connect to, all the way down)"
ctl web-1 look 10.213.0.1

echo
echo "== meshctl look 10.213.0.7   (on lb-1: client-2's processes through the Service VIPs and the balancer)"
ctl lb-1 look 10.213.0.7 --depth 2

echo
echo "== topology.sh restart web-1 (as systemctl restart nginx does: new processes, the same unit), 20 more requests"
bash "$topology" restart "$work" web-1
bash "$topology" traffic "$work" 20 web
sleep 2
echo
echo "== meshctl look 10.213.0.3:8000 --direction in --depth 1   (on cache-1: nginx.service is one client of app-1 across the restart)"
ctl cache-1 look 10.213.0.3:8000 --direction in --depth 1
echo "== the same with --group-by pgid   (each nginx process group on its own)"
ctl cache-1 look 10.213.0.3:8000 --direction in --depth 1 --group-by pgid

echo
echo "(as a picture: meshctl look 10.213.0.2:80 --format dot | dot -Tsvg > look.svg; --format json for scripts)"

echo
echo "== meshctl map --since 10m   (on kv-1: the whole mesh, every member asked at once)"
ctl kv-1 map --since 10m

echo
echo "== meshctl map --since 10m --compare-to 1d   (on app-2: what changed since the same window yesterday, before the lab)"
ctl app-2 map --since 10m --compare-to 1d --workload nginx --depth 1

echo
bash "$topology" ui "$work"
echo "   open it from this machine:  sudo bash $topology ui $work 8080   (then http://127.0.0.1:8080/ in a browser, log in with the token)"
echo "   or from client-1 itself:    sudo ip netns exec fmt-1 curl -s -H \"Authorization: Bearer \$(cat $work/ui.token)\" http://10.213.0.1:8080/api/map"
[ $keep -eq 1 ] || echo "   (this run takes the lab down now: run the demo with --keep to open the page)"

if [ $keep -eq 1 ]; then
  t="bash $topology"
  cat <<EOF

== the lab is still running (--keep); explore it with
  the tree from any host:   $t ctl $work client-1 look 10.213.0.2:80
  one app, as JSON:         $t ctl $work app-1 look 10.213.0.3:8000 --format json
  history on a host:        $t ctl $work web-1 flows --since 5m
  one unit's flows:         $t ctl $work web-1 flows --unit nginx.service
  one container's:          $t ctl $work docker-1 flows --container web
  live events (Ctrl-C):     $t ctl $work cache-1 watch
  more requests:            $t traffic $work 50
  any command on a host:    ip netns exec fmt-1 curl -s http://10.213.0.2/   (hosts fmt-1 .. fmt-9)
  logs:                     $work/<host>/meshd.log, server.log
and stop it with
  $t down && rm -rf $work
EOF
fi
