#!/usr/bin/env bash
# Resident memory of the router while many idle sockets are open against it.
#   bench/http/idle_sockets.sh [count] [router binary]
# Starts the router (release build, unless a binary is given, e.g. one built
# from another commit), then opens `count` (1,000) sockets of each kind and
# prints the process's VmRSS (/proc/<pid>/status) before and while they are open:
#   - silent: connected, nothing sent (what HEADER_READ_TIMEOUT closes);
#   - kept alive: one request answered, then idle (what KEEP_ALIVE_TIMEOUT closes).
# Both timeouts are set long here so the sockets stay open while measured.
# Then, with the defaults of a binary that has them, how long the server takes
# to close silent sockets. Needs python3 and curl; no database (the router only).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
# The load generator calls subgraphs directly too, as the figures compare (README, "Benchmarks").
export SUBGRAPH_SHARED_SECRET=${SUBGRAPH_SHARED_SECRET:-disabled}
count=${1:-1000}
binary=${2:-}
port=${BENCH_PORT:-4870}
if [[ -z "$binary" ]]; then
  cargo build --release --locked -p router --bin router
  binary="$CARGO_TARGET_DIR/release/router"
fi
ulimit -n $((count * 2 + 256))

start_router() { # extra VAR=value settings
  env PORT=$port ADMIN_PORT=none SUPERGRAPH_PATH=schema/supergraph.graphql LOG_LEVEL=error JWKS_URL=none \
    RATE_LIMIT_ENABLED=false TOKIO_WORKER_THREADS=1 "$@" "$binary" &
  router=$!
  until curl -sf "http://127.0.0.1:$port/health/live" >/dev/null; do sleep 0.1; done
}
stop_router() { kill "$router" 2>/dev/null || true; wait "$router" 2>/dev/null || true; }
trap stop_router EXIT

measure() { # mode: silent | kept-alive | closed-after
  python3 - "$router" "$port" "$count" "$1" <<'PY'
import socket, sys, time

pid, port, count, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def rss_kib():
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

def server_fds():
    import os
    return len(os.listdir(f"/proc/{pid}/fd"))

def wait_until(condition, limit=60):
    deadline = time.time() + limit
    while not condition():
        if time.time() > deadline:
            raise SystemExit(f"gave up after {limit}s")
        time.sleep(0.05)

request = b"GET /health/live HTTP/1.1\r\nhost: bench\r\n\r\n"
before_rss, before_fds = rss_kib(), server_fds()
sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
if mode == "kept-alive":
    for s in sockets:
        s.sendall(request)
    for s in sockets:
        answer = b""
        while not answer.endswith(b"}"):  # the probe's JSON body ends the response
            answer += s.recv(4096)
# Every socket accepted by the server (one descriptor each), then let it settle.
wait_until(lambda: server_fds() >= before_fds + count)
if mode == "closed-after":
    opened = time.time()
    wait_until(lambda: server_fds() < before_fds + count // 100, limit=120)
    print(f"silent sockets closed by the server after {time.time() - opened:.1f} s")
else:
    time.sleep(1)
    during = rss_kib()
    print(f"{mode}: RSS {before_rss / 1024:.1f} MiB before, {during / 1024:.1f} MiB with {count} sockets open "
          f"(+{(during - before_rss) / count:.1f} KiB per socket)")
for s in sockets:
    s.close()
PY
}

echo "router: $binary"
for mode in silent kept-alive; do
  start_router HEADER_READ_TIMEOUT=10m KEEP_ALIVE_TIMEOUT=10m
  # Warm up what a first request initialises, so it is not counted.
  curl -sf "http://127.0.0.1:$port/health/live" >/dev/null
  measure "$mode"
  stop_router
done
if grep -qa HEADER_READ_TIMEOUT "$binary"; then
  start_router
  measure closed-after
  stop_router
else
  echo "this binary has no HEADER_READ_TIMEOUT: silent sockets stay open"
fi
