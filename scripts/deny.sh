#!/usr/bin/env bash
# Supply chain: cargo-deny against deny.toml — licenses, sources, bans (denied crates,
# wildcard requirements; duplicate versions are listed as warnings).
#
#   scripts/deny.sh                              bans, licenses, sources (CI)
#   scripts/deny.sh --advisories DIR             also RustSec advisories, from a checkout of
#                                                github.com/rustsec/advisory-db in DIR (CI has no
#                                                github.com; nothing is fetched)
#
# cargo-deny is built from crates.io (the version below, --locked) into target/tools the first
# time (about a minute on 2 cores), then reused.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

VERSION=0.20.2
TOOLS="$ROOT/target/tools"
DENY="$TOOLS/bin/cargo-deny"
if ! "$DENY" --version 2>/dev/null | grep -qx "cargo-deny $VERSION"; then
    echo "deny: building cargo-deny $VERSION into $TOOLS" >&2
    # A debug build: a third of the release build's time, and fast enough for one check.
    cargo install --quiet --locked --debug --root "$TOOLS" "cargo-deny@$VERSION"
fi

checks=(bans licenses sources)
config="$ROOT/deny.toml"
offline=()
if [[ "${1:-}" == "--advisories" ]]; then
    db="$(cd "${2:?--advisories needs the directory of an advisory-db git repository}" && pwd)"
    git -C "$db" rev-parse --verify -q refs/heads/main >/dev/null ||
        { echo "deny: $db is not a git repository of advisory-db with a main branch" >&2; exit 2; }
    # cargo-deny opens the default database (github.com/RustSec/advisory-db) at
    # <db-path>/advisory-db-3157b0e258782691; put a clone of the given one there and tell it not
    # to fetch. Offline, it refuses a database older than maximum-db-staleness: the age is
    # printed, and accepted up to FO_ADVISORY_MAX_AGE_DAYS (default 180).
    work="$TOOLS/advisory-dbs"
    rm -rf "$work" && mkdir -p "$work"
    git clone -q --branch main "$db" "$work/advisory-db-3157b0e258782691"
    dated="$(git -C "$work/advisory-db-3157b0e258782691" show -s --format=%cI HEAD)"
    echo "deny: advisory database at $(git -C "$db" rev-parse --short main), committed $dated" >&2
    config="$work/deny.toml"
    sed "s|^\[advisories\]|[advisories]\ndb-path = \"$work\"\nmaximum-db-staleness = \"P${FO_ADVISORY_MAX_AGE_DAYS:-180}D\"|" \
        "$ROOT/deny.toml" >"$config"
    checks=(advisories "${checks[@]}")
    offline=(--offline)
fi

"$DENY" --log-level warn --manifest-path "$ROOT/Cargo.toml" --config "$config" --locked "${offline[@]}" check --show-stats "${checks[@]}"
