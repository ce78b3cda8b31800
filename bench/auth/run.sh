#!/usr/bin/env bash
# Auth benchmark: login throughput at bcrypt cost 12, and `me` latency while
# logins run flat out. Needs wrk (apt-get install wrk) and the local services.
#   bench/auth/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/services.sh
ensure_postgres; ensure_rabbitmq
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
# The load generator calls subgraphs directly too, as the figures compare (README, "Benchmarks").
export SUBGRAPH_SHARED_SECRET=${SUBGRAPH_SHARED_SECRET:-disabled}
duration=${1:-20}
port=${BENCH_PORT:-4901}
db="bench_auth_$$"
url="http://127.0.0.1:$port/graphql"

cargo build --release --locked -p auth
PORT=$port BCRYPT_COST=12 LOG_LEVEL=warn DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
  EVENTS_EXCHANGE="bench.events.$$" "$CARGO_TARGET_DIR/release/auth" &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  # rabbitmqctl has no delete_exchange: ask the broker directly.
  if command -v rabbitmqctl >/dev/null; then
    rabbitmqctl -q delete_queue "bench.events.$$.unrouted" >/dev/null 2>&1 || true
    for x in "bench.events.$$" "bench.events.$$.unrouted"; do
      rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"bench\">>)." \
        >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT
until curl -sf "http://127.0.0.1:$port/health/live" >/dev/null; do sleep 0.2; done
sleep 1
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

curl -sf "$url" -H 'content-type: application/json' \
  -d '{"query":"mutation{register(email:\"bench@example.com\",password:\"benchmark password 1\"){expiresIn}}"}' >/dev/null
TOKEN=$(curl -sf "$url" -H 'content-type: application/json' \
  -d '{"query":"mutation{login(email:\"bench@example.com\",password:\"benchmark password 1\"){accessToken}}"}' \
  | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
export TOKEN

echo "== login alone (16 connections, ${duration}s)"
wrk -t1 -c16 -d"${duration}s" --timeout 30s -s bench/auth/login.lua "$url" | grep -E "Requests/sec|requests in" | sed 's/^/login: /'
echo "== me alone (4 connections, ${duration}s)"
wrk -t1 -c4 -d"${duration}s" --latency -s bench/auth/me.lua "$url" | grep -E "Latency|50%|90%|99%|Requests/sec"
echo "== login flat out (16 connections) with me alongside (4 connections), ${duration}s"
wrk -t1 -c16 -d"${duration}s" --timeout 30s -s bench/auth/login.lua "$url" > /tmp/bench-login.txt &
login_pid=$!
wrk -t1 -c4 -d"${duration}s" --latency -s bench/auth/me.lua "$url" | grep -E "Latency|50%|90%|99%|Requests/sec" | sed 's/^/me: /'
wait "$login_pid"
grep -E "Requests/sec|requests in|Latency" /tmp/bench-login.txt | sed 's/^/login: /'
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
