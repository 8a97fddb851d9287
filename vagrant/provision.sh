#!/usr/bin/env bash
# Provisions one VM of the Vagrant lab (run by the Vagrantfile as root):
#
#   provision.sh NAME IP ROLE JOIN
#     NAME  node name (client-1, web-1, app-1, app-2, cache-1, kv-1)
#     IP    its address on the lab network (10.213.0.x)
#     ROLE  client | web | app | cache | kv: which server it runs
#     JOIN  seed ip:port to join the mesh through, or - for the seed itself
#
# Installs the packages and builds flowmesh with the project's own scripts
# (from the synced copy in /flowmesh), installs its .debs (meshd runs as the
# packaged systemd service) with /etc/flowmesh/meshd.toml naming this node and
# the cluster key the Vagrantfile copied to /tmp/flowmesh-cluster.key, and
# starts the role's server configured as tests/integration/topology.sh does.
# Running it again (vagrant provision) rebuilds and restarts.
set -euo pipefail

[ $# -eq 4 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
name=$1 ip=$2 role=$3 join=$4
src=/flowmesh
die() { echo "provision $name: $*" >&2; exit 1; }
say() { echo "provision $name: $*"; }

[ -d "$src/scripts" ] || die "$src does not hold the repository (is the synced folder there?)"

# Packages and build, as on any Debian 12 machine.
say "packages (scripts/setup.sh)"
bash "$src/scripts/setup.sh"
say "building flowmesh and its packages (scripts/package.sh; a few minutes)"
bash "$src/scripts/package.sh" >/tmp/flowmesh-build.log 2>&1 ||
  { tail -n 30 /tmp/flowmesh-build.log >&2; die "build failed (whole log: /tmp/flowmesh-build.log)"; }
# The packages: meshd.service (user meshd, its capabilities), the config file,
# man pages, completion. The unit is enabled and started by the package.
dpkg -i "$src"/build/packages/meshd_*.deb "$src"/build/packages/meshctl_*.deb >/dev/null

# Waits (bounded) until something listens on IP:PORT.
wait_listen() {
  local addr=$1 port=$2 what=$3 unit=$4
  for _ in $(seq 100); do
    ss -Hltn "sport = :$port" | grep -q "$addr:$port" && return 0
    sleep 0.1
  done
  journalctl -u "$unit" -n 20 --no-pager >&2 || true
  die "$what is not listening on $addr:$port after 10 s"
}

# The cluster key, readable by the service only. It lives in meshd's state
# directory: `meshctl keys` rewrites it there, and the unit's /etc is read-only.
install -d -o meshd -g meshd -m 0750 /var/lib/flowmesh
if [ -f /tmp/flowmesh-cluster.key ]; then
  install -o meshd -g meshd -m 0600 /tmp/flowmesh-cluster.key /var/lib/flowmesh/cluster.key
  rm -f /tmp/flowmesh-cluster.key
fi
[ -s /var/lib/flowmesh/cluster.key ] || die "no cluster key at /var/lib/flowmesh/cluster.key"

# This node's settings; everything else keeps the packaged defaults (meshd
# --print-config shows the result and where each value came from).
join_line=""
[ "$join" = "-" ] || join_line="join = [\"$join\"]"
cat >/etc/flowmesh/meshd.toml <<CONF
# flowmesh lab node $name (written by vagrant/provision.sh)
node-name = "$name"
bind = "$ip:7946"
$join_line
cluster-key-file = "/var/lib/flowmesh/cluster.key"
CONF
meshd --config /etc/flowmesh/meshd.toml --print-config >/dev/null ||
  die "meshd rejects /etc/flowmesh/meshd.toml"
systemctl daemon-reload
systemctl enable meshd >/dev/null 2>&1
systemctl restart meshd
for _ in $(seq 100); do meshctl status >/dev/null 2>&1 && break; sleep 0.1; done
meshctl status >/dev/null 2>&1 ||
  { journalctl -u meshd -n 20 --no-pager >&2; die "meshd does not answer on /run/flowmesh/meshd.sock"; }
say "meshd running ($(systemctl show -p MainPID --value meshd))"

# The role's server, each a systemd service (so its own process group).
case "$role" in
  client) ;;
  web)
    # nginx: reverse proxy, round robin over both apps.
    cat >/etc/nginx/sites-available/flowmesh-lab <<'CONF'
upstream apps { server 10.213.0.3:8000; server 10.213.0.4:8000; }
server {
  listen 10.213.0.2:80;
  access_log off;
  location / { proxy_pass http://apps; proxy_connect_timeout 2s; proxy_read_timeout 5s; }
}
CONF
    rm -f /etc/nginx/sites-enabled/default
    ln -sf /etc/nginx/sites-available/flowmesh-lab /etc/nginx/sites-enabled/flowmesh-lab
    sed -i 's/^worker_processes .*/worker_processes 2;/' /etc/nginx/nginx.conf
    nginx -t -q || die "nginx rejects its configuration"
    systemctl enable nginx >/dev/null 2>&1
    systemctl restart nginx
    wait_listen "$ip" 80 nginx nginx
    ;;
  app)
    install -D -m 0755 "$src/tests/integration/lab_app.py" /usr/local/lib/flowmesh/lab_app.py
    cat >/etc/systemd/system/flowmesh-lab-app.service <<UNIT
[Unit]
Description=flowmesh lab application server ($name)
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/flowmesh/lab_app.py --name $name --listen $ip:8000 --redis 10.213.0.5:6379 --memcached 10.213.0.6:11211
DynamicUser=yes
Restart=on-failure

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable flowmesh-lab-app >/dev/null 2>&1
    systemctl restart flowmesh-lab-app
    wait_listen "$ip" 8000 lab_app.py flowmesh-lab-app
    ;;
  cache)
    # redis: on the lab address, no persistence, reachable from the apps.
    cat >/etc/redis/flowmesh-lab.conf <<CONF
include /etc/redis/redis.conf
bind $ip
port 6379
protected-mode no
save ""
appendonly no
CONF
    chown redis:redis /etc/redis/flowmesh-lab.conf
    mkdir -p /etc/systemd/system/redis-server.service.d
    cat >/etc/systemd/system/redis-server.service.d/flowmesh-lab.conf <<'UNIT'
[Service]
ExecStart=
ExecStart=/usr/bin/redis-server /etc/redis/flowmesh-lab.conf --supervised systemd --daemonize no
UNIT
    systemctl daemon-reload
    systemctl enable redis-server >/dev/null 2>&1
    systemctl restart redis-server
    wait_listen "$ip" 6379 redis-server redis-server
    ;;
  kv)
    # memcached: on the lab address, TCP only.
    sed -i -e "s/^-l .*/-l $ip/" -e 's/^-p .*/-p 11211/' /etc/memcached.conf
    grep -q '^-l ' /etc/memcached.conf || echo "-l $ip" >>/etc/memcached.conf
    grep -q '^-U ' /etc/memcached.conf || echo "-U 0" >>/etc/memcached.conf
    systemctl enable memcached >/dev/null 2>&1
    systemctl restart memcached
    wait_listen "$ip" 11211 memcached memcached
    ;;
  *) die "unknown role '$role' (client, web, app, cache or kv)" ;;
esac

say "ready ($role); the mesh as this node sees it:"
meshctl peers || true
