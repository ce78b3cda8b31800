#!/usr/bin/env bash
# Makes sure the local PostgreSQL, Redis and RabbitMQ that tests and `scripts/run`
# use are up, starting any that is down. Sourced by scripts/test and .ci/run.

port_open() { timeout 1 bash -c "</dev/tcp/127.0.0.1/$1" 2>/dev/null; }

wait_for_port() { # name port seconds
  local deadline=$((SECONDS + $3))
  until port_open "$2"; do
    if ((SECONDS > deadline)); then echo "services: $1 did not come up on port $2" >&2; return 1; fi
    sleep 0.5
  done
}

ensure_postgres() {
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
  local deadline=$((SECONDS + 60))
  until pg_isready -h 127.0.0.1 -p 5432 -q; do
    if ((SECONDS > deadline)); then echo "services: PostgreSQL is not ready" >&2; return 1; fi
    sleep 0.5
  done
}

ensure_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  fi
  wait_for_port Redis 6379 30
}

ensure_rabbitmq() {
  if ! port_open 5672; then
    echo "services: starting RabbitMQ"
    rabbitmq-server -detached
  fi
  wait_for_port RabbitMQ 5672 120
}

ensure_services() {
  ensure_postgres
  ensure_redis
  ensure_rabbitmq
}
