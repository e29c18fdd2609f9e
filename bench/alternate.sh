#!/usr/bin/env bash
# Runs one scenario with several builds (or settings) alternated, N rounds, against a Redis of
# its own (started here on a free port, nothing kept on disk, flushed before every run; never a
# shared one). Prints the machine's bare round trip to it, each run's rate and the Redis CPU it
# used, then the median rate per build.
# On a noisy machine only alternated runs compare.
#
#   bench/alternate.sh 7 "old=/tmp/old" "new=target/release/jobs-bench" -- e2e --jobs 200000 --concurrency 64 --producers 16
#   bench/alternate.sh 5 "one=target/release/jobs-bench --threads 1" "two=target/release/jobs-bench" -- e2e
#
# Each build is `label=command...`; the scenario and its flags follow `--` (`--redis-url` is
# added).
set -euo pipefail

[ $# -ge 3 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
ROUNDS=$1
shift
builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  builds+=("$1")
  shift
done
[ "${1:-}" = "--" ] || { echo "missing -- before the scenario" >&2; exit 2; }
shift

# shellcheck source=bench/own-redis.sh
source "$(dirname "$0")/own-redis.sh"

redis_cpu() {
  redis-cli -p "$PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.3f", s }'
}

round_trip
declare -A rates
for _ in $(seq "$ROUNDS"); do
  for build in "${builds[@]}"; do
    label=${build%%=*}
    # shellcheck disable=SC2206
    cmd=(${build#*=})
    redis-cli -p "$PORT" flushall >/dev/null
    before=$(redis_cpu)
    line=$("${cmd[@]}" "$@" --redis-url "redis://127.0.0.1:$PORT")
    after=$(redis_cpu)
    rate=$(sed -n 's/.* jobs_per_s=\([0-9]*\).*/\1/p' <<<"$line")
    echo "$label jobs_per_s=$rate redis_cpu_s=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", b - a }')"
    rates[$label]="${rates[$label]:-} $rate"
  done
done
for build in "${builds[@]}"; do
  label=${build%%=*}
  echo "== $label: median jobs_per_s=$(tr ' ' '\n' <<<"${rates[$label]}" | median) (runs:${rates[$label]})"
done
