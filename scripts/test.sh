#!/usr/bin/env bash
# Runs every test: unit, property, integration (real PostgreSQL with streaming
# replication, real PowerDNS), the supply-chain check (cargo-deny against deny.toml,
# scripts/deny.sh), the API contract test (schemathesis against a live lab with auth on,
# scripts/contract.sh), and the dashboard's browser test when present.
# Installs the system packages it needs first (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace --all-targets
# The later checks run even when an earlier one failed; the run fails if any did.
status=0
scripts/deny.sh || status=$?
scripts/contract.sh || status=$?
if [ -x scripts/e2e.sh ]; then
    scripts/e2e.sh || status=$?
fi
exit "$status"
