#!/usr/bin/env bash
# The man pages render without a single warning: groff -ww on the ASCII and
# UTF-8 terminals (what man(1) uses) and on its default device; man(1) itself
# with --warnings in the C and UTF-8 locales; lexgrog can read their NAME line
# (what mandb and apropos index); and each .TH names the file's page and section.
# usage: check_man_render.sh MAN_DIR
set -u
dir=${1:?usage: check_man_render.sh MAN_DIR}
command -v groff >/dev/null || { echo "FAIL: groff missing (Debian groff-base; run scripts/setup.sh)"; exit 1; }

status=0
fail() { echo "FAIL: $*"; status=1; }

# Runs "$@" and fails when it exits non-zero or writes anything to stderr.
quiet() {
    local what=$1 err
    shift
    if ! err=$("$@" 2>&1 >/dev/null); then
        fail "$what exited non-zero: $err"
    elif [ -n "$err" ]; then
        fail "$what warned:"$'\n'"$err"
    fi
}

pages=("$dir"/*.[1-8])
[ -e "${pages[0]}" ] || { echo "FAIL: no man pages in $dir"; exit 1; }
for page in "${pages[@]}"; do
    base=$(basename "$page")
    name=${base%.*} section=${base##*.}
    quiet "groff -man -ww -z $base" groff -man -ww -z "$page"
    for dev in ascii utf8; do
        quiet "groff -man -ww -T$dev $base" env LC_ALL=C.UTF-8 groff -man -ww -T"$dev" "$page"
    done
    if command -v man >/dev/null; then
        for loc in C C.UTF-8; do
            quiet "LC_ALL=$loc man --warnings -l $base" \
                env LC_ALL=$loc MANWIDTH=80 MAN_KEEP_FORMATTING= man --warnings -l "$page"
        done
    else
        echo "note: man(1) missing (Debian man-db); checked with groff only"
    fi
    if command -v lexgrog >/dev/null; then
        out=$(lexgrog "$page" 2>&1) || fail "lexgrog cannot parse the NAME section of $base: $out"
        [[ $out == *"\"$name - "* ]] || fail "lexgrog: NAME of $base is not '$name - ...': $out"
    fi
    th=$(grep -m1 '^\.TH ' "$page")
    [[ $th == ".TH ${name^^} $section "* ]] || fail "$base: '$th' is not '.TH ${name^^} $section ...'"
    echo "$base: rendered"
done
[ $status -eq 0 ] && echo ok
exit $status
