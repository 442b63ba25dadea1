#!/usr/bin/env bash
# Runs every test: unit, property, integration (real PostgreSQL with streaming
# replication, real PowerDNS), the API contract test (schemathesis against a live lab with
# auth on, scripts/contract.sh), and the dashboard's browser test when present.
# Installs the system packages it needs first (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace --all-targets
# The browser test runs even when the contract test failed; the run fails if either did.
contract_status=0
scripts/contract.sh || contract_status=$?
if [ -x scripts/e2e.sh ]; then
    scripts/e2e.sh
fi
exit "$contract_status"
