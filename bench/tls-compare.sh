#!/usr/bin/env bash
# Plain TCP against TLS on one redis-server of its own, which serves both (a plain port and a
# TLS port, with a throw-away CA and server certificate made here with `openssl`; nothing kept
# on disk, flushed before every run; never a shared Redis). Prints the bare round trip on each
# port, then runs each scenario N rounds, plain and TLS alternated, and prints each run's rate
# with the Redis CPU it used (`INFO cpu`), and the medians.
#
#   bench/tls-compare.sh 3                       # enqueue and e2e, 200,000 jobs, 3 rounds
#   BENCH_BIN=/tmp/jobs-bench bench/tls-compare.sh 5 e2e
#
# Needs a jobs-bench built with TLS (it is: `jobs` with `tls`, for `--redis-ca`).
set -euo pipefail

ROUNDS=${1:-3}
shift || true
if [ $# -gt 0 ]; then SCENARIOS=("$@"); else SCENARIOS=(enqueue e2e); fi
BIN=${BENCH_BIN:-target/release/jobs-bench}

DIR=$(mktemp -d)
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
TLS_PORT=$(free_port)
while [ "$TLS_PORT" = "$PORT" ]; do TLS_PORT=$(free_port); done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj "/CN=jobs bench CA" -keyout "$DIR/ca.key" -out "$DIR/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$DIR/redis.key" -out "$DIR/redis.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$DIR/ext"
openssl x509 -req -in "$DIR/redis.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
  -days 1 -extfile "$DIR/ext" -out "$DIR/redis.crt" 2>/dev/null

redis-server --port "$PORT" --tls-port "$TLS_PORT" --tls-cert-file "$DIR/redis.crt" \
  --tls-key-file "$DIR/redis.key" --tls-ca-cert-file "$DIR/ca.crt" --tls-auth-clients no \
  --save "" --appendonly no --daemonize no --dir "$DIR" >/dev/null &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done

median() {
  sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

redis_cpu() {
  redis-cli -p "$PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.3f", s }'
}

round_trip() {
  local label=$1
  shift
  redis-benchmark "$@" -c 1 -n 10000 -t ping_mbulk --csv 2>/dev/null | tr -d '"' |
    awk -F, -v l="$label" '$1 == "PING_MBULK" { printf "== %s round trip (redis-benchmark, 1 client): avg_us=%d p99_us=%d\n", l, $3 * 1000, $7 * 1000 }'
}
round_trip plain -p "$PORT"
round_trip tls -p "$TLS_PORT" --tls --cacert "$DIR/ca.crt"

declare -A flags=(
  [enqueue]="--jobs 200000 --producers 16"
  [e2e]="--jobs 200000 --concurrency 64 --producers 16"
  [drain]="--jobs 500000 --concurrency 64"
)
for scenario in "${SCENARIOS[@]}"; do
  declare -A rates=()
  for _ in $(seq "$ROUNDS"); do
    for mode in plain tls; do
      if [ "$mode" = plain ]; then
        target=(--redis-url "redis://127.0.0.1:$PORT")
      else
        target=(--redis-url "rediss://127.0.0.1:$TLS_PORT" --redis-ca "$DIR/ca.crt")
      fi
      redis-cli -p "$PORT" flushall >/dev/null
      before=$(redis_cpu)
      # shellcheck disable=SC2086
      line=$("$BIN" "$scenario" ${flags[$scenario]:-} "${target[@]}")
      after=$(redis_cpu)
      rate=$(sed -n 's/.* jobs_per_s=\([0-9]*\).*/\1/p' <<<"$line")
      echo "$scenario $mode jobs_per_s=$rate redis_cpu_s=$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", b - a }')"
      rates[$mode]="${rates[$mode]:-} $rate"
    done
  done
  for mode in plain tls; do
    echo "== $scenario $mode: median jobs_per_s=$(tr ' ' '\n' <<<"${rates[$mode]}" | median) (runs:${rates[$mode]})"
  done
  unset rates
done
