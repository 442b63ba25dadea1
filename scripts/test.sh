#!/usr/bin/env bash
# Runs every test: unit, property, integration (real PostgreSQL with streaming
# replication, real PowerDNS), and the dashboard's browser test when present.
# Installs the system packages it needs first (Debian/Ubuntu).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo test --workspace --all-targets
if [ -x scripts/e2e.sh ]; then
    scripts/e2e.sh
fi
