#!/usr/bin/env bash
# The demo and test lab (issue 5): nine hosts, each a network namespace from
# lab.sh (prefix fmt), each running its own meshd in a sealed mesh, with real
# servers serving real traffic; hosts 7-9 put NAT on the paths (issue 14,
# topology_nat.sh says how):
#
#   host   name      address         serves
#   fmt-1  client-1  10.213.0.1      (runs curl)
#   fmt-2  web-1     10.213.0.2:80   nginx, reverse proxy to app-1 and app-2
#   fmt-3  app-1     10.213.0.3:8000 lab_app.py -> cache-1 (redis), kv-1 (memcached)
#   fmt-4  app-2     10.213.0.4:8000 lab_app.py -> cache-1 (redis), kv-1 (memcached)
#   fmt-5  cache-1   10.213.0.5:6379 redis-server
#   fmt-6  kv-1      10.213.0.6:11211 memcached
#   fmt-7  client-2  10.213.0.7      (runs curl, redis-cli) Service VIPs 10.213.250.1:80 -> web-1,
#                                    10.213.250.2:6379 -> cache-1 (kube-proxy style DNAT)
#   fmt-8  docker-1  10.213.0.8:9090 published port -> nginx in container fmt-8c 172.18.0.2:80
#   fmt-9  lb-1      10.213.0.9:8000 L4 balancer (DNAT + masquerade) -> app-1, app-2 :8000
#
# Usage (as root):
#   topology.sh up WORKDIR              start the lab; state and logs under WORKDIR
#   topology.sh traffic WORKDIR [N] [WHAT]  N (default 20) of each kind in WHAT, a comma
#                                       list of web (client-1 -> web-1), vip (client-2 ->
#                                       both VIPs), docker (client-1 -> docker-1:9090), lb
#                                       (client-2 -> lb-1:8000); default all of them
#   topology.sh ctl WORKDIR HOST ARGS   meshctl ARGS on HOST (1..9 or a name above),
#                                       e.g. topology.sh ctl W client-1 look 10.213.0.2:80
#   topology.sh restart WORKDIR HOST    restart HOST's server as systemctl restart would:
#                                       new processes in the same cgroup (web-1 .. kv-1)
#   topology.sh ui WORKDIR [PORT]       print the map page's address (client-1 serves it
#                                       on 10.213.0.1:8080 with a token) and, with PORT,
#                                       forward 127.0.0.1:PORT on this machine to it until
#                                       stopped (socat), so a browser here can open it
#   topology.sh down [WORKDIR]          stop everything, remove the namespaces (idempotent)
#
# TOPOLOGY_NO_CONNTRACK="7 9" starts those hosts' meshd without CAP_NET_ADMIN
# (capsh), so they cannot read connection tracking.
# Binaries: MESHD and MESHCTL (env), or --meshd PATH / --meshctl PATH before the
# command; default build/node/daemon/meshd and build/cli/meshctl in the repo.
# Any other command on a host: ip netns exec fmt-I COMMAND (TOPOLOGY_PREFIX
# replaces fmt; docker-1's container is fmt-8c).
# WORKDIR/NAME/ holds each host's meshd.log, meshd.sock, data/ and server log.
# Hosts find each other by lab.sh's permanent neighbour entries, not ARP, so
# labs side by side never fill the kernel's one neighbour table.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=${TOPOLOGY_PREFIX:-fmt}   # the lab tests use their own, beside a running demo
names=(client-1 web-1 app-1 app-2 cache-1 kv-1 client-2 docker-1 lb-1)
nhosts=${#names[@]}
seed=10.213.0.2:7946
wait_members=${TOPOLOGY_WAIT:-30}   # seconds for the mesh to form
ui_host=1     # client-1 serves the map page
ui_port=8080
python=${PYTHON:-}
[ -n "$python" ] || { [ -x /usr/bin/python3 ] && python=/usr/bin/python3 || python=python3; }

usage() { sed -n '2,43p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "topology: $*" >&2; exit 1; }
note() { echo "topology: $*"; }

# Last lines of a log, indented, for error messages.
tail_log() {
  local f=$1
  if [ -s "$f" ]; then echo "--- last lines of $f:" >&2; tail -n 15 "$f" | sed 's/^/    /' >&2
  else echo "--- $f is empty or missing" >&2; fi
}

# HOST (1..9 or name) -> index 1..9
host_index() {
  local h=$1 i
  if [[ $h =~ ^[1-9]$ ]] && [ "$h" -le "$nhosts" ]; then echo "$h"; return; fi
  for i in "${!names[@]}"; do [ "${names[$i]}" = "$h" ] && { echo $((i + 1)); return; }; done
  die "no host '$h' (use 1..$nhosts or one of: ${names[*]})"
}
name_of() { echo "${names[$(($1 - 1))]}"; }
addr_of() { echo "10.213.0.$1"; }
ns_of() { echo "$prefix-$1"; }
sock_of() { echo "$work/$(name_of "$1")/meshd.sock"; }
# shellcheck source=tests/integration/topology_nat.sh
. "$here/topology_nat.sh"
# shellcheck source=tests/integration/topology_workloads.sh
. "$here/topology_workloads.sh"

meshd=${MESHD:-}
meshctl_bin=${MESHCTL:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --meshd) [ $# -ge 2 ] || usage; meshd=$2; shift 2 ;;
    --meshctl) [ $# -ge 2 ] || usage; meshctl_bin=$2; shift 2 ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
cmd=$1; shift

# `up` records the binaries it used, so traffic/ctl/down use the same ones.
load_env() {
  if [ -z "$meshctl_bin" ] && [ -f "$work/topology.env" ]; then
    meshctl_bin=$(sed -n 's/^MESHCTL=//p' "$work/topology.env")
  fi
  [ -n "$meshd" ] || meshd=$root/build/node/daemon/meshd
  [ -n "$meshctl_bin" ] || meshctl_bin=$root/build/cli/meshctl
}

need_root() { [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and BPF): sudo bash $0 $cmd ..."; }

meshctl_on() { local i=$1; shift; "$meshctl_bin" --socket "$(sock_of "$i")" "$@"; }

# Waits until host I has a TCP listener on PORT (seen with ss inside the
# namespace: no probe connection, so the lab's flows hold only real traffic).
wait_listen() {
  local i=$1 port=$2 what=$3 log=$4 pid=$5 n
  for n in $(seq 100); do
    if ip netns exec "$(ns_of "$i")" ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$log"; die "$what on $(name_of "$i") exited before listening on port $port"
    fi
    sleep 0.1
  done
  tail_log "$log"; die "$what on $(name_of "$i") is not listening on $(addr_of "$i"):$port after 10 s"
}

# Runs CMD... in host I's namespace as its own session (and process group),
# output to LOG; prints the pid.
spawn() {
  local i=$1 log=$2; shift 2
  ip netns exec "$(ns_of "$i")" setsid "$@" </dev/null >"$log" 2>&1 &
  echo $!
}

start_meshd() {
  local i=$1 name dir args pid
  name=$(name_of "$i"); dir=$work/$name
  mkdir -p "$dir/data" "$(runtime_root_of "$i")"
  args=(--node-name "$name" --netns "$(meshd_netns_of "$i")" --bind "$(addr_of "$i"):7946"
        --cluster-key-file "$work/cluster.key" --data-dir "$dir/data"
        --control-socket "$dir/meshd.sock" --flush-interval 1s
        --runtime-root "$(runtime_root_of "$i")")
  # ip netns exec gives meshd a /sys without cgroup mounts (topology_workloads.sh).
  local cgroup2='mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "topology: cannot mount cgroup2 in this namespace: workloads will be off" >&2; exec "$0" "$@"'
  # web-1 is the seed; everyone else joins through it.
  [ "$(addr_of "$i"):7946" = "$seed" ] || args+=(--join "$seed")
  # client-1 serves the map page on its lab address, so a token is required.
  if [ "$i" = "$ui_host" ]; then
    [ -s "$work/ui.token" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$work/ui.token")
    args+=(--ui-listen "$(addr_of "$i"):$ui_port" --ui-token-file "$work/ui.token")
  fi
  if [[ " ${TOPOLOGY_NO_CONNTRACK:-} " == *" $i "* ]]; then
    # Connection tracking is not allowed to this meshd (its netlink groups
    # need CAP_NET_ADMIN): the lab's way to show a host without translations.
    pid=$(spawn "$i" "$dir/meshd.log" sh -c "$cgroup2" capsh --drop=cap_net_admin -- -c \
      'exec "$0" "$@"' "$meshd" "${args[@]}")
  else
    pid=$(spawn "$i" "$dir/meshd.log" sh -c "$cgroup2" "$meshd" "${args[@]}")
  fi
  echo "$pid" >"$dir/meshd.pid"
}

wait_control() {
  local i=$1 name n pid
  name=$(name_of "$i"); pid=$(cat "$work/$name/meshd.pid")
  for n in $(seq 100); do
    meshctl_on "$i" status >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { tail_log "$work/$name/meshd.log"; die "meshd on $name exited during start-up"; }
    sleep 0.1
  done
  tail_log "$work/$name/meshd.log"; die "meshd on $name does not answer on $(sock_of "$i") after 10 s"
}

# Number of alive members host I sees.
alive_on() {
  meshctl_on "$1" --json peers 2>/dev/null | "$python" -c '
import json, sys
try: print(sum(1 for m in json.load(sys.stdin) if m.get("state") == "alive"))
except Exception: print(0)'
}

wait_mesh() {
  local deadline=$((SECONDS + wait_members)) i n all
  while :; do
    all=1
    for i in $(seq "$nhosts"); do
      n=$(alive_on "$i"); [ "$n" -eq "$nhosts" ] || { all=0; break; }
    done
    [ $all -eq 1 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      echo "topology: the mesh did not form in $wait_members s; alive members seen by each node:" >&2
      for i in $(seq "$nhosts"); do echo "    $(name_of "$i"): $(alive_on "$i")/$nhosts" >&2; done
      echo "--- meshctl peers on $(name_of "$i"):" >&2
      meshctl_on "$i" peers 2>&1 | sed 's/^/    /' >&2 || true
      tail_log "$work/$(name_of "$i")/meshd.log"
      die "mesh not formed (see $work/*/meshd.log)"
    fi
    sleep 0.5
  done
}

# Host I's server (2..6), in its workload's cgroup (topology_workloads.sh);
# its pid in WORKDIR/NAME/server.pid.
start_server() {
  local i=$1 name pid d
  name=$(name_of "$i")
  case "$i" in
    2)
      # web-1: nginx, round robin over the two apps, one upstream connection per request.
      d=$work/web-1/nginx; mkdir -p "$d"
      cat >"$d/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 256; }
http {
  access_log off;
  upstream apps { server 10.213.0.3:8000; server 10.213.0.4:8000; }
  server {
    listen 10.213.0.2:80;
    location / { proxy_pass http://apps; proxy_connect_timeout 2s; proxy_read_timeout 5s; }
  }
}
CONF
      pid=$(spawn_server 2 "$work/web-1/server.log" /usr/sbin/nginx -p "$d" -e "$d/error.log" \
        -c "$d/nginx.conf") ;;
    3|4)
      pid=$(spawn_server "$i" "$work/$name/server.log" "$python" "$here/lab_app.py" --name "$name" \
        --listen "$(addr_of "$i"):8000" --redis 10.213.0.5:6379 --memcached 10.213.0.6:11211) ;;
    5)
      mkdir -p "$work/cache-1/redis"
      pid=$(spawn_server 5 "$work/cache-1/server.log" redis-server --bind 10.213.0.5 --port 6379 \
        --save '' --appendonly no --protected-mode no --daemonize no --dir "$work/cache-1/redis" \
        --logfile '') ;;
    6)
      pid=$(spawn_server 6 "$work/kv-1/server.log" memcached -l 10.213.0.6 -p 11211 -U 0 -u root \
        -m 64 -c 256) ;;
    *) die "$name runs no server of its own" ;;
  esac
  echo "$pid" >"$work/$name/server.pid"
}

server_port_of() { case "$1" in 2) echo 80 ;; 3|4) echo 8000 ;; 5) echo 6379 ;; 6) echo 11211 ;; esac; }
server_what_of() { case "$1" in 2) echo nginx ;; 3|4) echo lab_app.py ;; 5) echo redis-server ;; 6) echo memcached ;; esac; }

