#!/usr/bin/env bash
# The page's tests without a lab (ctest ui.page): the lab browser test
# (tests/integration/ui_browser_test.py) against the fixture server with a
# token (the login form, then the map), the same without a token (the login
# form and a 401), then tests/ui/ui_page_test.py.
#   run.sh [SCREENSHOT.png]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python=/usr/bin/python3
work=$(mktemp -d /tmp/fm-ui-test.XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

[ -d "$here/../../ui/node_modules" ] ||
  { echo "ui tests: ui/node_modules is missing: run scripts/setup.sh" >&2; exit 1; }
umask 077
echo "fixture-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" > "$work/token"
"$python" "$here/fixture_server.py" --token-file "$work/token" > "$work/server.out" 2>&1 &
server=$!
for _ in $(seq 50); do grep -q '^listening on ' "$work/server.out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/server.out")
[ -n "$url" ] || { echo "ui tests: fixture server did not start:" >&2; cat "$work/server.out" >&2; exit 1; }

passed=0 failed=0
run() { if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }
run "$python" "$here/../integration/ui_browser_test.py" "$url" --token-file "$work/token" \
  --screenshot "${1:-$work/ui_map.png}" --expect-label nginx.service --expect-label redis-server.service
run "$python" "$here/../integration/ui_browser_test.py" "$url" --expect-login
kill "$server"; server=
run "$python" "$here/ui_page_test.py"
echo "ui: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
