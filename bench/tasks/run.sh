#!/usr/bin/env bash
# Tasks benchmark: `tasks(first: 20)` for one user with 1,000 tasks, 50 connections,
# cache warm and cache cold (Redis unreachable: every read from Postgres), at the
# subgraph and through the router. Needs wrk and the local services.
#   bench/tasks/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/services.sh
ensure_services
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/taskgraph-target}
# The load generator calls subgraphs directly too, as the figures compare (README, "Benchmarks").
export SUBGRAPH_SHARED_SECRET=${SUBGRAPH_SHARED_SECRET:-disabled}
duration=${1:-10}
base=${BENCH_PORT:-4910}
auth_port=$((base + 1)) warm_port=$((base + 2)) cold_port=$((base + 3)) router_warm=$((base + 4)) router_cold=$((base + 5))
db="bench_tasks_$$"
exchange="bench.events.$$"
prefix="bench-$$:"
no_redis="none"
bin="$CARGO_TARGET_DIR/release"

cargo build --release --locked -p auth -p tasks -p router
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" EVENTS_EXCHANGE="$exchange" LOG_LEVEL=warn
export JWKS_URL="http://127.0.0.1:$auth_port/.well-known/jwks.json" CACHE_KEY_PREFIX="$prefix"
pids=()
PORT=$auth_port BCRYPT_COST=4 "$bin/auth" & pids+=($!)
until curl -sf "http://127.0.0.1:$auth_port/health/live" >/dev/null; do sleep 0.2; done
PORT=$warm_port USER_DELETED_QUEUE="bench.tasks.$$" "$bin/tasks" & pids+=($!)
warm_pid=$!
PORT=$cold_port USER_DELETED_QUEUE="bench.tasks.$$" REDIS_URL="$no_redis" "$bin/tasks" & pids+=($!)
cold_pid=$!
for pair in "$router_warm $warm_port" "$router_cold $cold_port"; do
  set -- $pair
  # Rate limits stay on (their cost is part of the figure) with quotas a load test cannot reach.
  PORT=$1 SUBGRAPH_AUTH_URL="http://127.0.0.1:$auth_port/graphql" SUBGRAPH_TASKS_URL="http://127.0.0.1:$2/graphql" \
    RATE_LIMIT_IP=1000000000/1m RATE_LIMIT_USER=1000000000/1m "$bin/router" & pids+=($!)
done
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  redis-cli --scan --pattern "$prefix*" | xargs -r redis-cli del >/dev/null
  if command -v rabbitmqctl >/dev/null; then
    for q in "bench.tasks.$$" "bench.tasks.$$.dead" "$exchange.unrouted"; do rabbitmqctl -q delete_queue "$q" >/dev/null 2>&1 || true; done
    for x in "$exchange" "$exchange.unrouted" "bench.tasks.$$.dead"; do
      rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$x\">>), false, <<\"bench\">>)." \
        >/dev/null 2>&1 || true
    done
  fi
}
trap cleanup EXIT
for port in $warm_port $cold_port $router_warm $router_cold; do
  until curl -sf "http://127.0.0.1:$port/health/live" >/dev/null; do sleep 0.2; done
done

TOKEN=$(curl -sf "http://127.0.0.1:$auth_port/graphql" -H 'content-type: application/json' \
  -d '{"query":"mutation{register(email:\"bench@example.com\",password:\"benchmark password 1\"){accessToken}}"}' \
  | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
export TOKEN
user=$(psql -h 127.0.0.1 -U postgres -d "$db" -Atc "SELECT id FROM auth.users")
psql -h 127.0.0.1 -U postgres -d "$db" -qc "
  INSERT INTO tasks.tasks (id, user_id, title, description, status, due_at, created_at, updated_at)
  SELECT gen_random_uuid(), '$user', 'task ' || i, 'description of task ' || i,
         (ARRAY['TODO','IN_PROGRESS','DONE'])[1 + i % 3], now() + i * interval '1 hour',
         now() - i * interval '1 minute', now() - i * interval '1 minute'
  FROM generate_series(1, 1000) AS i; ANALYZE tasks.tasks;"

redis_pid=$(pgrep -x redis-server | head -1 || true)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # label url [connections [subgraph pid]]
  echo "== $1"
  local connections=${3:-50} pid=${4:-$warm_pid} out requests s0 r0=0
  s0=$(cpu_ticks "$pid"); [ -n "$redis_pid" ] && r0=$(cpu_ticks "$redis_pid")
  out=$(wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${duration}s" --latency -s bench/tasks/tasks.lua "$2")
  echo "$out" | grep -E "^\s+(50|90|99)%|Requests/sec"
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  # CPU time per request (clock ticks are 10 ms), to see where the work goes.
  echo "CPU per request: tasks $(( ($(cpu_ticks "$pid") - s0) * 10000 / requests )) us" \
       "${redis_pid:+redis $(( ($(cpu_ticks "$redis_pid") - r0) * 10000 / requests )) us}"
}
# Warm connection pools, the plan caches and the cache entry.
for port in $warm_port $cold_port $router_warm $router_cold; do
  wrk -t1 -c10 -d2s -s bench/tasks/tasks.lua "http://127.0.0.1:$port/graphql" >/dev/null
done
run "warm cache, at the subgraph, one connection (latency without queueing)" "http://127.0.0.1:$warm_port/graphql" 1
run "warm cache, at the subgraph" "http://127.0.0.1:$warm_port/graphql"
run "warm cache, through the router" "http://127.0.0.1:$router_warm/graphql"
run "cold (REDIS_URL=none: Postgres every time), at the subgraph" "http://127.0.0.1:$cold_port/graphql" 50 "$cold_pid"
run "cold, through the router" "http://127.0.0.1:$router_cold/graphql" 50 "$cold_pid"
echo "tasks RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$warm_pid/status)"
