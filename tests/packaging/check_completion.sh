#!/usr/bin/env bash
# The bash completions complete: each case sources the completion file in a
# clean bash, sets COMP_WORDS/COMP_CWORD as bash would for the command line
# (the last word is the one being completed) and compares COMPREPLY, sorted,
# with what a user should be offered.
# usage: check_completion.sh COMPLETION_DIR
set -u
dir=${1:?usage: check_completion.sh COMPLETION_DIR}
status=0
cases=0

# expect FILE "EXPECTED WORDS" WORD...   (the command line, last word at point)
expect() {
    local file=$1 want=$2 got
    shift 2
    cases=$((cases + 1))
    # shellcheck disable=SC2016
    got=$(bash --norc --noprofile -c '
        file=$1; shift
        source "$file" || exit 3
        complete -p "$(basename "$file")" >/dev/null || { echo "no complete -F for $(basename "$file")"; exit 4; }
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        fn=$(complete -p "$(basename "$file")" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        "$fn"
        printf "%s\n" "${COMPREPLY[@]}" | sort | xargs' _ "$dir/$file" "$@" 2>&1)
    want=$(printf '%s\n' $want | sort | xargs)
    if [ "$got" != "$want" ]; then
        echo "FAIL: '$*<TAB>': got '$got', want '$want'"
        status=1
    fi
}

# meshctl: commands, options per command, option values, keys subcommands.
expect meshctl "look" meshctl lo
expect meshctl "look map flows endpoints peers keys watch top status" meshctl ''
expect meshctl "map" meshctl ma
expect meshctl "text json dot" meshctl map --format ''
expect meshctl "--compare-to --change-factor" meshctl map --c
expect meshctl "--baseline-since --baseline-until" meshctl map --since 1h --b
expect meshctl "1h 1d 7d" meshctl map --compare-to ''
expect meshctl "now 5m 15m 1h 6h 1d 7d" meshctl map --baseline-since ''
expect meshctl "workload pgid pid" meshctl map --workload nginx --group-by ''
expect meshctl "--format" meshctl look --fo
expect meshctl "tree json dot" meshctl look --format ''
expect meshctl "json" meshctl look --format = j
expect meshctl "in out both" meshctl look 10.0.0.5:80 --direction ''
expect meshctl "--hop-timeout --help" meshctl look --h
expect meshctl "--limit --lport" meshctl flows --l
expect meshctl "--time --timestamp" meshctl flows --time
expect meshctl "--all" meshctl endpoints --a
expect meshctl "bytes rx tx pid rtt" meshctl top --sort ''
expect meshctl "--no-listen" meshctl watch --n
expect meshctl "" meshctl top -n ''
expect meshctl "list install use remove" meshctl keys ''
expect meshctl "use" meshctl --socket /tmp/s keys --timeout 5s u
expect meshctl "" meshctl keys list ''
expect meshctl "keys" meshctl --json k
expect meshctl "--socket --json --help --version" meshctl --
# meshd: options, enum values, files and directories.
expect meshd "--probe-mode --probe-interval" meshd --probe-
expect meshd "--probe-mode" meshd --probe-m
expect meshd "auto streaming polling" meshd --probe-mode ''
expect meshd "streaming" meshd --data-dir /tmp --probe-mode s
expect meshd "text json" meshd --log-format ''
expect meshd "all self /run/netns/" meshd --netns ''
# --netns is a list: the last item is completed, all only alone.
expect meshd "self,self self,/run/netns/" meshd --netns self,
expect meshd "debug info warn error" meshd --log-level = ''
expect meshd "ipv4 ipv6" meshd --family ip
expect meshd "" meshd --bind ''
expect meshd "--print-config --proc-root --probe-interval --probe-mode" meshd --pr

# Files and directories: a scratch tree.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/state" && touch "$tmp/meshd.toml" "$tmp/cluster.key"
expect meshd "$tmp/cluster.key" meshd --cluster-key-file "$tmp/cl"
expect meshd "$tmp/meshd.toml" meshd --config "$tmp/me"
expect meshd "$tmp/state" meshd --data-dir "$tmp/"
expect meshctl "$tmp/meshd.toml" meshctl --socket "$tmp/me"

# map --host: the members, from `meshctl peers --json` (a stand-in meshctl
# that prints what the real one would).
mkdir "$tmp/bin"
cat >"$tmp/bin/meshctl" <<'STUB'
#!/bin/sh
[ "$1 $2" = "peers --json" ] || exit 1
echo '[{"name":"web-1","addr":"10.213.0.2:7946","state":"alive"},{"name":"app-1","addr":"10.213.0.3:7946","state":"alive"}]'
STUB
chmod +x "$tmp/bin/meshctl"
saved_path=$PATH
export PATH="$tmp/bin:$PATH"
expect meshctl "web-1" meshctl map --host w
expect meshctl "app-1 web-1" meshctl map --host ''
export PATH=$saved_path
expect meshctl "" meshctl map --workload ''

[ $status -eq 0 ] && echo "ok: $cases completions"
exit $status
