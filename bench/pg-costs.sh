#!/usr/bin/env bash
# What the PostgreSQL storage costs the server, on a private server with pg_stat_statements:
#
#   bench/pg-costs.sh [JOBS]            default 100,000
#
# 1. Idle: one `jobs-bench idle` worker for 60 s on an empty queue; prints the statements it
#    sent per second (pg_stat_statements calls), by statement.
# 2. Per job: `jobs-bench e2e` with JOBS jobs; prints the server's CPU time per job (user+system
#    of every PostgreSQL process, from /proc) and the WAL it wrote per job (pg_stat_wal).
# The server is initdb'd into a temporary directory on a free port (as the postgres user when
# run as root), with fsync on, and removed at the end; PG_EXTRA adds server settings (e.g.
# PG_EXTRA='-c autovacuum=off'). Needs PostgreSQL's server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${1:-100000}"
BIN=target/release/jobs-bench
cargo build --release -q -p jobs-bench
PGBIN="$(pg_config --bindir 2>/dev/null || true)"
[ -x "$PGBIN/initdb" ] || PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
DIR="$(mktemp -d /tmp/jobs-pgcosts.XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
as_pg "$PGBIN/initdb" -A trust -U postgres -D "$DIR/data" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w start -o \
    "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top -c max_connections=200 ${PG_EXTRA:-}" >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
URL="postgres://postgres@127.0.0.1:$PORT/postgres"
q() { psql "$URL" -Atqc "$1"; }
q "CREATE EXTENSION pg_stat_statements" >/dev/null
echo "loopback round trip: $(psql "$URL" -Atqc '\timing on' -c 'select 1' 2>/dev/null | grep -o 'Time: [0-9.]* ms' | tail -1)"

# The CPU seconds (user + system) of the server: its postmaster, the children it has reaped
# (cutime + cstime: backends that ended) and the children alive now.
server_cpu() {
    local pm ticks pid
    pm=$(head -1 "$DIR/data/postmaster.pid")
    ticks=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
    for pid in $(ps -o pid= --ppid "$pm"); do
        ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "scale=3; $ticks / $(getconf CLK_TCK)" | bc
}

# 1. Idle.
$BIN e2e --backend postgres --postgres-url "$URL" --prefix costs --jobs 1000 >/dev/null   # migrate, warm
q "SELECT pg_stat_statements_reset()" >/dev/null
$BIN idle --backend postgres --postgres-url "$URL" --prefix costs --seconds 60 | sed 's/^/idle: /'
echo "idle: statements per second, by statement:"
q "SELECT round(calls / 60.0, 3) || '/s  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 90)
   FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC"
echo "idle: total $(q "SELECT round(sum(calls) / 60.0, 3) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'") statements/s"

# 2. Per job.
q "SELECT pg_stat_reset_shared('wal')" >/dev/null
wal0=$(q "SELECT wal_bytes FROM pg_stat_wal")
sleep 2
cpu0=$(server_cpu)
$BIN e2e --backend postgres --postgres-url "$URL" --prefix costs --jobs "$JOBS" | sed 's/^/e2e: /'
sleep 2   # the bench's backends have ended and been reaped: their time is the postmaster's now
cpu1=$(server_cpu)
wal1=$(q "SELECT wal_bytes FROM pg_stat_wal")
echo "per job: server CPU $(echo "scale=1; ($cpu1 - $cpu0) * 1000000 / $JOBS" | bc) µs, WAL $(( (wal1 - wal0) / JOBS )) bytes"
