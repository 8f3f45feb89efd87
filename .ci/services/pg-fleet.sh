#!/usr/bin/env bash
# A PostgreSQL of its own for the fleet test (test/store/postgres-fleet.test.ts): port 5433, trust
# auth, every setting at its default (max_connections = 100), database `test`. Its own server so the
# 30-process fleet never takes the connections of the shared one at 5432. Idempotent.
#   bash .ci/services/pg-fleet.sh          start (default)
#   bash .ci/services/pg-fleet.sh stop     stop it
set -euo pipefail

PORT="${PG_FLEET_PORT:-5433}"
DIR="${PG_FLEET_DIR:-/tmp/b24pt-pg-fleet}"
RUN_AS="${PG_FLEET_USER:-postgres}"
VERSION="$(ls /usr/lib/postgresql | sort -n | tail -1)"
BIN="/usr/lib/postgresql/$VERSION/bin"

as_owner() {
  if [ "$(id -u)" = "0" ]; then su -s /bin/sh "$RUN_AS" -c "$*"; else sh -c "$*"; fi
}

if [ "${1:-start}" = "stop" ]; then
  [ -f "$DIR/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl -D $DIR/data -m fast stop" || true
  exit 0
fi

if pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  echo "pg-fleet: already answering on 127.0.0.1:$PORT"
  exit 0
fi

mkdir -p "$DIR"
[ "$(id -u)" = "0" ] && chown "$RUN_AS" "$DIR"
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  as_owner "$BIN/initdb -D $DIR/data -U postgres --auth=trust >$DIR/initdb.log"
fi
# Defaults on purpose (max_connections = 100); only where it listens is set here.
as_owner "$BIN/pg_ctl -D $DIR/data -l $DIR/server.log -w -o \"-p $PORT -k $DIR -c listen_addresses=127.0.0.1\" start >/dev/null"
as_owner "$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -Atqc \"SELECT 1 FROM pg_database WHERE datname = 'test'\" postgres" | grep -q 1 ||
  as_owner "$BIN/createdb -h 127.0.0.1 -p $PORT -U postgres test"
echo "pg-fleet: PostgreSQL $VERSION on 127.0.0.1:$PORT (max_connections $(as_owner "$BIN/psql -h 127.0.0.1 -p $PORT -U postgres -Atqc 'SHOW max_connections' test"))"
