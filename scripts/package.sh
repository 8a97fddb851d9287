#!/usr/bin/env bash
# Builds the Debian packages meshd_<version>_<arch>.deb and
# meshctl_<version>_<arch>.deb into build/packages/ (CPack, from the build
# tree that scripts/build.sh makes), and lists them.
#   bash scripts/package.sh && sudo dpkg -i build/packages/*.deb
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -f build/build.ninja ] || bash scripts/build.sh
ninja -C build meshd meshctl >/dev/null
(cd build && cpack -G DEB -B "$root/build/packages" >/dev/null)
rm -rf build/packages/_CPack_Packages
ls -1 "$root"/build/packages/*.deb
