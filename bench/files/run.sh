#!/usr/bin/env bash
# Files benchmark: upload and download throughput of one 100 MB file on loopback
# (local storage), straight to the files service and through the router, and the
# resident-set growth of the process that carries it (files, then the router).
# Needs curl and the local services (Postgres, RabbitMQ). Starts auth for a token.
#   bench/files/run.sh [megabytes]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/services.sh
ensure_postgres; ensure_rabbitmq
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
# The load generator calls subgraphs directly too, as the figures compare (README, "Benchmarks").
export SUBGRAPH_SHARED_SECRET=${SUBGRAPH_SHARED_SECRET:-disabled}
mb=${1:-100}
auth_port=${BENCH_AUTH_PORT:-4911}
files_port=${BENCH_PORT:-4913}
router_port=${BENCH_ROUTER_PORT:-4910}
db="bench_files_$$"
work=$(mktemp -d)
exchange="bench.events.$$"

cargo build --release --locked -p auth -p files -p router
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" EVENTS_EXCHANGE="$exchange" LOG_LEVEL=warn
PORT=$auth_port BCRYPT_COST=4 "$CARGO_TARGET_DIR/release/auth" &
auth_pid=$!
PORT=$files_port STORAGE_DIR="$work/storage" UPLOAD_MAX_FILE_BYTES=$(( (mb + 1) << 20 )) REQUEST_TIMEOUT=600s \
  USER_DELETED_QUEUE="bench.files.$$" JWKS_URL="http://127.0.0.1:$auth_port/.well-known/jwks.json" \
  "$CARGO_TARGET_DIR/release/files" &
files_pid=$!
PORT=$router_port UPLOAD_MAX_FILE_BYTES=$(( (mb + 1) << 20 )) REQUEST_TIMEOUT=600s \
  SUBGRAPH_AUTH_URL="http://127.0.0.1:$auth_port/graphql" SUBGRAPH_FILES_URL="http://127.0.0.1:$files_port/graphql" \
  JWKS_URL="http://127.0.0.1:$auth_port/.well-known/jwks.json" "$CARGO_TARGET_DIR/release/router" &
router_pid=$!
cleanup() {
  kill "$auth_pid" "$files_pid" "$router_pid" 2>/dev/null || true
  wait "$auth_pid" "$files_pid" "$router_pid" 2>/dev/null || true
  rm -rf "$work"
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  if command -v rabbitmqctl >/dev/null; then
    for q in "bench.files.$$" "bench.files.$$.dead" "$exchange.unrouted"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done
    for x in "$exchange" "$exchange.unrouted" "bench.files.$$.dead"; do
      rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"bench\">>)." \
        >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT
until curl -sf "http://127.0.0.1:$auth_port/health/live" >/dev/null && curl -sf "http://127.0.0.1:$files_port/health/live" >/dev/null \
  && curl -sf "http://127.0.0.1:$router_port/health/live" >/dev/null; do
  sleep 0.2
done

TOKEN=$(curl -sf "http://127.0.0.1:$auth_port/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation{register(email:\"bench@example.com\",password:\"benchmark password 1\"){accessToken}}"}' \
  | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
# Text, so the sniffer accepts it.
(yes "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde" || true) | head -c "$((mb << 20))" > "$work/big.txt"

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Samples process $2's RSS every 10 ms into $1 (the peak, in kB) until killed.
sample_peak() { local peak=0 v; while :; do v=$(rss_kb "$2"); (( v > peak )) && peak=$v && echo "$peak" > "$1"; sleep 0.01; done; }
measure() { # label, pid whose RSS to watch, then the curl arguments
  local label=$1 pid=$2; shift 2
  local base; base=$(rss_kb "$pid"); echo "$base" > "$work/peak"
  sample_peak "$work/peak" "$pid" & local sampler=$!
  local out; out=$(curl -sf -H "Authorization: Bearer $TOKEN" "$@")
  kill "$sampler"; wait "$sampler" 2>/dev/null || true
  local peak; peak=$(cat "$work/peak")
  echo "$out" > "$work/$label.out"
  echo "$label: $(tail -n1 <<<"$out" | awk -v mb="$mb" '{printf "%.0f MB/s (%.2f s)", mb * 1.048576 / $1, $1}'),\
 RSS $((base / 1024)) -> $((peak / 1024)) MiB (growth $(((peak - base) / 1024)) MiB)"
}

echo "files idle RSS: $(( $(rss_kb $files_pid) / 1024 )) MiB; transferring ${mb} MiB on loopback"
measure upload "$files_pid" "http://127.0.0.1:$files_port/graphql" \
  -F 'operations={"query":"mutation($f: Upload!){uploadFile(file:$f){id size sha256}}","variables":{"f":null}}' \
  -F 'map={"0":["variables.f"]}' -F "0=@$work/big.txt;type=text/plain" -w '\n%{time_total}\n'
id=$(sed -nE 's/.*"id":"([^"]+)".*/\1/p' "$work/upload.out")
[ -n "$id" ] || { echo "upload failed: $(head -c 500 "$work/upload.out")"; exit 1; }
measure download "$files_pid" "http://127.0.0.1:$files_port/files/$id/content" -o /dev/null -w '%{time_total}\n'

echo "router idle RSS: $(( $(rss_kb $router_pid) / 1024 )) MiB; the same through the router"
measure router-upload "$router_pid" "http://127.0.0.1:$router_port/graphql" -H 'apollo-require-preflight: true' \
  -F 'operations={"query":"mutation($f: Upload!){uploadFile(file:$f){id size sha256}}","variables":{"f":null}}' \
  -F 'map={"0":["variables.f"]}' -F "0=@$work/big.txt;type=text/plain" -w '\n%{time_total}\n'
id=$(sed -nE 's/.*"id":"([^"]+)".*/\1/p' "$work/router-upload.out")
[ -n "$id" ] || { echo "upload through the router failed: $(head -c 500 "$work/router-upload.out")"; exit 1; }
measure router-download "$router_pid" "http://127.0.0.1:$router_port/files/$id/content" -o /dev/null -w '%{time_total}\n'
