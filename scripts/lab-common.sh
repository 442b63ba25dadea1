# Shell functions the scripts that drive a lab share (scripts/e2e.sh, scripts/contract.sh).
# Source it after setting SCRIPT_NAME (the prefix of every message, e.g. "e2e").
# Needs python3 (scripts/install-deps.sh makes sure it is there).

# A free loopback port below the kernel's ephemeral range (as fo-lab picks its own), so no
# outgoing connection can take it before the lab binds it.
free_port() {
    python3 - <<'PY'
import random, socket
low = 32768
try:
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except OSError:
    pass
for _ in range(200):
    port = random.randrange(10000, low) if low >= 11000 else 0
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        port = s.getsockname()[1]
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
PY
}

# Two distinct free ports, on one line.
two_free_ports() {
    local a b
    a="$(free_port)"
    b="$(free_port)"
    while [[ "$b" == "$a" ]]; do b="$(free_port)"; done
    echo "$a $b"
}

# Stops lab $1 (Ctrl-C, as an operator would; SIGKILL after $2 seconds); a stopped one is left alone.
stop_lab() {
    local pid="$1" grace="$2"
    if kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || true
        for _ in $(seq 1 $((grace * 2))); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$SCRIPT_NAME: lab $pid did not stop within $grace s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# Runs command "$4 …" every 0.5 s, at most $3 times, until it succeeds, while lab $1 (log in $2)
# runs; when the lab exits or the tries run out, shows the log's last lines and fails the run.
wait_for_lab() {
    local pid="$1" log="$2" tries="$3"
    shift 3
    for _ in $(seq 1 "$tries"); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$SCRIPT_NAME: the lab exited during start-up; last lines of $log:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        "$@" && return 0
        sleep 0.5
    done
    echo "$SCRIPT_NAME: the lab was not ready within $((tries / 2)) s ($1); last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
}

# The token the lab banner in log $2 shows for role $1 (operator, viewer).
banner_token() {
    sed -n "s/^ *$1 token  *\([^ ]*\).*$/\1/p" "$2" | head -n 1
}
