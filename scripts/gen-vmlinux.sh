#!/usr/bin/env bash
# Regenerates bpf/vmlinux/<arch>/vmlinux.h from the running kernel's BTF.
# The header is committed so builds need neither BTF nor bpftool's dump on the
# build host; run this on a machine of the target architecture to refresh it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
btf=${1:-/sys/kernel/btf/vmlinux}
case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac
[ -r "$btf" ] || { echo "gen-vmlinux: $btf is not readable; this kernel has no BTF (CONFIG_DEBUG_INFO_BTF=y is needed)" >&2; exit 1; }
command -v bpftool >/dev/null || { echo "gen-vmlinux: bpftool not found; run scripts/setup.sh" >&2; exit 1; }
out="$here/bpf/vmlinux/$arch/vmlinux.h"
mkdir -p "$(dirname "$out")"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l < "$out") lines)"
