#!/usr/bin/env bash
# PostgreSQL bloat and the idle-transaction effect (issue: "no bloat").
#
#   bench/pg-bloat.sh [JOBS]            default 1,000,000
#
# 1. Runs JOBS jobs end to end through one schema (10,000 first, then the rest), printing every
#    10 s the schema's total size (tables + indexes, `pg_total_relation_size`) and its dead rows
#    (`n_dead_tup`), so the size after the first 10,000 can be compared with the size at the end.
# 2. Drains 200,000 jobs twice, once with nothing else running and once while another session
#    holds a transaction open (so vacuum cannot reclaim what the drain leaves dead), and prints
#    both rates.
# Needs `psql` and the release build of jobs-bench; JOBS_POSTGRES_URL as for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
URL="${JOBS_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
JOBS="${1:-1000000}"
BIN=target/release/jobs-bench
cargo build --release -q -p jobs-bench
SCHEMA="bloat_$$"
size() {
    psql "$URL" -Atqc "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))::bigint) || ' ' ||
        sum(pg_total_relation_size(c.oid))::bigint || ' dead=' ||
        coalesce((SELECT sum(n_dead_tup) FROM pg_stat_user_tables WHERE schemaname = '$SCHEMA'), 0)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = '$SCHEMA' AND c.relkind = 'r'"
}
echo "loopback round trip: $(psql "$URL" -Atqc '\timing on' -c 'select 1' 2>/dev/null | grep -o 'Time: [0-9.]* ms' | tail -1)"
$BIN e2e --backend postgres --postgres-url "$URL" --prefix "$SCHEMA" --jobs 10000 | sed 's/^/first 10000: /'
echo "after 10000: $(size)"
$BIN e2e --backend postgres --postgres-url "$URL" --prefix "$SCHEMA" --jobs "$((JOBS - 10000))" \
    | sed 's/^/the rest: /' &
run=$!
while kill -0 $run 2>/dev/null; do
    sleep 10
    echo "$(date +%T) size: $(size)"
done
wait $run
echo "after $JOBS: $(size)"
sleep 30
echo "30 s later: $(size)"
psql "$URL" -qc "DROP SCHEMA \"$SCHEMA\" CASCADE" 2>/dev/null

echo "--- drain with and without a transaction held open by another session"
for held in no yes; do
    if [ "$held" = yes ]; then
        psql "$URL" -qc "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT txid_current(); SELECT pg_sleep(90); COMMIT;" >/dev/null &
        holder=$!
        sleep 1
    fi
    $BIN drain --backend postgres --postgres-url "$URL" --jobs 200000 | sed "s/^/held=$held: /"
    if [ "$held" = yes ]; then kill $holder 2>/dev/null || true; fi
done