wait_server() {
  local i=$1 name log
  name=$(name_of "$i"); log=$work/$name/server.log
  [ "$i" -ne 2 ] || log=$work/web-1/nginx/error.log
  wait_listen "$i" "$(server_port_of "$i")" "$(server_what_of "$i")" "$log" "$(cat "$work/$name/server.pid")"
}

start_servers() {
  local i
  for i in 2 3 4 5 6; do start_server "$i"; done
  for i in 2 3 4 5 6; do wait_server "$i"; done
}

# As `systemctl restart` does: the server's processes stop, new ones start in
# the same cgroup (new pids, a new process group, the same workload).
cmd_restart() {
  local i name pid left
  i=$(host_index "$1"); name=$(name_of "$i")
  [ -n "$(server_port_of "$i")" ] || die "$name runs no server to restart (servers: web-1, app-1, app-2, cache-1, kv-1)"
  [ -f "$work/$name/server.pid" ] || die "no $work/$name/server.pid; is the lab up with this WORKDIR?"
  pid=$(cat "$work/$name/server.pid")
  left=$(stop_pids TERM 10 "$pid")
  [ -z "$left" ] || { kill -9 "$pid" 2>/dev/null || true; }
  # Workers (nginx's) leave with their master; wait for the port to be free.
  local n
  for n in $(seq 100); do
    ip netns exec "$(ns_of "$i")" ss -Hltn "sport = :$(server_port_of "$i")" 2>/dev/null | grep -q . || break
    sleep 0.1
  done
  start_server "$i"
  wait_server "$i"
  note "restarted $(server_what_of "$i") on $name: pid $pid -> $(cat "$work/$name/server.pid"), cgroup $(server_cgroup_of "$i")"
}

