#!/usr/bin/env bash
# A three-primary Redis Cluster on loopback for the Redis store's cluster tests: primaries on
# 127.0.0.1:7001-7003 (no persistence, each with its own directory and nodes.conf under
# ${REDIS_CLUSTER_DIR:-/tmp/b24pt-redis-cluster}). Idempotent: does nothing when the cluster already
# answers with state ok. `redis-cluster.sh stop` shuts the nodes down and removes the directory.
# The failover test starts its own cluster with REDIS_CLUSTER_PORTS (primaries first, then their
# replicas), REDIS_CLUSTER_REPLICAS=1 and its own REDIS_CLUSTER_DIR.
set -euo pipefail
DIR="${REDIS_CLUSTER_DIR:-/tmp/b24pt-redis-cluster}"
read -r -a PORTS <<< "${REDIS_CLUSTER_PORTS:-7001 7002 7003}"
REPLICAS="${REDIS_CLUSTER_REPLICAS:-0}"

if [ "${1:-}" = "stop" ]; then
  for port in "${PORTS[@]}"; do redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$DIR"
  exit 0
fi

cluster_ok() { redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
if cluster_ok; then echo "redis cluster: already up on ${PORTS[*]}"; exit 0; fi

for port in "${PORTS[@]}"; do
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then continue; fi
  mkdir -p "$DIR/$port"
  rm -f "$DIR/$port/nodes.conf"
  redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-config-file "$DIR/$port/nodes.conf" \
    --cluster-node-timeout 2000 --dir "$DIR/$port" --daemonize yes --save "" --appendonly no \
    --logfile "$DIR/$port/redis.log" --pidfile "$DIR/$port/redis.pid"
done
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
# Nodes that are up but not joined (a half-finished earlier run) are reset before the create.
if [ "$(redis-cli -h 127.0.0.1 -p "${PORTS[0]}" cluster info | grep -c '^cluster_known_nodes:1')" = "1" ]; then
  for port in "${PORTS[@]}"; do redis-cli -h 127.0.0.1 -p "$port" cluster reset hard >/dev/null; done
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${PORTS[@]}") --cluster-replicas "$REPLICAS" --cluster-yes >/dev/null
fi
# Every node must see the whole cluster (a fresh create gossips for a moment).
# With replicas, each replica must also have finished its first sync.
all_ok() {
  for port in "${PORTS[@]}"; do
    redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    local info; info="$(redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null)"
    if grep -q '^role:slave' <<< "$info"; then grep -q '^master_link_status:up' <<< "$info" || return 1; fi
  done
}
for _ in $(seq 1 200); do all_ok && { echo "redis cluster: up on ${PORTS[*]}"; exit 0; }; sleep 0.1; done
echo "redis cluster: did not reach state ok" >&2
exit 1
