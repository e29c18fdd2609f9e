#!/usr/bin/env bash
# Runs every benchmark target of BENCHMARKS.md three times (or $RUNS) against a Redis of its own
# (started here on a free port, nothing kept on disk, flushed between runs; never a shared one)
# and prints each run's line and the median of `jobs_per_s` (latency: of `p99_us`), after the
# machine's bare Redis round trip.
#
#   bench/run-targets.sh            # all scenarios
#   bench/run-targets.sh e2e drain  # some of them
#
# Extra jobs-bench flags (e.g. `--threads 1`) go in $BENCH_FLAGS. $BENCH_BIN runs another build
# of jobs-bench instead of building this tree (to compare two builds, copy each binary aside and
# alternate them with RUNS=1). Run it on an otherwise idle machine: other work on the same cores
# lowers every figure.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
if [ -n "${BENCH_BIN:-}" ]; then
  B=$BENCH_BIN
else
  cargo build --release --bin jobs-bench >&2
  B=target/release/jobs-bench
fi

# shellcheck source=bench/own-redis.sh
source bench/own-redis.sh
R="--redis-url redis://127.0.0.1:$PORT"

declare -A CMD=(
  [e2e]="e2e $R --jobs 200000 --concurrency 64 --producers 16"
  [drain]="drain $R --jobs 1000000 --concurrency 64"
  [enqueue]="enqueue $R --jobs 200000 --producers 16"
  [enqueue-bulk]="enqueue-bulk $R --jobs 500000 --batch 1000"
  [latency]="latency $R --jobs 5000 --rate 1000"
  [memory-drain]="drain --backend memory --jobs 1000000 --concurrency 64"
)
ORDER=(e2e drain enqueue enqueue-bulk latency memory-drain)
[ $# -gt 0 ] && ORDER=("$@")

round_trip

for name in "${ORDER[@]}"; do
  key=jobs_per_s
  [ "$name" = latency ] && key=p99_us
  values=()
  for _ in $(seq "$RUNS"); do
    redis-cli -p "$PORT" flushall >/dev/null
    # shellcheck disable=SC2086
    line=$($B ${CMD[$name]} ${BENCH_FLAGS:-})
    echo "$line"
    values+=("$(sed -n "s/.* $key=\([0-9]*\).*/\1/p" <<<"$line")")
  done
  median=$(printf '%s\n' "${values[@]}" | median)
  echo "== $name: median $key=$median (runs: ${values[*]})"
done
