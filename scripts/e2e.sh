#!/usr/bin/env bash
# End-to-end test of the dashboard in Debian's Chromium, in three parts:
#   1. the single-orchestrator lab (`fo-lab`) on free loopback ports: e2e/dashboard.test.js;
#   2. the three-orchestrator lab (`fo-lab --orchestrators 3`: one orchestrator per region on
#      etcd), started once the first lab has stopped: e2e/coordination.test.js;
#   3. the single-orchestrator lab with reads behind a token (`fo-lab --private`, as a real
#      deployment has it): sign-in, stream tickets, roles: e2e/private.test.js.
#
#   scripts/e2e.sh            # from anywhere; needs PostgreSQL, PowerDNS and etcd (scripts/install-deps.sh)
#
# Installs chromium with apt only when it is missing (never downloads a browser),
# runs `npm ci` in e2e/ only when node_modules is missing or older than the lock file,
# runs on Node 18 (Debian 12's) and later, always stops every lab it
# started (also on failure or Ctrl-C), and runs every part even when an earlier one failed.
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
# npm writes node_modules/.package-lock.json at each install: older than the lock, it is stale.
if [[ ! -f e2e/node_modules/.package-lock.json || e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]]; then
    echo "e2e: npm ci" >&2
    (cd e2e && npm ci --no-audit --no-fund)
fi

# The same build as `cargo test --workspace --all-targets` (dev-dependency features included),
# so that after the tests this builds nothing again.
cargo build --workspace --all-targets

SCRIPT_NAME=e2e
# shellcheck source=scripts/lab-common.sh
source "$ROOT/scripts/lab-common.sh"

# Every lab this script started; each is stopped on exit, whatever happens.
LAB_PIDS=()

stop_all_labs() {
    local status=$?
    for pid in "${LAB_PIDS[@]}"; do stop_lab "$pid" 30; done
    exit "$status"
}
trap stop_all_labs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs test file $2, then stops lab $3 (SIGKILL after $4 s) and says how long part $1 took
# (since $started); returns the tests' exit status.
run_tests_then_stop_lab() {
    local status=0
    (cd e2e && node --test --test-reporter=spec "$2") || status=$?
    stop_lab "$3" "$4"
    echo "e2e: $1 took $((SECONDS - started)) s" >&2
    return "$status"
}

# The status the tests read while the lab starts: with the viewer token once the banner shows it
# (a `--private` lab answers 401 without one), else without a token.
single_lab_has_a_verified_plan() {
    local auth=()
    local viewer
    viewer="$(banner_token viewer "$LAB_LOG")"
    [[ -n "$viewer" ]] && auth=(-H "Authorization: Bearer $viewer")
    curl -fsS "$FO_URL/healthz" >/dev/null 2>&1 &&
        curl -fsS "${auth[@]}" "$FO_URL/api/v1/status" 2>/dev/null |
        node -e 'let d = ""; process.stdin.on("data", (c) => (d += c)).on("end", () => { const s = JSON.parse(d); process.exit(s.plan && s.plan.verified_at ? 0 : 1); });'
}

# Starts a single-orchestrator lab with fo-lab options "$@" on free ports, waits until its plan is
# verified, and exports FO_URL, FO_CONTROL_URL and the tokens its banner shows; sets LAB_PID.
# LAB_LOG names the log.
start_single_lab() {
    local api_port ctl_port
    read -r api_port ctl_port < <(two_free_ports)
    export FO_URL="http://127.0.0.1:$api_port"
    export FO_CONTROL_URL="http://127.0.0.1:$ctl_port"
    target/debug/fo-lab "$@" --listen "127.0.0.1:$api_port" --control "127.0.0.1:$ctl_port" >"$LAB_LOG" 2>&1 &
    LAB_PID=$!
    LAB_PIDS+=("$LAB_PID")
    echo "e2e: lab $* starting on $FO_URL (control $FO_CONTROL_URL), log in $LAB_LOG" >&2
    wait_for_lab "$LAB_PID" "$LAB_LOG" 180 single_lab_has_a_verified_plan
    echo "e2e: lab ready" >&2
    # The lab prints the tokens it generated; the tests act as operator and as viewer.
    FO_OPERATOR_TOKEN="$(banner_token operator "$LAB_LOG")"
    FO_VIEWER_TOKEN="$(banner_token viewer "$LAB_LOG")"
    if [[ -z "$FO_OPERATOR_TOKEN" || -z "$FO_VIEWER_TOKEN" ]]; then
        echo "e2e: the lab banner did not show the operator and viewer tokens" >&2
        exit 1
    fi
    export FO_OPERATOR_TOKEN FO_VIEWER_TOKEN
}

# --- Part 1: one orchestrator ---------------------------------------------------------------
started=$SECONDS
LAB_LOG="$ARTIFACTS/e2e-lab.log"
start_single_lab
single_status=0
run_tests_then_stop_lab "part 1 (one orchestrator)" dashboard.test.js "$LAB_PID" 20 || single_status=$?

# --- Part 2: three orchestrators on etcd ----------------------------------------------------
started=$SECONDS
CLUSTER_CTL_PORT="$(free_port)"
CLUSTER_LOG="$ARTIFACTS/e2e-cluster.log"
# --listen port 0: the lab picks a free port for each orchestrator and prints them.
target/debug/fo-lab --orchestrators 3 --listen 127.0.0.1:0 --control "127.0.0.1:$CLUSTER_CTL_PORT" >"$CLUSTER_LOG" 2>&1 &
CLUSTER_PID=$!
LAB_PIDS+=("$CLUSTER_PID")
echo "e2e: three-orchestrator lab starting (control http://127.0.0.1:$CLUSTER_CTL_PORT), log in $CLUSTER_LOG" >&2

# The banner names each orchestrator's dashboard once every API answers: "  primary  dashboard http://…/   status: …".
cluster_urls() {
    sed -n 's/^  \([a-z]*\) *dashboard \(http:[^ ]*\)\/ .*$/\1=\2/p' "$CLUSTER_LOG" | tr '\n' ' '
}
cluster_printed_three_dashboards() {
    [[ "$(cluster_urls | wc -w)" -eq 3 ]]
}
wait_for_lab "$CLUSTER_PID" "$CLUSTER_LOG" 240 cluster_printed_three_dashboards
urls="$(cluster_urls)"
export FO_CLUSTER_URLS="$urls"
export FO_CLUSTER_CONTROL_URL="http://127.0.0.1:$CLUSTER_CTL_PORT"
FO_CLUSTER_OPERATOR_TOKEN="$(banner_token operator "$CLUSTER_LOG")"
export FO_CLUSTER_OPERATOR_TOKEN
echo "e2e: three-orchestrator lab up: $FO_CLUSTER_URLS" >&2

cluster_status=0
run_tests_then_stop_lab "part 2 (three orchestrators)" coordination.test.js "$CLUSTER_PID" 30 || cluster_status=$?

# --- Part 3: one orchestrator, reads behind a token ------------------------------------------
started=$SECONDS
LAB_LOG="$ARTIFACTS/e2e-private.log"
start_single_lab --private
private_status=0
run_tests_then_stop_lab "part 3 (reads behind a token)" private.test.js "$LAB_PID" 20 || private_status=$?

if [[ $single_status -ne 0 || $cluster_status -ne 0 || $private_status -ne 0 ]]; then
    echo "e2e: FAILED (one orchestrator: exit $single_status; three orchestrators: exit $cluster_status; reads behind a token: exit $private_status)" >&2
    exit 1
fi
