#!/usr/bin/env bash
# The Debian packages end to end, as an operator installs them:
#   cpack builds meshd and meshctl .debs from the build tree; they install with
#   dpkg; the unit passes systemd-analyze verify; the service starts as the
#   unit says (user meshd, only the unit's capabilities, its state and runtime
#   directories, its ExecStart reading /etc/flowmesh/meshd.toml) and traces a
#   real loopback connection; SIGTERM stops it cleanly; purge removes it all.
# Where systemd is PID 1 the service is started with the host's systemctl.
# Where it is not (containers, this CI), a private systemd is booted as PID 1
# of its own PID and mount namespaces (sharing the host's network, /proc and
# kernel, so meshd traces the host's connections as it would on a real host),
# whose only units are the installed meshd.service (with any drop-ins) and
# empty stand-ins for the targets it orders against. Everything else is the
# real thing: systemd applies the unit's user, capabilities, sandboxing and
# directories, and systemctl starts and stops it.
#
# Usage: deb_install.sh BUILD_DIR   (root; modifies the system, then restores it)
set -euo pipefail

build=$(cd "${1:?usage: deb_install.sh BUILD_DIR}" && pwd)
fail() {
  [ -s "${work:-/nonexistent}/meshd.log" ] && { echo "--- meshd's log:" >&2; cat "$work/meshd.log" >&2; }
  echo "FAIL: $*" >&2
  exit 1
}
if [ "$(id -u)" -ne 0 ]; then
  [ "${CI:-}" = "true" ] && fail "needs root to install packages (CI=true: a skip is a failure)"
  echo "SKIP: needs root to install packages"; exit 77
fi
if dpkg-query -W -f='${Status}' meshd 2>/dev/null | grep -q 'ok installed'; then
  fail "a meshd package is already installed here; this test installs and purges its own (dpkg --purge meshd meshctl first)"
fi

work=$(mktemp -d /tmp/fm-deb-XXXXXX)
meshd_pid=""
# A /var/lib/flowmesh without the package is another meshd's history (or an
# aborted run's, owned by root, which the packaged meshd could not lock): kept
# aside while the package owns that path, and put back afterwards.
saved_state=""
if [ -e /var/lib/flowmesh ]; then
  saved_state="$work/var-lib-flowmesh.saved"
  mv /var/lib/flowmesh "$saved_state"
  echo "note: /var/lib/flowmesh existed without the package; kept aside until the test ends"
