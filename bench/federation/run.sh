#!/usr/bin/env bash
# The gateways benchmark's entity-heavy scenario, side by side: four subgraphs
# (router/examples/federation_subgraphs.rs), the nested query of query.graphql
# (7 subgraph fetches, many `_entities`), taskgraph's router and, when
# installed, Hive Router on the same subgraphs, each on TOKIO_WORKER_THREADS
# worker threads (default 1; Hive is given as many HTTP workers).
#   bench/federation/run.sh [seconds]
# MODE=wrk (default): interleaved pairs of wrk runs at 50 connections: req/s,
#   p50/p99, router CPU per request and RSS, and their ratios (taskgraph / Hive).
# MODE=callgrind: instructions per request of each router (the primary figure
#   on a noisy machine); CALLGRIND_KEEP=DIR keeps the profiles there (whole runs:
#   start-up, warm-up and the measured load).
# ROUTER: a taskgraph router binary to measure instead of the one built here
#   (e.g. an earlier build, to compare before and after).
# HIVE_ROUTER: the hive_router binary (default: the one on PATH, from
#   `cargo install hive-router --version 0.2.19 --features graphiql --locked`).
# DEDUPE=true: in-flight deduplication on in both routers, of requests and of
#   subgraph fetches (Hive's side is the benchmark's own configuration);
#   false (the default): off in both.
# Needs wrk, node with `npm ci` in schema/, and valgrind for MODE=callgrind. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
duration=${1:-10} mode=${MODE:-wrk}
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}
dedupe=${DEDUPE:-false}
export REQUEST_DEDUPE=$dedupe SUBGRAPH_DEDUPE=$dedupe
hive=${HIVE_ROUTER:-$(command -v hive_router || true)}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

cargo build --release --locked -p router --bin router --example federation_subgraphs
bin=$CARGO_TARGET_DIR/release
router=${ROUTER:-$bin/router}
"$bin/examples/federation_subgraphs" sdl | node schema/compose.mjs --stdin > "$work/supergraph.graphql"
python3 -c 'import json,sys; print(json.dumps({"query": open(sys.argv[1]).read()}))' \
  bench/federation/query.graphql > "$work/body.json"
export BENCH_BODY=$work/body.json
"$bin/examples/federation_subgraphs" &
cat > "$work/router.config.yaml" <<YAML
supergraph:
  source: file
  path: $work/supergraph.graphql
log:
  level: warn
# Hive Router 0.2.19's keys (its config_schema_generator): subgraph-level dedupe
# is traffic_shaping.all.dedupe_enabled, request-level traffic_shaping.router.dedupe.enabled.
traffic_shaping:
  all:
    dedupe_enabled: $dedupe
  router:
    dedupe:
      enabled: $dedupe
YAML

