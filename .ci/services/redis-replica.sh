#!/usr/bin/env bash
# A Redis primary (127.0.0.1:6390) and its replica (127.0.0.1:6391, --replicaof) for the Redis
# store's replication (WAIT) tests; no persistence, each under ${REDIS_REPLICA_DIR:-/tmp/b24pt-redis-replica}.
# Idempotent: does nothing when both answer and the replica is linked. `redis-replica.sh stop`
# shuts both down and removes the directory. The failover test kills and promotes these nodes and
# then runs this script again to put the pair back.
set -euo pipefail
DIR="${REDIS_REPLICA_DIR:-/tmp/b24pt-redis-replica}"
PRIMARY="${REDIS_PRIMARY_PORT:-6390}"
REPLICA="${REDIS_REPLICA_PORT:-6391}"

if [ "${1:-}" = "stop" ]; then
  for port in "$PRIMARY" "$REPLICA"; do redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$DIR"
  exit 0
fi

linked() {
  redis-cli -h 127.0.0.1 -p "$PRIMARY" info replication 2>/dev/null | grep -q '^role:master' &&
    redis-cli -h 127.0.0.1 -p "$REPLICA" info replication 2>/dev/null | grep -q "^master_port:$PRIMARY" &&
    redis-cli -h 127.0.0.1 -p "$REPLICA" info replication 2>/dev/null | grep -q '^master_link_status:up'
}
if linked; then echo "redis replica: already up ($PRIMARY -> $REPLICA)"; exit 0; fi

start() {
  local port="$1"; shift
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then return 0; fi
  mkdir -p "$DIR/$port"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$DIR/$port" --daemonize yes --save "" --appendonly no \
    --logfile "$DIR/$port/redis.log" --pidfile "$DIR/$port/redis.pid" "$@"
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "redis replica: $port did not start" >&2; return 1
}
start "$PRIMARY"
# A primary left as a replica by an earlier failover test becomes a primary again.
redis-cli -h 127.0.0.1 -p "$PRIMARY" replicaof no one >/dev/null
start "$REPLICA" --replicaof 127.0.0.1 "$PRIMARY"
redis-cli -h 127.0.0.1 -p "$REPLICA" replicaof 127.0.0.1 "$PRIMARY" >/dev/null
for _ in $(seq 1 100); do linked && { echo "redis replica: up ($PRIMARY -> $REPLICA)"; exit 0; }; sleep 0.1; done
echo "redis replica: the replica did not link to the primary" >&2
exit 1
