#!/usr/bin/env bash
# Counts the instructions the jobs-bench process itself (client and worker) executes per job,
# with valgrind's callgrind, for builds compared side by side: a machine-independent measure of
# what a change costs the application, where rates on a busy machine would not tell (Redis runs
# natively, on a free port of its own; see redis-instructions.sh for Redis's own count).
#
#   bench/worker-instructions.sh "off=/tmp/off" "on=target/release/jobs-bench --metrics"
#   SCENARIOS="drain" BACKENDS="memory" bench/worker-instructions.sh "a=/tmp/a" "b=/tmp/b"
#
# Each figure is (I(2N) - I(N)) / N: the instructions of the second N jobs, so start-up and
# one-time costs (connecting, installing a recorder) cancel out. A recorder's rendering at the
# end (`--metrics`) grows with the samples recorded, so it counts.
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
# shellcheck source=bench/own-redis.sh
source "$(dirname "$0")/own-redis.sh"
N=${JOBS:-20000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; kill $REDIS_PID 2>/dev/null || true' EXIT

# Instructions of one run: `count <command...>`.
count() {
  rm -f "$WORK"/cg.*
  redis-cli -p "$PORT" flushall >/dev/null
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" "$@" \
    --redis-url "redis://127.0.0.1:$PORT" --threads 1 >"$WORK/line" 2>"$WORK/valgrind.log"
  sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$WORK"/cg.* | head -1
}

declare -A ARGS=(
  [drain]="drain --concurrency 64"
  [e2e]="e2e --concurrency 64 --producers 16"
)
for scenario in ${SCENARIOS:-drain e2e}; do
  for backend in ${BACKENDS:-memory redis}; do
    for build in "$@"; do
      label=${build%%=*}
      # shellcheck disable=SC2206
      cmd=(${build#*=})
      # shellcheck disable=SC2086
      one=$(count "${cmd[@]}" ${ARGS[$scenario]} --backend "$backend" --jobs "$N")
      # shellcheck disable=SC2086
      two=$(count "${cmd[@]}" ${ARGS[$scenario]} --backend "$backend" --jobs $((2 * N)))
      echo "scenario=$scenario backend=$backend build=$label instructions_per_job=$(( (two - one) / N ))"
    done
  done
done
