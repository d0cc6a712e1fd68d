#!/usr/bin/env bash
# Start a throwaway PostgreSQL for tests, on 127.0.0.1 and a free port, with fsync off.
#
#   .ci/pg_start.sh [BASE_DIR]     prints shell assignments: PGBASE, PGBIN, PGPORT, DATABASE_URL
#   .ci/pg_start.sh --stop BASE    stops the server started in BASE and removes BASE
#
# Uses Debian's binaries (/usr/lib/postgresql/*/bin; override with PGBIN). As root the server
# runs as the 'postgres' OS user (initdb refuses root); as any other user it runs as that user.
set -euo pipefail

pgbin() {
  if [[ -n "${PGBIN:-}" ]]; then echo "$PGBIN"; return; fi
  local found
  found=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -1 || true)
  if [[ -z "$found" ]]; then
    echo "pg_start: no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)" >&2
    exit 3
  fi
  dirname "$found"
}

as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PGBIN=$(pgbin)

if [[ "${1:-}" == "--stop" ]]; then
  BASE=${2:?usage: pg_start.sh --stop BASE_DIR}
  as_owner "$PGBIN/pg_ctl" -D "$BASE/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$BASE"
  exit 0
fi

BASE=${1:-$(mktemp -d -t weft-pg.XXXXXX)}
mkdir -p "$BASE"
if [[ $(id -u) -eq 0 ]]; then
  chown postgres:postgres "$BASE"
  # the postgres user must be able to reach BASE through its parent folders
  chmod o+x "$(dirname "$BASE")" 2>/dev/null || true
fi
chmod 700 "$BASE"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
as_owner "$PGBIN/initdb" -D "$BASE/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
  >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; exit 4; }
as_owner "$PGBIN/pg_ctl" -D "$BASE/data" -l "$BASE/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $PORT -k $BASE -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null || { cat "$BASE/server.log" >&2; exit 5; }
as_owner "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres weft

echo "PGBASE=$BASE"
echo "PGBIN=$PGBIN"
echo "PGPORT=$PORT"
echo "DATABASE_URL=postgresql://postgres@127.0.0.1:$PORT/weft?sslmode=disable"
