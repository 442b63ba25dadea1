#!/usr/bin/env bash
# End-to-end test of the dashboard: starts the three-region lab on free loopback
# ports and drives Debian's Chromium against it (e2e/dashboard.test.js).
#
#   scripts/e2e.sh            # from anywhere; needs PostgreSQL and PowerDNS (scripts/install-deps.sh)
#
# Installs chromium with apt only when it is missing (never downloads a browser),
# runs `npm ci` in e2e/ only when node_modules is missing, always stops the lab.
# Screenshots land in artifacts/ (gitignored); FO_UPDATE_DOCS=1 also refreshes docs/dashboard.png.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
ARTIFACTS="$ROOT/artifacts"
mkdir -p "$ARTIFACTS"
CHROMIUM=/usr/bin/chromium

if [[ ! -x "$CHROMIUM" ]]; then
    echo "e2e: installing chromium (apt)" >&2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "e2e: installing nodejs and npm (apt)" >&2
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get update
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
fi
if [[ ! -d e2e/node_modules ]]; then
    echo "e2e: npm ci" >&2
    (cd e2e && npm ci --no-audit --no-fund)
fi

# The same build as `cargo test --workspace --all-targets` (dev-dependency features included),
# so that after the tests this builds nothing again.
cargo build --workspace --all-targets

free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}
API_PORT="$(free_port)"
CTL_PORT="$(free_port)"
while [[ "$CTL_PORT" == "$API_PORT" ]]; do CTL_PORT="$(free_port)"; done
export FO_URL="http://127.0.0.1:$API_PORT"
export FO_CONTROL_URL="http://127.0.0.1:$CTL_PORT"
LAB_LOG="$ARTIFACTS/e2e-lab.log"

target/debug/fo-lab --listen "127.0.0.1:$API_PORT" --control "127.0.0.1:$CTL_PORT" >"$LAB_LOG" 2>&1 &
LAB_PID=$!

stop_lab() {
    local status=$?
    if kill -0 "$LAB_PID" 2>/dev/null; then
        kill -INT "$LAB_PID" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 "$LAB_PID" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$LAB_PID" 2>/dev/null; then
            echo "e2e: the lab did not stop within 20 s; killing it" >&2
            kill -KILL "$LAB_PID" 2>/dev/null || true
        fi
    fi
    wait "$LAB_PID" 2>/dev/null || true
    exit "$status"
}
trap stop_lab EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "e2e: lab starting on $FO_URL (control $FO_CONTROL_URL), log in $LAB_LOG" >&2
ready=""
for _ in $(seq 1 180); do
    if ! kill -0 "$LAB_PID" 2>/dev/null; then
        echo "e2e: the lab exited during start-up; last lines of $LAB_LOG:" >&2
        tail -n 30 "$LAB_LOG" >&2
        exit 1
    fi
    if curl -fsS "$FO_URL/healthz" >/dev/null 2>&1 &&
        curl -fsS "$FO_URL/api/v1/status" 2>/dev/null |
            node -e 'let d = ""; process.stdin.on("data", (c) => (d += c)).on("end", () => { const s = JSON.parse(d); process.exit(s.plan && s.plan.verified_at ? 0 : 1); });'; then
        ready=1
        break
    fi
    sleep 0.5
done
if [[ -z "$ready" ]]; then
    echo "e2e: no verified plan within 90 s; last lines of $LAB_LOG:" >&2
    tail -n 30 "$LAB_LOG" >&2
    exit 1
fi
echo "e2e: lab ready" >&2
# The lab prints the tokens it generated; the tests act as operator and as viewer.
FO_OPERATOR_TOKEN="$(sed -n 's/^ *operator token  *\([^ ]*\).*$/\1/p' "$LAB_LOG" | head -n 1)"
FO_VIEWER_TOKEN="$(sed -n 's/^ *viewer token  *\([^ ]*\).*$/\1/p' "$LAB_LOG" | head -n 1)"
if [[ -z "$FO_OPERATOR_TOKEN" || -z "$FO_VIEWER_TOKEN" ]]; then
    echo "e2e: the lab banner did not show the operator and viewer tokens" >&2
    exit 1
fi
export FO_OPERATOR_TOKEN FO_VIEWER_TOKEN

set +e
(cd e2e && node --test --test-concurrency=1 --test-reporter=spec dashboard.test.js)
status=$?
set -e
exit "$status"
