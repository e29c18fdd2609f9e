#!/usr/bin/env bash
# Counts the instructions Redis executes per job, with valgrind's callgrind, for the Redis
# scenarios of BENCHMARKS.md. Instruction counts do not depend on what else the machine is doing,
# so two builds compare on a noisy machine where their rates would not (times do not; each run
# takes seconds under valgrind, so the job counts are small).
#
#   bench/redis-instructions.sh                 # drain, e2e, enqueue
#   bench/redis-instructions.sh drain           # some of them
#   BENCH_BIN=/tmp/old-jobs-bench bench/redis-instructions.sh   # another build
#
# Each run gets a redis-server of its own under valgrind, on a free port, nothing kept on disk.
# `drain` counts fetch and complete only: the count of an `enqueue-bulk` run of the same jobs
# (its untimed pre-fill) is subtracted.
set -euo pipefail

cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is required" >&2; exit 1; }
if [ -n "${BENCH_BIN:-}" ]; then
  B=$BENCH_BIN
else
  cargo build --release --bin jobs-bench >&2
  B=target/release/jobs-bench
fi
N=${JOBS:-20000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Redis instructions for one jobs-bench run: `count <scenario args...>`.
count() {
  local port pid
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f "$WORK"/cg.*
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" \
    redis-server --port "$port" --save "" --appendonly no >/dev/null 2>"$WORK/valgrind.log" &
  pid=$!
  until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.2; done
  "$B" "$@" --redis-url "redis://127.0.0.1:$port" >"$WORK/line"
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  wait "$pid" || true
  sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$WORK"/cg.* | head -1
}

declare -A CMD=(
  [drain]="drain --jobs $N --concurrency 64"
  [e2e]="e2e --jobs $N --concurrency 64 --producers 16"
  [enqueue]="enqueue --jobs $N --producers 16"
)
ORDER=(drain e2e enqueue)
[ $# -gt 0 ] && ORDER=("$@")

for name in "${ORDER[@]}"; do
  # shellcheck disable=SC2086
  total=$(count ${CMD[$name]})
  base=0
  if [ "$name" = drain ]; then
    base=$(count enqueue-bulk --jobs "$N" --batch 1000)
  fi
  echo "scenario=$name jobs=$N redis_instructions_per_job=$(( (total - base) / N ))"
done