fi
cleanup() {
  [ -n "${sd_pid:-}" ] && kill -9 "$sd_pid" 2>/dev/null || true  # PID 1 of its namespace: all go
  [ -n "$meshd_pid" ] && kill -9 "$meshd_pid" 2>/dev/null || true
  [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
  if [ -d /run/systemd/system ]; then systemctl stop meshd.service 2>/dev/null || true; fi
  [ -n "${unshare_pid:-}" ] && wait "$unshare_pid" 2>/dev/null || true
  dpkg --purge meshd meshctl >/dev/null 2>&1 || true
  if [ -n "$saved_state" ] && [ -e "$saved_state" ] && [ ! -e /var/lib/flowmesh ]; then
    mv "$saved_state" /var/lib/flowmesh
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== cpack"
(cd "$build" && cpack -G DEB -B "$work/pkgs" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
meshd_deb=$(ls "$work"/pkgs/meshd_*.deb) || fail "no meshd .deb"
meshctl_deb=$(ls "$work"/pkgs/meshctl_*.deb) || fail "no meshctl .deb"
ls -l "$work"/pkgs/*.deb

echo "== contents"
dpkg-deb -c "$meshd_deb" >"$work/meshd.list"
dpkg-deb -c "$meshctl_deb" >"$work/meshctl.list"
for f in ./usr/sbin/meshd ./usr/lib/systemd/system/meshd.service ./etc/flowmesh/meshd.toml \
         ./usr/share/man/man8/meshd.8.gz ./usr/share/bash-completion/completions/meshd; do
  grep -q " $f\$" "$work/meshd.list" || fail "meshd .deb lacks $f"
done
for f in ./usr/bin/meshctl ./usr/share/man/man8/meshctl.8.gz ./usr/share/bash-completion/completions/meshctl; do
  grep -q " $f\$" "$work/meshctl.list" || fail "meshctl .deb lacks $f"
done
depends=$(dpkg-deb -f "$meshd_deb" Depends)
echo "meshd Depends: $depends"
for lib in libbpf libcapnp libmnl; do
  [[ "$depends" == *"$lib"* ]] || fail "meshd Depends lacks $lib (shlibdeps): $depends"
done
dpkg-deb -e "$meshd_deb" "$work/control"
grep -qx /etc/flowmesh/meshd.toml "$work/control/conffiles" || fail "meshd.toml is not a conffile"

echo "== install"
dpkg -i "$meshctl_deb" "$meshd_deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i failed"; }
getent passwd meshd >/dev/null || fail "postinst did not create the meshd user"
[ -x /usr/sbin/meshd ] && [ -x /usr/bin/meshctl ] || fail "binaries not installed"
/usr/sbin/meshd --version >/dev/null 2>&1 || /usr/sbin/meshd --help >/dev/null || fail "installed meshd does not run"
man -w meshd >/dev/null || fail "man meshd: not found"
man -w meshctl >/dev/null || fail "man meshctl: not found"

echo "== systemd-analyze verify"
unit=/usr/lib/systemd/system/meshd.service
if ! systemd-analyze verify "$unit" >"$work/verify.log" 2>&1; then
  cat "$work/verify.log"; fail "systemd-analyze verify $unit"
fi
if [ -s "$work/verify.log" ]; then cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"; fi
echo "verify: clean"

# The effective configuration the packaged service starts with.
/usr/sbin/meshd --config /etc/flowmesh/meshd.toml --print-config >"$work/config.txt" ||
  fail "meshd --print-config with the packaged config"
grep -q '/etc/flowmesh/meshd.toml\|default' "$work/config.txt" || fail "print-config names no sources"

echo "== start the service"
[ "$(sed -n 's/^User=//p' "$unit")" = meshd ] || fail "unit does not run as meshd"
grep -q '^AmbientCapabilities=.*CAP_SYS_ADMIN' "$unit" &&
  fail "unit grants CAP_SYS_ADMIN on a kernel with CAP_BPF"
if [ -d /run/systemd/system ]; then
  in_ns() { "$@"; }
  systemctl daemon-reload
else
  echo "systemd is not PID 1 here: booting a private systemd (PID and mount namespaces) for the unit"
  units=$work/units
  mkdir -p "$units"
  ln -s "$unit" "$units/meshd.service"
  mkdir -p "$units/meshd.service.d"
  for f in /etc/systemd/system/meshd.service.d/*.conf; do [ -e "$f" ] && ln -s "$f" "$units/meshd.service.d/"; done
  # No journald in the private systemd: meshd's stderr goes to a file (the
  # only change to how the packaged unit runs), shown when something fails.
  printf '[Service]\nStandardOutput=append:%s\nStandardError=inherit\n' "$work/meshd.log" \
    >"$units/meshd.service.d/zz-test-log.conf"
  for t in default sysinit basic shutdown sockets local-fs network network-online multi-user; do
    printf '[Unit]\nDescription=%s (stand-in)\n' "$t" >"$units/$t.target"
  done
  printf '[Unit]\nDescription=system slice (stand-in)\n' >"$units/system.slice"
  # A /run of its own (systemd's sockets, meshd's RuntimeDirectory) and a
  # read-only /sys: the private systemd must not touch the host's.
  cat >"$work/boot.sh" <<BOOT
set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mount -o remount,ro,bind /sys
exec env container=flowmesh-test SYSTEMD_UNIT_PATH=$units /lib/systemd/systemd --system --log-target=console --show-status=no
BOOT
  unshare --pid --fork --mount --propagation private bash "$work/boot.sh" >"$work/systemd.log" 2>&1 &
  unshare_pid=$!
  for _ in $(seq 1 50); do
    sd_pid=$(pgrep -P "$unshare_pid" -f /lib/systemd/systemd || true)
    [ -n "$sd_pid" ] && nsenter -t "$sd_pid" -m -p systemctl is-system-running >/dev/null 2>&1 && break
    sleep 0.1
  done
  [ -n "${sd_pid:-}" ] || { cat "$work/systemd.log"; fail "the private systemd did not boot"; }
  in_ns() { nsenter -t "$sd_pid" -m -p "$@"; }
  echo "private systemd: $(in_ns systemctl --version | head -1), state $(in_ns systemctl is-system-running || true)"
fi
in_ns systemctl start meshd.service || { in_ns systemctl status meshd.service --no-pager; fail "systemctl start meshd"; }
ready=0
for _ in $(seq 1 100); do
  if in_ns meshctl status >"$work/status.txt" 2>/dev/null; then ready=1; break; fi
  in_ns systemctl is-active --quiet meshd.service || break
  sleep 0.1
done
[ $ready -eq 1 ] || { in_ns systemctl status meshd.service --no-pager; fail "meshd did not answer meshctl status"; }
in_ns systemctl status meshd.service --no-pager | head -4 || true
cat "$work/status.txt"
grep -q streaming "$work/status.txt" || fail "not the eBPF probe under the unit"
meshd_pid=$(pgrep -u meshd -x meshd | head -1)
[ -n "$meshd_pid" ] || fail "no meshd process running as user meshd"
uid=$(awk '/^Uid:/ {print $2}' "/proc/$meshd_pid/status")
[ "$uid" = "$(id -u meshd)" ] || fail "meshd runs as uid $uid, not meshd"
capeff=$(awk '/^CapEff:/ {print $2}' "/proc/$meshd_pid/status")
echo "meshd uid $uid, CapEff $capeff ($(capsh --decode="$capeff" 2>/dev/null | cut -d= -f2 || true))"
# CAP_BPF(39) CAP_PERFMON(38) CAP_SYS_PTRACE(19) CAP_NET_ADMIN(12, conntrack) CAP_DAC_READ_SEARCH(2)
want=$(printf '%016x' $(((1 << 39) | (1 << 38) | (1 << 19) | (1 << 12) | (1 << 2))))
[ "$capeff" = "$want" ] || fail "meshd's effective capabilities are $capeff, want exactly $want"
# ... and with them it reads connection tracking (look follows NAT).
grep -q '^conntrack *on' "$work/status.txt" || fail "conntrack is not read under the unit: $(grep conntrack "$work/status.txt")"

echo "== trace a connection"
# A server on a free loopback port (the kernel picks it), one exchange.
python3 - "$work/port" <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0)); s.listen(8); s.settimeout(20)
with open(sys.argv[1] + ".tmp", "w") as f: f.write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept(); c.recv(100); c.sendall(b"x" * 5000); c.close()
PY
server_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port" 2>/dev/null) || fail "the test server did not start"
python3 -c "
import socket, sys
c = socket.create_connection(('127.0.0.1', $port), timeout=5)
c.sendall(b'hello flowmesh'); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    n += len(b)
c.close(); sys.exit(0 if n == 5000 else 1)" || fail "loopback exchange failed"
wait "$server_pid"; server_pid=""
found=0
for _ in $(seq 1 50); do
  in_ns meshctl flows --json -L "$port" >"$work/flows.json" 2>/dev/null || true
  if grep -q "\"rport\": *$port\|\"lport\": *$port" "$work/flows.json"; then found=1; break; fi
  sleep 0.2
done
[ $found -eq 1 ] || { cat "$work/flows.json"; fail "the connection to :$port is not in meshctl flows"; }
in_ns meshctl flows -L "$port"
grep -q '"comm": *"python3"' "$work/flows.json" || fail "flow not attributed to python3: $(cat "$work/flows.json")"

echo "== stop"
if [ -d /run/systemd/system ]; then
  systemctl stop meshd.service
else
  # The unit's KillSignal, sent from here: the private systemd's own stop
  # logic looks its PIDs up in the host's /proc (it shares it, for meshd's
  # sake), where they name other processes, and follows SIGTERM with an
  # immediate SIGKILL. systemd still sees the exit and records its status.
  kill -TERM "$meshd_pid"
  for _ in $(seq 1 100); do in_ns systemctl is-active --quiet meshd.service || break; sleep 0.1; done
fi
result=$(in_ns systemctl show -p Result --value meshd.service)
status=$(in_ns systemctl show -p ExecMainStatus --value meshd.service)
echo "stopped: Result=$result ExecMainStatus=$status"
[ "$result" = success ] && [ "$status" = 0 ] || fail "meshd did not stop cleanly on SIGTERM (Result=$result, status $status)"
! kill -0 "$meshd_pid" 2>/dev/null || fail "meshd still running after systemctl stop"
meshd_pid=""
[ -d /var/lib/flowmesh ] && [ -n "$(ls /var/lib/flowmesh)" ] || fail "no history in /var/lib/flowmesh"

echo "== purge"
dpkg --purge meshd meshctl >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "dpkg --purge"; }
[ ! -e /usr/sbin/meshd ] && [ ! -e /usr/bin/meshctl ] && [ ! -e /etc/flowmesh/meshd.toml ] &&
  [ ! -e /var/lib/flowmesh ] || fail "purge left files behind"
echo "PASS: packages built, installed, verified, started without root, traced, stopped, purged"
