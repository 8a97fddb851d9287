#!/usr/bin/env bash
# The page's manifest (ui/assets.txt) as cmake/EmbedUiAssets.cmake reads it:
# a good one becomes a C++ table with every byte and content type (';' kept),
# and a missing file, a malformed line or a path listed twice stops the build
# with the manifest's line and the fix.
# usage: check_ui_manifest.sh EMBED_UI_ASSETS_CMAKE
set -u
script=${1:?usage: check_ui_manifest.sh EMBED_UI_ASSETS_CMAKE}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
cases=0
fail() { echo "FAIL: $*"; status=1; }

mkdir -p "$work/ui/node_modules/lib"
printf '<p>hi</p>\n' >"$work/ui/index.html"
printf '' >"$work/ui/empty.css"
head -c 3000 /dev/urandom >"$work/ui/node_modules/lib/blob.js"

# run MANIFEST_TEXT -> cmake's exit code; its output in $work/out.txt
run() {
    printf '%b' "$1" >"$work/ui/assets.txt"
    rm -f "$work/out.cc"
    cmake -DMANIFEST="$work/ui/assets.txt" -DUI_DIR="$work/ui" -DOUTPUT="$work/out.cc" \
        -P "$script" >"$work/out.txt" 2>&1
}

cases=$((cases + 1))
if run '# a comment\n\n/ index.html text/html; charset=utf-8\n/e.css empty.css text/css\n/lib/blob.js node_modules/lib/blob.js text/javascript\n'; then
    grep -q '{"/", "text/html; charset=utf-8", ' "$work/out.cc" || fail "the content type lost its ';'"
    grep -q 'kFile2), 3000)' "$work/out.cc" || fail "blob.js is not 3000 bytes"
    grep -q 'kFile1), 0)' "$work/out.cc" || fail "an empty file is not an empty body"
    grep -q 'return {kAssets, 3};' "$work/out.cc" || fail "the table does not hold 3 files"
    # The bytes themselves: index.html's first ones.
    grep -q '0x3c,0x70,0x3e,0x68,0x69' "$work/out.cc" || fail "index.html's bytes are not in the table"
else
    fail "a good manifest failed: $(cat "$work/out.txt")"
fi

# expect_error MANIFEST_TEXT "WORDS THE MESSAGE MUST HOLD"
expect_error() {
    cases=$((cases + 1))
    if run "$1"; then
        fail "'$1' was accepted"
    elif ! tr -s ' \n' ' ' <"$work/out.txt" | grep -qF "$2"; then
        fail "'$1': the error does not say '$2': $(cat "$work/out.txt")"
    fi
}
expect_error '/ index.html text/html\n/lib/cytoscape.min.js node_modules/cytoscape/dist/cytoscape.min.js text/javascript\n' \
    'assets.txt:2: '"$work"'/ui/node_modules/cytoscape/dist/cytoscape.min.js (served at /lib/cytoscape.min.js) is missing; run `bash scripts/setup.sh` (it runs `npm ci` in ui/)'
expect_error '/ index.html\n' "assets.txt:1: '/ index.html' is not 'URL_PATH FILE CONTENT_TYPE'"
expect_error 'index.html index.html text/html\n' "assets.txt:1: 'index.html index.html text/html' is not"
expect_error '/ index.html text/html\n/ index.html text/html\n' 'assets.txt:2: / is listed twice'
expect_error '/ index.html text/"html\n' 'no quotes or backslashes'

[ "$status" = 0 ] && echo "ok: $cases manifests"
exit "$status"
