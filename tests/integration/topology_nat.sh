# The lab's three translations (issue 14), sourced by topology.sh: hosts 7-9
# and the rules that rewrite destinations on them, each as the real thing
# lays it out. Everything stays inside the lab's namespaces: nft tables and
# sysctls are per network namespace, nothing touches the machine's own.
#
#   fmt-7  client-2  10.213.0.7   kube-proxy style Service VIPs (nat output):
#                                 10.213.250.1:80 -> web-1 10.213.0.2:80,
#                                 10.213.250.2:6379 -> cache-1 10.213.0.5:6379
#   fmt-8  docker-1  10.213.0.8   docker -p 9090:80: bridge docker0 172.18.0.1/16,
#                                 container namespace fmt-8c (eth0 172.18.0.2/16)
#                                 running nginx on 0.0.0.0:80; DNAT :9090 in
#                                 prerouting, masquerade of the container's
#                                 outbound; meshd --netns self,/run/netns/fmt-8c
#   fmt-9  lb-1      10.213.0.9   L4 balancer: :8000 DNAT round robin to app-1,
#                                 app-2 :8000, masquerade toward them
# shellcheck shell=bash

container_ns() { echo "$prefix-8c"; }

# What meshd on host I records besides its own namespace.
meshd_netns_of() {
  if [ "$1" -eq 8 ]; then echo "self,/run/netns/$(container_ns)"; else echo self; fi
}

nft_in() { local i=$1; ip netns exec "$(ns_of "$i")" nft -f -; }

nat_up() {
  local c; c=$(container_ns)
  # client-2: kube-proxy (nftables mode) DNATs a Service's VIP on the
  # client's own host, before routing, in the output hook.
  nft_in 7 <<'NFT'
table ip kube {
  chain output {
    type nat hook output priority -100; policy accept;
    ip daddr 10.213.250.1 tcp dport 80 dnat to 10.213.0.2:80
    ip daddr 10.213.250.2 tcp dport 6379 dnat to 10.213.0.5:6379
  }
}
NFT

  # docker-1: the container's namespace on a veth into the docker0 bridge.
  ip netns add "$c"
  ip -n "$(ns_of 8)" link add docker0 type bridge
  ip -n "$(ns_of 8)" addr add 172.18.0.1/16 dev docker0
  ip -n "$(ns_of 8)" link set docker0 up
  ip -n "$(ns_of 8)" link add veth8c type veth peer name eth0 netns "$c"
  ip -n "$(ns_of 8)" link set veth8c master docker0 up
  ip -n "$c" addr add 172.18.0.2/16 dev eth0
  ip -n "$c" link set eth0 up
  ip -n "$c" link set lo up
  ip -n "$c" route add default via 172.18.0.1
  ip netns exec "$(ns_of 8)" sysctl -qw net.ipv4.ip_forward=1
  nft_in 8 <<'NFT'
table ip docker {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    tcp dport 9090 dnat to 172.18.0.2:80
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 172.18.0.0/16 oifname != "docker0" masquerade
  }
}
NFT

  # lb-1: forwards out of the interface it received on; masquerade brings
  # the replies back through it. No redirects: the clients must keep
  # sending to the balancer.
  ip netns exec "$(ns_of 9)" sysctl -qw net.ipv4.ip_forward=1 \
    net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
  nft_in 9 <<'NFT'
table ip lb {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    tcp dport 8000 dnat to numgen inc mod 2 map { 0 : 10.213.0.3, 1 : 10.213.0.4 }
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    ip daddr { 10.213.0.3, 10.213.0.4 } tcp dport 8000 masquerade
  }
}
NFT

  # The nat rules load conntrack into these namespaces; meshd reads it there.
  local i
  for i in 7 8 9; do
    ip netns exec "$(ns_of "$i")" test -e /proc/sys/net/netfilter/nf_conntrack_count ||
      die "no connection tracking in $(ns_of "$i") after its nat rules (is nf_conntrack built or loadable?)"
  done
}

# nginx in the container, listening on every address of its own namespace.
start_nat_servers() {
  local d=$work/docker-1/nginx pid
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 64; }
http {
  access_log off;
  server {
    listen 80;
    location / { return 200 "docker-1 container\n"; }
  }
}
CONF
  # In the container's cgroup (topology_workloads.sh), as runc puts it.
  pid=$(spawn_in_cgroup "$(container_ns)" "$(host_cgroup_root 8)/$(server_cgroup_of 8)" \
    "$work/docker-1/server.log" /usr/sbin/nginx -p "$d" -e "$d/error.log" -c "$d/nginx.conf")
  echo "$pid" >"$work/docker-1/server.pid"
  local n
  for n in $(seq 100); do
    ip netns exec "$(container_ns)" ss -Hltn "sport = :80" 2>/dev/null | grep -q . && return 0
    kill -0 "$pid" 2>/dev/null || { tail_log "$d/error.log"; die "nginx in $(container_ns) exited before listening"; }
    sleep 0.1
  done
  tail_log "$d/error.log"; die "nginx in $(container_ns) is not listening on :80 after 10 s"
}

# N requests from host I to URL; one summary line (and the codes of failures).
curl_n() {
  local i=$1 url=$2 n=$3 ok=0 code other="" k last=$work/$(name_of "$1").last
  for k in $(seq "$n"); do
    code=$(client_in_session "$i" curl -s -o "$last" -w '%{http_code}' --max-time 2 "$url" \
      2>/dev/null) || true
    if [ "$code" = 200 ]; then ok=$((ok + 1)); else other+=" ${code:-none}"; fi
  done
  echo "traffic: $ok of $n requests from $(name_of "$i") to $url answered 200"
  [ -z "$other" ] || echo "traffic: the others answered:$(tr ' ' '\n' <<<"$other" | sed '/^$/d' | sort | uniq -c | awk '{printf " %s x%s", $2, $1}')"
  [ "$ok" -gt 0 ]
}

# N redis PINGs from host I to ADDR, over one connection of one redis-cli.
redis_n() {
  local i=$1 addr=$2 n=$3 ok
  ok=$(client_in_session "$i" timeout 10 redis-cli -h "$addr" -p 6379 -r "$n" ping 2>/dev/null |
    grep -cx PONG) || true
  echo "traffic: ${ok:-0} of $n redis PINGs from $(name_of "$i") to $addr:6379 (one connection) answered PONG"
  [ "${ok:-0}" -gt 0 ]
}

# The translated traffic: each kind named in WHAT (vip, docker, lb).
nat_traffic() {
  local n=$1 what=$2 failed=0
  if [[ ,$what, == *,vip,* ]]; then
    curl_n 7 http://10.213.250.1/ "$n" || failed=1
    redis_n 7 10.213.250.2 "$n" || failed=1
  fi
  if [[ ,$what, == *,docker,* ]]; then curl_n 1 http://10.213.0.8:9090/ "$n" || failed=1; fi
  if [[ ,$what, == *,lb,* ]]; then curl_n 7 http://10.213.0.9:8000/ "$n" || failed=1; fi
  [ "$failed" -eq 0 ] || die "a translated path answered nothing (logs in $work)"
}
