#!/usr/bin/env bash
# The main job: sets up and builds flowmesh, then shows meshd tracing real
# curl requests to a real nginx that proxies to a python3 web server on this
# host, and the dependency tree `meshctl look` builds from its history.
# Needs root (BPF).
# Everything it starts is stopped on exit; traffic stays on loopback.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (meshd loads BPF programs): sudo bash scripts/demo.sh" >&2
  exit 1
fi
bash scripts/setup.sh
bash scripts/build.sh >/dev/null

work=$(mktemp -d /tmp/flowmesh-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

meshd=build/node/daemon/meshd
meshctl() { build/cli/meshctl --socket "$work/meshd.sock" "$@"; }
port=8080
upstream=8081

cat > "$work/nginx.conf" <<CONF
daemon off;
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events {}
http {
  access_log off;
  server { listen 127.0.0.1:$port; location / { proxy_pass http://127.0.0.1:$upstream; } }
}
CONF
mkdir -p "$work/www" && echo "hello from python3 behind nginx" > "$work/www/index.html"
# setsid: each server is its own process group, as under systemd; look groups
# a server's processes (nginx's master and workers) by process group.
setsid python3 -m http.server "$upstream" --bind 127.0.0.1 --directory "$work/www" \
  >/dev/null 2>&1 &
pids+=($!)
setsid /usr/sbin/nginx -p "$work" -c "$work/nginx.conf" &
pids+=($!)
# Both answer before meshd starts, so the readiness checks are not traced.
for _ in $(seq 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/" && break
  sleep 0.05
done

"$meshd" --control-socket "$work/meshd.sock" --data-dir "$work/data" --probe-mode auto --log-level warn &
pids+=($!)
for _ in $(seq 100); do meshctl status >/dev/null 2>&1 && break; sleep 0.05; done

echo "== meshctl watch   (while curl fetches http://127.0.0.1:$port/ three times)"
meshctl watch --no-listen --timeout 3s &
watch_pid=$!
sleep 0.5
for _ in 1 2 3; do curl -s --retry 10 --retry-connrefused --retry-delay 0 "http://127.0.0.1:$port/" >/dev/null; done
wait "$watch_pid" || true

echo
echo "== meshctl watch --json -D $port   (one curl: its open and close)"
meshctl watch --json -D "$port" --count 2 --timeout 3s &
watch_pid=$!
sleep 0.3
curl -s "http://127.0.0.1:$port/" >/dev/null
wait "$watch_pid" || true

echo
echo "== meshctl flows   (closed connections from meshd's RocksDB history)"
meshctl flows --since 5m

echo
echo "== meshctl endpoints"
meshctl endpoints

echo
echo "== meshctl look 127.0.0.1:$port   (who calls nginx, and what nginx calls)"
meshctl look "127.0.0.1:$port"

echo
echo "== meshctl status"
meshctl status
