#!/usr/bin/env bash
# Two router binaries side by side on the one-fetch query with the edge on
# (bearer token verified, rate limits checked), against the same subgraphs:
#   bench/router/compare.sh BEFORE_ROUTER AFTER_ROUTER [seconds]
# MODE=wrk (default): interleaved pairs of wrk runs (50 connections), three
# unless PAIRS=N; then the median of the after/before ratios of req/s and CPU.
# MODE=callgrind: instructions per request of each, counted after a warm-up
# (repeatable whatever else the machine is doing; needs valgrind).
# MODE=together: both loaded at the same time, pair by pair (steadiest on a shared machine).
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
else
  launch "$before" 4810; pid_before=$launched
  launch "$after" 4820; pid_after=$launched
  await_live 4810; await_live 4820
  for port in 4810 4820; do load -t1 -c10 -d2s "$(url $port)" >/dev/null; done
  # CPU time (user + system, in 10 ms ticks) per request: steadier than req/s on a busy machine.
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  median() { sort -n | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)]}'; }
  # One line per pair: its number, then req/s and CPU of before, then of after.
  results=$(mktemp)
  trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -f "$supergraph" "$issuer" "$results" "$results".*' EXIT
  pid_of() { if [ "$1" = before ]; then echo "$pid_before"; else echo "$pid_after"; fi; }
  port_of() { if [ "$1" = before ]; then echo 4810; else echo 4820; fi; }
  for pair in $(seq "${PAIRS:-3}"); do
    if [ "$mode" = together ]; then
      # Both loaded at once, each by its own wrk (one thread, 25 connections).
      start_before=$(cpu_ticks "$pid_before") start_after=$(cpu_ticks "$pid_after")
      load -t1 -c25 -d"${duration}s" --latency "$(url 4810)" > "$results.before" &
      load -t1 -c25 -d"${duration}s" --latency "$(url 4820)" > "$results.after"
      wait %%
      echo "$start_before $(cpu_ticks "$pid_before")" > "$results.before.ticks"
      echo "$start_after $(cpu_ticks "$pid_after")" > "$results.after.ticks"
    else
      # Odd pairs run before first, even pairs after first: a drift in the
      # machine's speed during a pair then favours neither.
      order="before after"; [ $((pair % 2)) = 0 ] && order="after before"
      for name in $order; do
        start=$(cpu_ticks "$(pid_of $name)")
        load -t2 -c50 -d"${duration}s" --latency "$(url "$(port_of $name)")" > "$results.$name"
        echo "$start $(cpu_ticks "$(pid_of $name)")" > "$results.$name.ticks"
      done
    fi
    line=$pair
    for name in before after; do
      requests=$(awk '/requests in/ {print $1}' "$results.$name")
      rate=$(awk '/Requests\/sec/ {print int($2)}' "$results.$name")
      cpu=$(awk -v n="$requests" '{print int(($2 - $1) * 10000000 / n)}' "$results.$name.ticks")
      echo "pair $pair $name: $rate req/s, p99 $(awk '$1 == "99%" {print $2}' "$results.$name"), CPU $cpu ns per request"
      line="$line $rate $cpu"
    done
    echo "$line" >> "$results"
  done
  echo "median after/before ratio: req/s $(awk '{print $4 / $2}' "$results" | median)," \
       "CPU per request $(awk '{print $5 / $3}' "$results" | median)"
fi
