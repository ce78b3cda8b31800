#!/usr/bin/env bash
# Two router binaries side by side on the one-fetch query with the edge on
# (bearer token verified, rate limits checked), against the same subgraphs:
#   bench/router/compare.sh BEFORE_ROUTER AFTER_ROUTER [seconds]
# MODE=wrk (default): interleaved pairs of wrk runs (50 connections), three
# unless PAIRS=N; then the median of the after/before ratios of req/s and CPU.
# MODE=callgrind: instructions per request of each, counted after a warm-up
# (repeatable whatever else the machine is doing; needs valgrind).
# MODE=together: both loaded at the same time, PAIRS rounds (steadiest on a shared machine).
# CALLGRIND_KEEP=DIR keeps each dump there (before.out, after.out) for callgrind_annotate.
# SCRIPT=three_fetches.lua measures the three-sequential-fetch query instead.
# Build a baseline with e.g. `git worktree add /tmp/base <commit>` and
# `cargo build --release -p router` there. Needs wrk and `npm ci` in schema/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
before=$(realpath "$1") after=$(realpath "$2") duration=${3:-10} mode=${MODE:-wrk}
script=${SCRIPT:-one_fetch_token.lua}
export TOKIO_WORKER_THREADS=1
# BENCH_SUBGRAPHS: a bench_subgraphs binary already built (else it is built here).
subgraphs_bin=${BENCH_SUBGRAPHS:-$CARGO_TARGET_DIR/release/examples/bench_subgraphs}
[ -n "${BENCH_SUBGRAPHS:-}" ] || cargo build --release --locked -p router --example bench_subgraphs
supergraph=$(mktemp --suffix .graphql) issuer=$(mktemp)
"$subgraphs_bin" sdl | node schema/compose.mjs --stdin > "$supergraph"
BENCH_ISSUER_FILE="$issuer" "$subgraphs_bin" &
until [ -s "$issuer" ]; do sleep 0.1; done
jwks_url=$(sed -n 1p "$issuer"); export BENCH_TOKEN; BENCH_TOKEN=$(sed -n 2p "$issuer")
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -f "$supergraph" "$issuer"' EXIT
launched=
launch() { # binary port [wrapper...]; sets $launched to its pid
  local binary=$1 port=$2; shift 2
  env SUPERGRAPH_PATH="$supergraph" LOG_LEVEL=warn JWKS_URL="$jwks_url" SUBGRAPH_SHARED_SECRET=disabled \
    RATE_LIMIT_IP=1000000000/1m RATE_LIMIT_USER=1000000000/1m PORT="$port" ADMIN_PORT=$((port + 1000)) \
    "$@" "$binary" >"${BENCH_LOG:-/dev/null}" 2>&1 &
  launched=$!
}
url() { echo "http://127.0.0.1:$1/graphql"; }
await_live() { until curl -sf "http://127.0.0.1:$1/health/live" >/dev/null; do sleep 0.2; done; }
load() { wrk "$@" -s "bench/router/$script"; }
if [ "$mode" = callgrind ]; then
  for name in before after; do
    binary=$before; [ "$name" = after ] && binary=$after
    out=$(mktemp)
    launch "$binary" 4830 valgrind --tool=callgrind --callgrind-out-file="$out"; pid=$launched
    await_live 4830
    load -t1 -c10 -d5s "$(url 4830)" >/dev/null
    callgrind_control -z "$pid" >/dev/null 2>&1
    requests=$(load -t1 -c10 -d"${duration}s" "$(url 4830)" | awk '/requests in/ {print $1}')
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    dump=$(ls -t "$out".* | head -1)
    total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$name: $requests requests, $((total / requests)) instructions per request"
    [ -z "${CALLGRIND_KEEP:-}" ] || cp "$dump" "$CALLGRIND_KEEP/$name.out"
    rm -f "$out" "$out".*
  done
elif [ "$mode" = together ]; then
  # Both routers loaded at once, each by its own wrk (one thread, 25
  # connections), PAIRS rounds: whatever else the machine does slows both alike.
  launch "$before" 4810; pid_before=$launched
  launch "$after" 4820; pid_after=$launched
  await_live 4810; await_live 4820
  for port in 4810 4820; do load -t1 -c10 -d2s "$(url $port)" >/dev/null; done
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  rounds=$(mktemp)
  for round in $(seq "${PAIRS:-3}"); do
    ticks_before=$(cpu_ticks "$pid_before") ticks_after=$(cpu_ticks "$pid_after")
    load -t1 -c25 -d"${duration}s" "$(url 4810)" > "$rounds.before" &
    load -t1 -c25 -d"${duration}s" "$(url 4820)" > "$rounds.after"
    wait %%
    line="$round"
    for name in before after; do
      pid=$pid_before ticks=$ticks_before; [ $name = after ] && pid=$pid_after ticks=$ticks_after
      requests=$(awk '/requests in/ {print $1}' "$rounds.$name")
      rate=$(awk '/Requests\/sec/ {print int($2)}' "$rounds.$name")
      cpu=$(( ($(cpu_ticks "$pid") - ticks) * 10000000 / requests ))
      line="$line $rate $cpu"
    done
    echo "$line" >> "$rounds"
    echo "round $round: before $(echo "$line" | awk '{print $2 " req/s, CPU " $3}') ns, after $(echo "$line" | awk '{print $4 " req/s, CPU " $5}') ns"
  done
  median() { sort -n | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)]}'; }
  echo "median after/before ratio: req/s $(awk '{print $4 / $2}' "$rounds" | median)," \
       "CPU per request $(awk '{print $5 / $3}' "$rounds" | median)"
  rm -f "$rounds" "$rounds".*
else
  launch "$before" 4810; pid_4810=$launched
  launch "$after" 4820; pid_4820=$launched
  await_live 4810; await_live 4820
  for port in 4810 4820; do load -t1 -c10 -d2s "$(url $port)" >/dev/null; done
  # CPU time (user + system, in 10 ms ticks) per request: steadier than req/s on a busy machine.
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  ratios=$(mktemp)
  for pair in $(seq "${PAIRS:-3}"); do
    # Odd pairs run before first, even pairs after first: a drift in the
    # machine's speed during a pair then favours neither.
    order="4810 4820"; [ $((pair % 2)) = 0 ] && order="4820 4810"
    for port in $order; do
      name=before pid=$pid_4810; [ $port = 4820 ] && name=after pid=$pid_4820
      ticks=$(cpu_ticks "$pid")
      result=$(load -t2 -c50 -d"${duration}s" --latency "$(url $port)")
      requests=$(echo "$result" | awk '/requests in/ {print $1}')
      rate=$(echo "$result" | awk '/Requests\/sec/ {print int($2)}')
      cpu=$(( ($(cpu_ticks "$pid") - ticks) * 10000000 / requests ))
      echo "pair $pair $name: $rate req/s, p99 $(echo "$result" | awk '$1 == "99%" {print $2}'), CPU $cpu ns per request"
      echo "$pair $name $rate $cpu" >> "$ratios"
    done
  done
  # Each pair's after/before ratios, then their medians over the pairs.
  median() { sort -n | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)]}'; }
  per_pair() { # column: 3 for req/s, 4 for CPU
    awk -v c="$1" '$2 == "before" {b[$1] = $c} $2 == "after" {a[$1] = $c} END {for (p in a) print a[p] / b[p]}' "$ratios"
  }
  echo "median after/before ratio: req/s $(per_pair 3 | median), CPU per request $(per_pair 4 | median)"
  rm -f "$ratios"
fi
