#!/usr/bin/env bash
# Installs every Debian package flowmesh needs to build, test, benchmark and
# run its lab. Idempotent: packages already present are left alone. Needs root
# only when something is missing; otherwise it just says all are present.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang llvm
  # libFuzzer and the sanitizer runtimes for clang (tests/fuzz, scripts/build.sh --fuzz)
  libclang-rt-dev
  # compiler cache: scripts/build.sh keeps it outside the clone
  # (/var/cache/flowmesh-ccache), so a second run on one machine rebuilds little
  ccache
  # kernel side
  bpftool libbpf-dev libelf-dev zlib1g-dev
  # libraries named in DESIGN.md
  libmnl-dev libasio-dev capnproto libcapnp-dev librocksdb-dev libcli11-dev
  libgtest-dev libgmock-dev libssl-dev
  # lab, tests and benchmarks
  iproute2 procps curl nginx redis-server memcached libbpf-tools python3 time
  # the lab's map page from a browser on this machine (topology.sh ui W PORT)
  socat
  # NAT: nft rules in the conntrack kernel tests and the lab's NAT hosts,
  # redis-cli through a VIP, capsh (a meshd without CAP_NET_ADMIN)
  nftables redis-tools libcap2-bin
  # promtool, which checks meshd's --metrics-listen output in a kernel test
  prometheus
  # docs/api.schema.json against the API's answers (tests/unit/api_schema_check.py)
  python3-jsonschema
  # man pages: rendered and checked by tests/packaging
  groff-base man-db
  # the .debs (CPack, dpkg-shlibdeps), their unit (systemd-analyze verify,
  # systemctl; a private systemd via unshare/nsenter where it is not PID 1)
  dpkg-dev systemd util-linux passwd
  # reading container runtimes' metadata files (config.v2.json, OCI config.json)
  nlohmann-json3-dev
  # vagrant validate of vagrant/Vagrantfile (no hypervisor needed)
  vagrant
  # the map page's browser tests (tests/ui, tests/integration/ui_browser_test.py)
  chromium chromium-driver python3-selenium
)
# npm for ui/'s pinned graph library, from Debian only where no npm is on the
# machine (a developer's own node install is left alone).
command -v npm >/dev/null 2>&1 || packages+=(npm)

# ui/node_modules from ui/package-lock.json (exact versions): meshd's build
# embeds files from it (ui/assets.txt). Again whenever the lock file is newer.
ui_modules() {
  local ui
  ui=$(cd "$(dirname "$0")/.." && pwd)/ui
  if [ ! -d "$ui/node_modules" ] || [ "$ui/package-lock.json" -nt "$ui/node_modules" ]; then
    # --ignore-scripts: the page needs only the packages' files; no install script
    # of theirs (or of a compromised dependency) runs here, often as root.
    echo "setup: npm ci in $ui"
    (cd "$ui" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) ||
      { echo "setup: npm ci in $ui failed: the npm registry must be reachable once" >&2; exit 1; }
    touch "$ui/node_modules"
  fi
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  ui_modules
  exit 0
fi

# Without root nothing can be installed; with everything present (above) a
# developer's own account needs nothing more, so only now is root required.
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing ${#missing[@]} of ${#packages[@]} packages: ${missing[*]}" >&2
  echo "setup: install them as root: sudo bash scripts/setup.sh" >&2
  echo "setup:   (or: sudo apt-get install --no-install-recommends ${missing[*]})" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged servers on install; the lab starts its own copies,
# and of prometheus only promtool is used.
for svc in nginx redis-server memcached prometheus; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done
ui_modules
echo "setup: done"