launched=
launch() { # name port [wrapper...]; sets $launched to its pid
  local name=$1 port=$2; shift 2
  if [ "$name" = taskgraph ]; then
    env SUPERGRAPH_PATH="$work/supergraph.graphql" LOG_LEVEL=warn JWKS_URL=none RATE_LIMIT_ENABLED=false \
      SUBGRAPH_SHARED_SECRET=disabled PORT="$port" ADMIN_PORT=$((port + 1000)) "$@" "$router" \
      >"$work/$name.log" 2>&1 &
  else
    (cd "$work" && exec env PORT="$port" HOST=127.0.0.1 ROUTER_HTTP_WORKERS="$TOKIO_WORKER_THREADS" SUPERGRAPH_FILE_PATH="$work/supergraph.graphql" \
      "$@" "$hive" >"$work/$name.log" 2>&1) &
  fi
  launched=$!
}
url() { echo "http://127.0.0.1:$1/graphql"; }
answer() { curl -sf -H 'content-type: application/json' --data-binary "@$BENCH_BODY" "$(url "$1")"; }
await_answer() { for _ in $(seq 100); do answer "$1" >/dev/null 2>&1 && return; sleep 0.2; done; cat "$work"/*.log; exit 1; }
load() { wrk "$@" -s bench/federation/query.lua; }
routers=(taskgraph)
[ -n "$hive" ] && routers+=(hive) || echo "Hive Router not installed (HIVE_ROUTER unset, no hive_router on PATH): taskgraph alone"
declare -A port=([taskgraph]=4850 [hive]=4860)

if [ "$mode" = callgrind ]; then
  # Counted by difference, the same way for both routers (callgrind_control cannot
  # reach Hive Router under valgrind): one run is start-up and a warm-up of a fixed
  # number of responses, the other the same followed by the measured load; the
  # measured requests cost the difference of the two runs' totals.
  counted() { # name measured_seconds: prints "instructions requests"
    local name=$1 seconds=$2 out=$work/callgrind.$1.$2 requests=0
    launch "$name" "${port[$name]}" valgrind --tool=callgrind --callgrind-out-file="$out"; local pid=$launched
    await_answer "${port[$name]}"
    BENCH_STOP_AFTER=300 load -t1 -c10 -d300s "$(url "${port[$name]}")" >/dev/null
    if [ "$seconds" -gt 0 ]; then
      requests=$(load -t1 -c10 -d"${seconds}s" "$(url "${port[$name]}")" | awk '/requests in/ {print $1}')
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}') $requests"
  }
  for name in "${routers[@]}"; do
    read -r warm _ < <(counted "$name" 0)
    read -r total requests < <(counted "$name" "$duration")
    echo "$name: $requests requests, $(( (total - warm) / requests )) instructions per request"
    if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP" && cp "$work/callgrind.$name.$duration" "$CALLGRIND_KEEP/callgrind.$name"; fi
  done
  exit 0
fi

declare -A pid
for name in "${routers[@]}"; do launch "$name" "${port[$name]}"; pid[$name]=$launched; done
for name in "${routers[@]}"; do await_answer "${port[$name]}"; done
if [ -n "$hive" ]; then
  # Same plan, same answer: compared with keys sorted (both keep the query's order anyway).
  norm() { python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin), sort_keys=True))'; }
  if [ "$(answer 4850 | norm)" != "$(answer 4860 | norm)" ]; then echo "the two routers' answers differ"; exit 1; fi
  echo "both routers give the same answer"
fi
for name in "${routers[@]}"; do load -t1 -c10 -d2s "$(url "${port[$name]}")" >/dev/null; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
declare -A rps cpu
for pair in 1 2 3; do
  for name in "${routers[@]}"; do
    ticks=$(cpu_ticks "${pid[$name]}")
    result=$(load -t2 -c50 -d"${duration}s" --latency "$(url "${port[$name]}")")
    requests=$(echo "$result" | awk '/requests in/ {print $1}')
    r=$(echo "$result" | awk '/Requests\/sec/ {print int($2)}')
    c=$(( ($(cpu_ticks "${pid[$name]}") - ticks) * 10000 / requests ))
    rps[$name]="${rps[$name]:-} $r" cpu[$name]="${cpu[$name]:-} $c"
    echo "pair $pair $name: $r req/s, p50 $(echo "$result" | awk '$1 == "50%" {print $2}')," \
         "p99 $(echo "$result" | awk '$1 == "99%" {print $2}'), router CPU $c us per request," \
         "RSS $(( $(rss_kib "${pid[$name]}") / 1024 )) MiB"
  done
done
if [ -n "$hive" ]; then
  python3 - "${rps[taskgraph]}" "${rps[hive]}" "${cpu[taskgraph]}" "${cpu[hive]}" <<'PY'
import statistics, sys
med = lambda s: statistics.median(int(x) for x in s.split())
print(f"ratios taskgraph/hive (medians): req/s {med(sys.argv[1]) / med(sys.argv[2]):.2f}, "
      f"router CPU per request {med(sys.argv[3]) / med(sys.argv[4]):.2f}")
PY
fi
