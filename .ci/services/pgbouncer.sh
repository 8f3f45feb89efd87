#!/usr/bin/env bash
# PgBouncer in transaction mode on 127.0.0.1:6432, in front of the shared PostgreSQL at
# 127.0.0.1:5432 (database `test`, trust auth), for the tests that run the PostgreSQL store through a
# transaction pooler (test/store/postgres-pgbouncer.test.ts). Idempotent: installs the Debian package
# when missing, writes its own config under $PGBOUNCER_DIR, does nothing when it already answers.
#   bash .ci/services/pgbouncer.sh          start (default)
#   bash .ci/services/pgbouncer.sh stop     stop the instance this script started
set -euo pipefail

PORT="${PGBOUNCER_PORT:-6432}"
DIR="${PGBOUNCER_DIR:-/tmp/b24pt-pgbouncer}"
RUN_AS="${PGBOUNCER_USER:-postgres}"

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$DIR/pgbouncer.pid" ]; then kill "$(cat "$DIR/pgbouncer.pid")" 2>/dev/null || true; fi
  exit 0
fi

if pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
  echo "pgbouncer: already answering on 127.0.0.1:$PORT"
  exit 0
fi

if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y pgbouncer >/dev/null || { apt-get update >/dev/null && apt-get install -y pgbouncer >/dev/null; }
fi
BIN="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
# The Debian package starts its own instance on 6432 under systemd/init; never rely on it.

mkdir -p "$DIR"
cat >"$DIR/pgbouncer.ini" <<INI
[databases]
test = host=127.0.0.1 port=5432 dbname=test user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $DIR/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = $DIR/pgbouncer.log
pidfile = $DIR/pgbouncer.pid
admin_users = postgres
INI
echo '"postgres" ""' >"$DIR/userlist.txt"
# PgBouncer refuses to run as root; run it as the postgres user.
if [ "$(id -u)" = "0" ]; then
  chown -R "$RUN_AS" "$DIR"
  su -s /bin/sh "$RUN_AS" -c "$BIN -d $DIR/pgbouncer.ini"
else
  "$BIN" -d "$DIR/pgbouncer.ini"
fi

for _ in $(seq 1 50); do
  if pg_isready -h 127.0.0.1 -p "$PORT" -q 2>/dev/null; then
    echo "pgbouncer: transaction pooling on 127.0.0.1:$PORT -> 127.0.0.1:5432/test"
    exit 0
  fi
  sleep 0.1
done
echo "pgbouncer did not start; see $DIR/pgbouncer.log" >&2
exit 1
