#!/usr/bin/env bash
# Router load test: a one-fetch query and a three-sequential-fetch query,
# through the router and (one-fetch) straight at the subgraph, 50 connections;
# and the edge's cost: the one-fetch query with a verified bearer token and rate
# limits (quotas it cannot reach) against the same router with both off.
#   bench/router/run.sh [seconds]
# Every process (subgraphs and routers) runs one worker thread unless
# TOKIO_WORKER_THREADS says otherwise: on this 2-core machine wrk, the subgraphs
# and the router share the cores, and each process gets about one, as a
# container with a CPU limit of 1 would. TOKIO_WORKER_THREADS=2 measures the
# processes each spreading over both cores instead.
# Needs wrk (apt-get install wrk) and node with `npm ci` done in schema/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
# The load generator calls subgraphs directly too, as the figures compare (README, "Benchmarks").
export SUBGRAPH_SHARED_SECRET=${SUBGRAPH_SHARED_SECRET:-disabled}
duration=${1:-10}
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}
echo "worker threads per process: $TOKIO_WORKER_THREADS"
port=${BENCH_ROUTER_PORT:-4800}
admin_port=$((port + 1000)) # the router's /metrics
supergraph=$(mktemp --suffix .graphql)
issuer=$(mktemp)

cargo build --release --locked -p router --bin router --example bench_subgraphs
"$CARGO_TARGET_DIR/release/examples/bench_subgraphs" sdl | node schema/compose.mjs --stdin > "$supergraph"
BENCH_ISSUER_FILE="$issuer" "$CARGO_TARGET_DIR/release/examples/bench_subgraphs" &
subgraphs=$!
until [ -s "$issuer" ]; do sleep 0.1; done
jwks_url=$(sed -n 1p "$issuer"); export BENCH_TOKEN; BENCH_TOKEN=$(sed -n 2p "$issuer")
# The edge off: no token verification, no rate limits.
PORT=$port ADMIN_PORT=$admin_port SUPERGRAPH_PATH="$supergraph" LOG_LEVEL=warn JWKS_URL=none \
  RATE_LIMIT_ENABLED=false "$CARGO_TARGET_DIR/release/router" &
router=$!
# The edge on: tokens verified against the issuer's JWKS, per-IP and per-user limits checked.
PORT=$((port + 10)) SUPERGRAPH_PATH="$supergraph" LOG_LEVEL=warn JWKS_URL="$jwks_url" \
  RATE_LIMIT_IP=1000000000/1m RATE_LIMIT_USER=1000000000/1m "$CARGO_TARGET_DIR/release/router" &
edge_router=$!
cleanup() {
  kill "$router" "$edge_router" "$subgraphs" 2>/dev/null || true; wait 2>/dev/null || true
  rm -f "$supergraph" "$issuer"
}
trap cleanup EXIT
until curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null \
  && curl -sf "http://127.0.0.1:$((port + 10))/health/ready" >/dev/null; do sleep 0.2; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # label url script [router pid]
  echo "== $1"
  local r0 s0 out requests pid=${4:-$router}
  r0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$subgraphs")
  out=$(wrk -t2 -c50 -d"${duration}s" --latency -s "bench/router/$3" "$2")
  echo "$out" | grep -E "^\s+(50|90|99)%|Requests/sec"
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/ {print int($2)}')
  # CPU time per request (clock ticks are 10 ms), to compare where the work goes.
  echo "CPU per request: router $(( ($(cpu_ticks "$pid") - r0) * 10000 / requests )) us," \
       "subgraphs $(( ($(cpu_ticks "$subgraphs") - s0) * 10000 / requests )) us"
}
# Warm the plan cache and connection pools.
wrk -t1 -c10 -d2s -s bench/router/three_fetches.lua "http://127.0.0.1:$port/graphql" >/dev/null
wrk -t1 -c10 -d2s -s bench/router/one_fetch_token.lua "http://127.0.0.1:$((port + 10))/graphql" >/dev/null
# The router's own time per operation from its microsecond histogram: the
# bucket bound below which a quantile of the operations since `snapshot` fell.
overhead_buckets() { curl -s "http://127.0.0.1:$admin_port/metrics" | grep '^router_overhead_seconds_bucket'; }
overhead_quantile() { # quantile snapshot
  overhead_buckets | paste -d' ' - <(echo "$2") | awk -v q="$1" '
    { match($1, /le="[^"]+"/); le = substr($1, RSTART + 4, RLENGTH - 5); n[NR] = $2 - $4; b[NR] = le }
    END { total = n[NR]; for (i = 1; i <= NR; i++) if (n[i] >= q * total) {
            printf "%s", (b[i] == "+Inf" ? "over 0.1 s" : "<= " b[i] * 1000 " ms"); exit } }'
}
# Direct and through the router twice, interleaved: runs on a shared machine drift.
snapshot=$(overhead_buckets)
direct=0 routed=0
for _ in 1 2; do
  run "one fetch, direct to the products subgraph" "http://127.0.0.1:4801/graphql" one_fetch.lua
  direct=$((direct + rps))
  run "one fetch, through the router" "http://127.0.0.1:$port/graphql" one_fetch.lua
  routed=$((routed + rps))
done
echo "through the router / direct: $((routed * 100 / direct))%"
echo "router's own time per operation (router_overhead_seconds): p50 $(overhead_quantile 0.5 "$snapshot")," \
     "p99 $(overhead_quantile 0.99 "$snapshot")"
echo "router RSS under load: $(awk '/VmRSS/ {print $2, $3}' /proc/$router/status)"
run "one fetch, through the router, edge on (bearer token verified, rate limits checked)" \
  "http://127.0.0.1:$((port + 10))/graphql" one_fetch_token.lua "$edge_router"
run "one fetch, through the router, edge off (again, for a fair pair)" "http://127.0.0.1:$port/graphql" one_fetch.lua
run "three sequential fetches, through the router" "http://127.0.0.1:$port/graphql" three_fetches.lua
echo "router RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$router/status)"
curl -s "http://127.0.0.1:$admin_port/metrics" | grep -E '^router_overhead_seconds_(sum|count)'
