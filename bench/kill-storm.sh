#!/usr/bin/env bash
# The operator's kill storm of issue 19, against a Redis of its own (free port, nothing on disk):
# JOBS jobs (`jobs-bench enqueue`; the bench job has no retries), then KILLS `jobs-bench work`
# processes started one after another, each SIGKILLed after KILL_AFTER seconds, then one worker
# left to finish; prints the final counts (`jobs-bench stats`): succeeded must equal JOBS,
# failed 0, nothing left processing.
#
#   bench/kill-storm.sh                      # 100,000 jobs, ten kills
#   JOBS=20000 KILLS=5 bench/kill-storm.sh   # the issue's first measurement
#
# $BENCH_BIN runs another build of jobs-bench instead of building this tree.
set -euo pipefail

cd "$(dirname "$0")/.."
JOBS=${JOBS:-100000}
KILLS=${KILLS:-10}
KILL_AFTER=${KILL_AFTER:-1}
WORK="--concurrency 32 --job-us 20000 --lease-ms 2000"
if [ -n "${BENCH_BIN:-}" ]; then
  B=$BENCH_BIN
else
  cargo build --release --bin jobs-bench >&2
  B=target/release/jobs-bench
fi

# shellcheck source=bench/own-redis.sh
source bench/own-redis.sh
R="--redis-url redis://127.0.0.1:$PORT"
P="--prefix storm-$$"

"$B" enqueue $R $P --jobs "$JOBS"
for i in $(seq "$KILLS"); do
  "$B" work $R $P $WORK >/dev/null &
  pid=$!
  sleep "$KILL_AFTER"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  echo "kill $i: $("$B" stats $R $P)"
done
SECONDS=0
"$B" work $R $P $WORK
echo "the last worker finished in ${SECONDS} s"
"$B" stats $R $P
# Why the first failed jobs failed (their record and history), if any did.
for id in $(redis-cli -p "$PORT" zrange "{storm-$$:bench}:failed" 0 4); do
  echo "failed job $id: $(redis-cli -p "$PORT" hget "{storm-$$:bench}:jobs" "$id" | cut -c1-40)"
  redis-cli -p "$PORT" hget "{storm-$$:bench}:hist" "$id"
done
