#!/usr/bin/env bash
# Starts the local three-region lab with the dashboard (http://127.0.0.1:8080/).
# Installs PostgreSQL and PowerDNS first when they are missing (Debian/Ubuntu).
# Extra arguments go to `fo-lab` (see `target/debug/fo-lab --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Every binary: `--orchestrators 3` runs failover-orchestrator processes next to fo-lab.
cargo build --workspace --bins
exec target/debug/fo-lab "$@"
