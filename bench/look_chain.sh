#!/usr/bin/env bash
# The look benchmark (issue 5): a chain of 6 hosts in the lab, 5 hops, and how
# long `meshctl look --depth 6` takes from each end of it.
#
#   host  node   address          runs
#   lcb-1 hop-1  10.213.0.1       the client: N GETs to hop-2, a new connection each
#   lcb-2 hop-2  10.213.0.2:8000  chain_server.py, calls hop-3 on every GET
#   ...
#   lcb-6 hop-6  10.213.0.6:8000  chain_server.py, the end of the chain
#
# Each host is a network namespace (tests/integration/lab.sh, prefix lcb) with
# its own meshd --netns self in one sealed mesh. After the client's traffic,
# three looks are checked for a complete tree (every hop-i, nothing
# [unreachable]), printed once, then timed R times each, interleaved with as
# many `meshctl status` calls (meshctl's start-up plus one control-socket round
# trip: the fixed cost every look pays too):
#   on hop-1: look 10.213.0.2:8000 --depth 6  (down 2->3->4->5->6, up to the client)
#   on hop-6: look 10.213.0.6:8000 --depth 6  (up 5->4->3->2->client)
#   on hop-6: look 10.213.0.1 --depth 6       (the client's host, down the chain)
# Round trips per look come from the asking meshd's debug log line
# "look: TARGET: N round trips, Q questions, F unanswered"; round trips per
# node from the other side: each look run 5 times alone while every other node
# runs `meshctl watch` on its meshd's port (one connection per round trip).
#
# Usage (as root): bench/look_chain.sh [--rounds R] [--requests N] [--keep]
#   --rounds R     timed queries per look (default 100, 1..10000)
#   --requests N   client requests through the chain (default 50, 1..1000)
#   --keep         keep the work dir (logs, stores) after the run
# Binaries: MESHD, MESHCTL (env), default build/node/daemon/meshd and
# build/cli/meshctl in the repository. Exit code 0 when every step ran and
# every tree was complete; the target lines are information.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
lab=$root/tests/integration/lab.sh
prefix=lcb
hosts=(1 2 3 4 5 6)
rounds=100
requests=50
keep=0
mesh_wait=30      # seconds for the mesh to form
tree_wait=30      # seconds for the endpoint tables to spread and the trees to complete
meshd=${MESHD:-$root/build/node/daemon/meshd}
meshctl=${MESHCTL:-$root/build/cli/meshctl}
python=${PYTHON:-python3}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit 2; }
die() { echo "look_chain: $*" >&2; exit 1; }
note() { echo "look_chain: $*"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [ $# -ge 2 ] || usage; rounds=$2; shift 2 ;;
    --requests) [ $# -ge 2 ] || usage; requests=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    *) usage ;;
  esac
done
if ! [[ $rounds =~ ^[0-9]+$ ]] || [ "$rounds" -lt 1 ] || [ "$rounds" -gt 10000 ]; then
  die "--rounds must be 1..10000"
fi
if ! [[ $requests =~ ^[0-9]+$ ]] || [ "$requests" -lt 1 ] || [ "$requests" -gt 1000 ]; then
  die "--requests must be 1..1000"
fi
[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and BPF): sudo $0"
[ -x "$meshd" ] || die "meshd binary $meshd is missing (build it, or set MESHD)"
[ -x "$meshctl" ] || die "meshctl binary $meshctl is missing (build it, or set MESHCTL)"
command -v "$python" >/dev/null || die "python3 is not installed"
command -v ss >/dev/null || die "ss (iproute2) is not installed"
if ip netns list | awk '{print $1}' | grep -qE "^$prefix-([0-9]+|br)$"; then
  die "a lab $prefix is already up (another run?); remove it with: $lab down $prefix"
fi
meshd=$(realpath "$meshd"); meshctl=$(realpath "$meshctl")

addr_of() { echo "10.213.0.$1"; }
ns_of() { echo "$prefix-$1"; }
dir_of() { echo "$work/hop-$1"; }
sock_of() { echo "$work/hop-$1/meshd.sock"; }
ctl() { local i=$1; shift; "$meshctl" --socket "$(sock_of "$i")" "$@"; }

tail_log() {
  if [ -s "$1" ]; then echo "--- last lines of $1:" >&2; tail -n 15 "$1" | sed 's/^/    /' >&2
  else echo "--- $1 is empty or missing" >&2; fi
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

work=
meshd_pids=()
server_pids=()
watch_pids=()
failed=1
cleanup() {
  local rc=$? left
  trap - EXIT INT TERM
  stop_pids TERM 5 "${watch_pids[@]}" >/dev/null
  # meshd first, with SIGTERM: each flushes its store and leaves the mesh.
  left=$(stop_pids TERM 10 "${meshd_pids[@]}")
  [ -z "$left" ] || echo "look_chain: meshd $left did not stop 10 s after SIGTERM; lab.sh kills it" >&2
  left=$(stop_pids TERM 5 "${server_pids[@]}")
  [ -z "$left" ] || echo "look_chain: servers $left did not stop 5 s after SIGTERM; lab.sh kills them" >&2
  bash "$lab" down "$prefix" || echo "look_chain: lab.sh down $prefix failed" >&2
  if [ -n "$work" ] && [ -d "$work" ]; then
    if [ "$keep" -eq 1 ] || [ "$failed" -ne 0 ]; then echo "look_chain: logs kept in $work" >&2
    else rm -rf "$work"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs CMD... in host I's namespace as its own session, output to LOG; prints the pid.
spawn() {
  local i=$1 log=$2; shift 2
  ip netns exec "$(ns_of "$i")" setsid "$@" </dev/null >"$log" 2>&1 &
  echo $!
}

# Waits (10 s) until host I listens on PORT, seen with ss: no probe connection,
# so the flows hold only the chain's traffic.
wait_listen() {
  local i=$1 port=$2 pid=$3 log=$4
  for _ in $(seq 100); do
    ip netns exec "$(ns_of "$i")" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
    kill -0 "$pid" 2>/dev/null || { tail_log "$log"; die "the process on hop-$i exited before listening on :$port"; }
    sleep 0.1
  done
  tail_log "$log"; die "hop-$i is not listening on $(addr_of "$i"):$port after 10 s"
}

start_meshd() {
  local i=$1 d args pid
  d=$(dir_of "$i"); mkdir -p "$d/data"
  args=(--node-name "hop-$i" --netns self --bind "$(addr_of "$i"):7946"
        --cluster-key-file "$work/cluster.key" --data-dir "$d/data"
        --control-socket "$d/meshd.sock" --flush-interval 1s --log-level debug)
  [ "$i" -eq 1 ] || args+=(--join "$(addr_of 1):7946")
  pid=$(spawn "$i" "$d/meshd.log" "$meshd" "${args[@]}")
  meshd_pids+=("$pid"); echo "$pid" >"$d/meshd.pid"
}

wait_control() {
  local i=$1 pid
  pid=$(cat "$(dir_of "$i")/meshd.pid")
  for _ in $(seq 100); do
    ctl "$i" status >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { tail_log "$(dir_of "$i")/meshd.log"; die "meshd on hop-$i exited during start-up"; }
    sleep 0.1
  done
  tail_log "$(dir_of "$i")/meshd.log"; die "meshd on hop-$i does not answer on $(sock_of "$i") after 10 s"
}

alive_on() {
  ctl "$1" --json peers 2>/dev/null | "$python" -c '
import json, sys
try: print(sum(1 for m in json.load(sys.stdin) if m.get("state") == "alive"))
except Exception: print(0)'
}

wait_mesh() {
  local deadline=$((SECONDS + mesh_wait)) i all
  while :; do
    all=1
    for i in "${hosts[@]}"; do [ "$(alive_on "$i")" -eq 6 ] || { all=0; break; }; done
    [ $all -eq 1 ] && return 0
    if [ $SECONDS -ge $deadline ]; then
      for i in "${hosts[@]}"; do echo "    hop-$i sees $(alive_on "$i")/6 alive" >&2; done
      ctl "$i" peers 2>&1 | sed 's/^/    /' >&2 || true
      tail_log "$(dir_of "$i")/meshd.log"
      die "the mesh did not form in $mesh_wait s"
    fi
    sleep 0.5
  done
}

# Checks one look's JSON tree (stdin, also saved to FILE): prints "ok REMOTE"
# (REMOTE: how many hosts the tree holds besides the asker ASKER) or
# "incomplete WHY".
check_tree() {
  tee "$2" | "$python" -c '
import json, sys
asker = sys.argv[1]
try:
    doc = json.load(sys.stdin)
except Exception as e:
    print("incomplete: no JSON from look:", e); sys.exit()
hosts, bad = set(), []
def walk(n):
    if n.get("host"): hosts.add(n["host"])
    if n.get("status") in ("unreachable", "no-agent"):
        bad.append("%s %s" % (n.get("addr"), n["status"]))
    for c in n.get("clients", []) + n.get("dependencies", []): walk(c)
walk(doc["root"])
missing = ["hop-%d" % i for i in range(1, 7) if "hop-%d" % i not in hosts]
if missing or bad:
    print("incomplete: missing", " ".join(missing) or "-", "| leaves", ", ".join(bad) or "-")
else:
    print("ok", len(hosts - {asker}))
' "$1"
}

# Bytes in host I's meshd log so far (the round-trip lines are read from there on).
log_size() { stat -c %s "$(dir_of "$1")/meshd.log"; }

# The "round trips" lines host I logged past byte OFFSET.
rt_lines() { tail -c +"$(($2 + 1))" "$(dir_of "$1")/meshd.log" | grep -a 'round trips' || true; }

########################################################################
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d /tmp/lcb.XXXXXX)
note "meshd $meshd ($(date -u -r "$meshd" +%FT%TZ)), meshctl $meshctl; work dir $work"
(umask 077; head -c 32 /dev/urandom | base64 >"$work/cluster.key")
chmod 600 "$work/cluster.key"

bash "$lab" up "$prefix" 6
# hop-1 is the seed; everyone else joins through it.
start_meshd 1
wait_control 1
for i in 2 3 4 5 6; do start_meshd "$i"; done
for i in 2 3 4 5 6; do wait_control "$i"; done
t0=$SECONDS
wait_mesh
note "mesh formed: every node sees 6 alive members ($((SECONDS - t0)) s)"

# The end of the chain first, so every link's next is up when it starts.
for i in 6 5 4 3 2; do
  args=(serve --name "hop-$i" --listen "$(addr_of "$i"):8000")
  [ "$i" -eq 6 ] || args+=(--next "$(addr_of $((i + 1))):8000")
  pid=$(spawn "$i" "$(dir_of "$i")/server.log" "$python" "$here/chain_server.py" "${args[@]}")
  server_pids+=("$pid")
  wait_listen "$i" 8000 "$pid" "$(dir_of "$i")/server.log"
done
note "chain listening: hop-2 -> hop-3 -> hop-4 -> hop-5 -> hop-6 on :8000"

out=$(ip netns exec "$(ns_of 1)" timeout 120 "$python" "$here/chain_server.py" client \
  --target "$(addr_of 2):8000" --count "$requests") || { echo "$out" >&2; die "the client's requests failed"; }
note "client on hop-1: $out"

# name | asking host | target
looks=("down|1|10.213.0.2:8000" "up|6|10.213.0.6:8000" "host|6|10.213.0.1")
declare -A remote rt_check
for spec in "${looks[@]}"; do
  IFS='|' read -r name asker target <<<"$spec"
  deadline=$((SECONDS + tree_wait))
  while :; do
    off=$(log_size "$asker")
    verdict=$(ctl "$asker" look "$target" --depth 6 --format json 2>"$work/look.err" | check_tree "hop-$asker" "$work/look-$name.json") || true
    [ "${verdict%% *}" = ok ] && break
    if [ $SECONDS -ge $deadline ]; then
      echo "--- last tree:" >&2; ctl "$asker" look "$target" --depth 6 >&2 || true
      cat "$work/look.err" >&2
      die "look $target on hop-$asker is still $verdict after $tree_wait s"
    fi
    sleep 1
  done
  read -r _ "remote[$name]" <<<"$verdict"
  rt_check[$name]=$(rt_lines "$asker" "$off" | tail -n 1)
  echo
  echo "== look $target --depth 6 on hop-$asker (complete: all of hop-1..hop-6, ${remote[$name]} nodes besides hop-$asker)"
  ctl "$asker" look "$target" --depth 6
  echo "   hop-$asker's meshd logged: ${rt_check[$name]:-(no 'round trips' line)}"
done
echo

# Timed: per round, status (alternately on hop-1 and hop-6) and each look once.
note "timing $rounds rounds of: status, and each of the ${#looks[@]} looks"
declare -A off_before
for i in 1 6; do off_before[$i]=$(log_size "$i"); done
"$python" - "$meshctl" "$work" "$rounds" "${looks[@]}" >"$work/timing.txt" <<'PY'
import signal, statistics, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: no traceback, the trap cleans up
meshctl, work, rounds, specs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def sock(i): return f"{work}/hop-{i}/meshd.sock"
series = {"status": []}
incomplete = {}
def run(argv):
    t = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    ms = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()}")
    return ms, p.stdout
items = ["status"] + specs
for r in range(rounds):
    # The order rotates from round to round: drift lands on every query alike.
    for spec in items[r % len(items):] + items[:r % len(items)]:
        if spec == "status":
            ms, _ = run([meshctl, "--socket", sock(1 if r % 2 == 0 else 6), "status"])
            series["status"].append(ms)
            continue
        name, asker, target = spec.split("|")
        ms, out = run([meshctl, "--socket", sock(asker), "look", target, "--depth", "6"])
        series.setdefault(name, []).append(ms)
        if any(f"hop-{i}" not in out for i in range(1, 7)) or "[unreachable]" in out:
            incomplete[name] = incomplete.get(name, 0) + 1
def p99(xs):  # nearest rank
    s = sorted(xs); return s[max(0, -(-99 * len(s) // 100) - 1)]
for name, xs in series.items():
    print(name, f"{statistics.median(xs):.1f}", f"{p99(xs):.1f}", f"{min(xs):.1f}",
          f"{max(xs):.1f}", incomplete.get(name, 0))
PY

for i in 1 6; do rt_lines "$i" "${off_before[$i]}" >"$work/round-trips-hop-$i.txt"; done

# The timed looks' log lines on hop-ASKER: "RT Q F" per look (the log names a
# host address target with ":0").
rt_of() {
  local asker=$1 target=$2
  grep -aE "look: ${target//./\\.}(:0)?: " "$work/round-trips-hop-$asker.txt" \
    | sed -E 's/.*: ([0-9]+) round trips, ([0-9]+) questions, ([0-9]+) unanswered.*/\1 \2 \3/'
}
# Round trips per node, seen from the other side: every node but the asker
# runs `meshctl watch` on its meshd's port while the look runs $per_node times
# alone; each round trip is one connection the asker opens to the node's meshd
# (meshd keeps its own connections out of the history, but watch shows them).
per_node=5
declare -A by_node
watch_pids=()
for spec in "${looks[@]}"; do
  IFS='|' read -r name asker target <<<"$spec"
  watch_pids=()
  for j in "${hosts[@]}"; do
    [ "$j" -ne "$asker" ] || continue
    ctl "$j" --json watch -L 7946 --no-listen --timeout 60s >"$work/watch-$name-hop-$j.txt" 2>&1 &
    watch_pids+=("$!")
  done
  sleep 1  # every watcher subscribed
  t0=$(date -u +%FT%T.%3NZ)
  for _ in $(seq "$per_node"); do ctl "$asker" look "$target" --depth 6 >/dev/null; done
  t1=$(date -u +%FT%T.%3NZ)
  sleep 0.5
  stop_pids TERM 5 "${watch_pids[@]}" >/dev/null
  wait "${watch_pids[@]}" 2>/dev/null || true
  watch_pids=()
  line=""
  for j in "${hosts[@]}"; do
    [ "$j" -ne "$asker" ] || continue
    # Opens from the asker while the looks ran (the mesh's own syncs, every
    # 30 s, rarely fall in that window; one that does shows as a fraction).
    c=$(grep -E '"event": *"open"' "$work/watch-$name-hop-$j.txt" \
      | grep -E "\"raddr\": *\"$(addr_of "$asker")\"" \
      | sed -E 's/.*"ts": *"([^"]+)".*/\1/' | awk -v a="$t0" -v b="$t1" '$1 >= a && $1 <= b' | wc -l)
    line+=" hop-$j $(awk -v c="$c" -v n="$per_node" 'BEGIN{x = c / n; printf (x == int(x) ? "%d" : "%.1f"), x}'),"
  done
  by_node[$name]=${line%,}
done

# Summary: each look's figures, then the verdicts.
status_med=$(awk '$1=="status"{print $2}' "$work/timing.txt")
field() { awk -v n="$1" -v f="$2" '$1==n{print $f}' "$work/timing.txt"; }
echo
echo "== summary: look --depth 6 over the 6-host chain (5 hops), $rounds timed queries each"
echo "   meshd built $(date -u -r "$meshd" +%FT%TZ); $(nproc) cores, load average $load_before before the run"
echo "   wall clock per meshctl invocation in ms (p99: nearest rank)"
printf '   %-31s %7s %7s %7s %7s  %s\n' query median p99 min max "per look: round trips/questions/unanswered (x looks)"
all_complete=1
for spec in status "${looks[@]}"; do
  if [ "$spec" = status ]; then name=status label="status (hop-1/hop-6)" rts="-"
  else
    IFS='|' read -r name asker target <<<"$spec"
    label="look $target on hop-$asker"
    rts=$(rt_of "$asker" "$target" | sort | uniq -c \
      | awk '{printf "%s%s/%s/%s (x%s)", (NR>1?", ":""), $2, $3, $4, $1}')
  fi
  printf '   %-31s %7s %7s %7s %7s  %s\n' "$label" "$(field "$name" 2)" "$(field "$name" 3)" \
    "$(field "$name" 4)" "$(field "$name" 5)" "${rts:-none logged}"
  [ "$(field "$name" 6)" -eq 0 ] || { all_complete=0; echo "   !! $(field "$name" 6) of these trees were incomplete"; }
done
for spec in "${looks[@]}"; do
  IFS='|' read -r name asker target <<<"$spec"
  med=$(field "$name" 2)
  rts=$(rt_of "$asker" "$target" | awk '{print $1}' | sort -u | tr '\n' ' '); rts=${rts% }
  if [ -z "$rts" ]; then verdict="no 'round trips' line in hop-$asker's meshd.log (a meshd without it?)"
  elif [ "$rts" = "${remote[$name]}" ]; then verdict="yes"
  else verdict="NO, $rts round trips for ${remote[$name]} nodes"; fi
  echo "   look $target on hop-$asker: median $med ms: $(awk -v a="$med" 'BEGIN{print (a < 50 ? "PASS" : "MISS")}') (< 50 ms);" \
    "look - status median $(awk -v a="$med" -v b="$status_med" 'BEGIN{printf "%.1f", a-b}') ms"
  echo "     ${remote[$name]} nodes besides hop-$asker; one round trip per node visited: $verdict"
  echo "     round trips per node and look (connections to its meshd, $per_node looks):${by_node[$name]}"
done
for spec in "${looks[@]}"; do
  IFS='|' read -r name asker target <<<"$spec"
  printf '   look/status median ratio  %-16s %s\n' "$target" \
    "$(awk -v a="$(field "$name" 2)" -v b="$status_med" 'BEGIN{printf "%.2f", a/b}')"
done
[ "$all_complete" -eq 1 ] || die "some timed trees were incomplete"
failed=0
