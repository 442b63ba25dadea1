#!/usr/bin/env bash
# Installs the system packages the local lab and its tests need, only when
# they are missing (Debian/Ubuntu, apt-get):
#   postgresql            server binaries (initdb, postgres, pg_basebackup)
#   pdns-server           PowerDNS Authoritative (/usr/sbin/pdns_server)
#   pdns-backend-sqlite3  its gsqlite3 backend and schema
#   sqlite3               CLI used to create the PowerDNS database
#   bind9-dnsutils        dig, used by the DNS tests
#   procps                kill/pgrep, used by the process supervisor and tests
#   haproxy               HAProxy, for the haproxy provider's tests and bench
#   bind9, bind9-utils    BIND 9 named (RFC 2136 provider tests), tsig-keygen
#   etcd-server           etcd 3.4 (/usr/bin/etcd): the coordination backend's
#                         tests and the three-orchestrator lab start their own members
#   protobuf-compiler     protoc, needed at build time by the etcd-client crate
#   prometheus-node-exporter  node_exporter, for the metric checks' tests
#   prometheus            Prometheus and promtool: the PromQL check's tests, and
#                         `promtool check rules` / `test rules` on the shipped alert rules
#   python3-venv          only when `python3 -m venv` does not work already
# and moto[server] (the AWS API emulator the Route 53 provider is tested
# against) from PyPI into a virtualenv at target/moto-venv, not globally.
# Extra package names given as arguments are installed too (when missing).
#
# Quiet when everything is present; prints what it installs.  Runs
# `apt-get update` once, and only when something has to be installed.
#
# Note: Debian's postinst scripts may create and start a "main" PostgreSQL
# cluster on port 5432 and a pdns service on port 53 where an init system is
# running, etcd-server's an etcd service on 127.0.0.1:2379/2380, and the
# prometheus packages theirs on :9090 and :9100.  The lab
# never uses these (it runs its own servers on free ports of 127.0.0.x), so
# they are left alone.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-deps: not root and sudo is not available" >&2
        exit 1
    fi
fi

# Same lookup as the lab's pg_bin_dir(): $PG_BIN, pg_config --bindir, the
# highest /usr/lib/postgresql/*/bin.
have_initdb() {
    if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1; then
        local bindir
        bindir=$(pg_config --bindir 2>/dev/null || true)
        if [ -n "$bindir" ] && [ -x "$bindir/initdb" ]; then
            return 0
        fi
    fi
    local f
    for f in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$f" ] && return 0
    done
    return 1
}

have_pkg() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
have_initdb || missing+=(postgresql)
[ -x /usr/sbin/pdns_server ] || missing+=(pdns-server)
have_pkg pdns-backend-sqlite3 || missing+=(pdns-backend-sqlite3)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
command -v dig >/dev/null 2>&1 || missing+=(bind9-dnsutils)
if ! command -v pgrep >/dev/null 2>&1 || ! { [ -x /usr/bin/kill ] || [ -x /bin/kill ]; }; then
    missing+=(procps)
fi
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
[ -x /usr/sbin/named ] || missing+=(bind9)
command -v tsig-keygen >/dev/null 2>&1 || missing+=(bind9-utils)
[ -x /usr/bin/etcd ] || missing+=(etcd-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
[ -x /usr/bin/prometheus-node-exporter ] || missing+=(prometheus-node-exporter)
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || missing+=(prometheus)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
fi
for extra in "$@"; do
    have_pkg "$extra" || missing+=("$extra")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
    echo "install-deps: done"
fi

# moto (AWS API emulator) for the Route 53 provider tests, in a venv under target/.
venv="$(cd "$(dirname "$0")/.." && pwd)/target/moto-venv"
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "install-deps: installing moto[server] into $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]'
    echo "install-deps: moto installed"
fi