up_failed() {
  local rc=$?
  [ "$rc" -eq 0 ] && return 0
  echo "topology: up failed; stopping the lab (logs kept in $work)" >&2
  cmd_down >/dev/null 2>&1 || true
}

cmd_up() {
  need_root
  [ -x "$meshd" ] || die "meshd binary $meshd is missing or not executable (build with scripts/build.sh, or set MESHD)"
  [ -x "$meshctl_bin" ] || die "meshctl binary $meshctl_bin is missing or not executable (build with scripts/build.sh, or set MESHCTL)"
  local b
  for b in /usr/sbin/nginx redis-server redis-cli memcached curl nft "$python"; do
    command -v "$b" >/dev/null || die "$b is not installed (run: sudo bash $root/scripts/setup.sh)"
  done
  if ip netns list | awk '{print $1}' | grep -qE "^$prefix-[0-9]+c?$"; then
    die "the lab is already up (namespaces $prefix-*); run: $0 down"
  fi
  # Unix socket paths are limited to 107 bytes.
  [ ${#work} -le 80 ] || die "WORKDIR path is too long for the control sockets (at most 80 characters)"
  meshd=$(realpath "$meshd"); meshctl_bin=$(realpath "$meshctl_bin")
  mkdir -p "$work"; work=$(realpath "$work")
  printf 'MESHD=%s\nMESHCTL=%s\n' "$meshd" "$meshctl_bin" >"$work/topology.env"

  # From here on, a failure takes down whatever was started; logs stay.
  trap up_failed EXIT

  if [ ! -s "$work/cluster.key" ]; then
    (umask 077; head -c 32 /dev/urandom | base64 >"$work/cluster.key")
  fi
  chmod 600 "$work/cluster.key"

  bash "$here/lab.sh" up "$prefix" "$nhosts"
  [ ! -d "$(lab_cgroup_base)" ] || workloads_down
  workloads_up
  # Before meshd: docker-1's records the container's namespace, which must exist.
  nat_up

  local i others
  others=$(seq 1 "$nhosts" | grep -vx 2)
  # The seed first, so the others join at their first try.
  start_meshd 2
  wait_control 2
  for i in $others; do start_meshd "$i"; done
  for i in $others; do wait_control "$i"; done
  note "$nhosts meshd started; waiting for the mesh (at most $wait_members s)"
  wait_mesh
  note "mesh formed: every node sees $nhosts alive members"
  start_servers
  start_nat_servers
  note "servers listening: nginx web-1 10.213.0.2:80, lab_app app-1/app-2 :8000, redis cache-1 10.213.0.5:6379, memcached kv-1 10.213.0.6:11211, nginx in docker-1's container 172.18.0.2:80 (published as 10.213.0.8:9090); VIPs 10.213.250.1:80 and 10.213.250.2:6379 on client-2, balancer lb-1 10.213.0.9:8000"
  trap - EXIT
  note "up; state and logs in $work"
}

cmd_traffic() {
  local n=${1:-20} what=${2:-all} i ok=0 code sample="" other="" w
  if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 1000 ]; then die "N must be 1..1000"; fi
  [ "$what" != all ] || what=web,vip,docker,lb
  for w in ${what//,/ }; do
    case "$w" in web|vip|docker|lb) ;; *) die "WHAT: '$w' is not web, vip, docker or lb" ;; esac
  done
  ip netns list | awk '{print $1}' | grep -qx "$prefix-1" || die "the lab is not up (no namespace $prefix-1); run: $0 up WORKDIR"
  nat_traffic "$n" "$what"
  [[ ,$what, == *,web,* ]] || return 0
  for i in $(seq "$n"); do
    code=$(client_in_session 1 curl -s -o "$work/client-1.last" -w '%{http_code}' --max-time 2 \
      http://10.213.0.2/ 2>/dev/null) || true
    if [ "$code" = 200 ]; then ok=$((ok + 1)); [ -n "$sample" ] || sample=$(head -c 200 "$work/client-1.last")
    else other+=" ${code:-none}"; fi
  done
  echo "traffic: $ok of $n requests from client-1 to http://10.213.0.2/ answered 200"
  # curl's code 000: no answer (refused or timed out).
  [ -z "$other" ] || echo "traffic: the others answered:$(tr ' ' '\n' <<<"$other" | sed '/^$/d' | sort | uniq -c | awk '{printf " %s x%s", $2, $1}')"
  [ -z "$sample" ] || echo "traffic: e.g. $sample"
  if [ "$ok" -eq 0 ]; then
    [ -s "$work/client-1.last" ] && { echo "--- last answer:" >&2; head -c 500 "$work/client-1.last" >&2; echo >&2; }
    tail_log "$work/web-1/nginx/error.log"
    tail_log "$work/app-1/server.log"
    die "no request succeeded"
  fi
}

cmd_ctl() {
  [ $# -ge 2 ] || usage
  local i; i=$(host_index "$1"); shift
  [ -S "$(sock_of "$i")" ] || die "no control socket $(sock_of "$i"); is the lab up with this WORKDIR?"
  exec "$meshctl_bin" --socket "$(sock_of "$i")" "$@"
}

# Processes in host namespace NS (optionally only those named COMM).
ns_pids() {
  local ns=$1 comm=${2:-} pid
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    if [ -z "$comm" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ]; then echo "$pid"; fi
  done
}

# Sends SIG to PIDS and waits up to SECS for them to exit; prints survivors.
stop_pids() {
  local sig=$1 secs=$2; shift 2
  [ $# -gt 0 ] || return 0
  kill "-$sig" "$@" 2>/dev/null || true
  local deadline=$((SECONDS + secs)) p left
  while :; do
    left=()
    for p in "$@"; do kill -0 "$p" 2>/dev/null && left+=("$p"); done
    [ ${#left[@]} -eq 0 ] && return 0
    [ $SECONDS -ge $deadline ] && { echo "${left[*]}"; return 0; }
    sleep 0.1
  done
}

cmd_down() {
  need_root
  local hosts ns pids left
  hosts=$(ip netns list | awk '{print $1}' | grep -E "^$prefix-[0-9]+c?$" || true)
  # meshd first, with SIGTERM: each flushes its store and leaves the mesh.
  pids=()
  for ns in $hosts; do mapfile -t -O "${#pids[@]}" pids < <(ns_pids "$ns" meshd); done
  left=$(stop_pids TERM 10 "${pids[@]}")
  [ -z "$left" ] || echo "topology: meshd $left did not stop in 10 s after SIGTERM; killing" >&2
  # Then the servers (and anything else still in the lab's namespaces).
  pids=()
  for ns in $hosts; do mapfile -t -O "${#pids[@]}" pids < <(ns_pids "$ns"); done
  left=$(stop_pids TERM 5 "${pids[@]}")
  [ -z "$left" ] || echo "topology: processes $left did not stop in 5 s after SIGTERM; killing" >&2
  # lab.sh kills whatever is left with SIGKILL and removes the namespaces.
  bash "$here/lab.sh" down "$prefix"
  workloads_down
  note "down"
}

cmd_ui() {
  local forward=${1:-} url
  url="http://$(addr_of "$ui_host"):$ui_port/"
  [ -s "$work/ui.token" ] || die "no $work/ui.token: is the lab up in $work?"
  echo "map page: $url on $(name_of "$ui_host") (namespace $(ns_of "$ui_host")); token in $work/ui.token"
  [ -n "$forward" ] || return 0
  [[ $forward =~ ^[0-9]+$ ]] && [ "$forward" -ge 1 ] && [ "$forward" -le 65535 ] || die "PORT must be 1..65535"
  command -v socat >/dev/null || die "socat is not installed (run: sudo bash $root/scripts/setup.sh)"
  echo "forwarding http://127.0.0.1:$forward/ to it; open that in a browser and log in with the token (Ctrl-C stops)"
  exec socat "TCP-LISTEN:$forward,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:ip netns exec $(ns_of "$ui_host") socat STDIO TCP\:$(addr_of "$ui_host")\:$ui_port"
}

work=
case "$cmd" in
  up) [ $# -eq 1 ] || usage; work=$1; load_env; cmd_up ;;
  traffic) { [ $# -ge 1 ] && [ $# -le 3 ]; } || usage; work=$1; load_env; need_root; cmd_traffic "${2:-20}" "${3:-all}" ;;
  ctl) [ $# -ge 3 ] || usage; work=$1; shift; load_env; cmd_ctl "$@" ;;
  restart) [ $# -eq 2 ] || usage; work=$1; load_env; need_root; cmd_restart "$2" ;;
  ui) { [ $# -ge 1 ] && [ $# -le 2 ]; } || usage; work=$1; load_env; cmd_ui "${2:-}" ;;
  down) [ $# -le 1 ] || usage; work=${1:-}; cmd_down ;;
  *) usage ;;
esac
