# Sourced by the bench scripts. Starts a redis-server of the script's own on a free port (nothing
# kept on disk; the scripts flush it between runs, so never a shared one), stops it on exit, and
# sets PORT. Also defines `median`: the median of the numbers on stdin, one per line, and
# `round_trip`, which prints the machine's bare round trip to that Redis.

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --save "" --appendonly no --daemonize no >/dev/null &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null || true' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done

median() {
  sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# The bare round trip to this Redis (one client, one PING at a time): what bounds the scenarios
# that wait on round trips in lockstep (`enqueue`, `e2e`, `latency`), and the figure that
# differs most between machines of one kind.
round_trip() {
  redis-benchmark -p "$PORT" -c 1 -n 10000 -t ping_mbulk --csv 2>/dev/null | tr -d '"' |
    awk -F, '$1 == "PING_MBULK" { printf "== round trip (redis-benchmark, 1 client): avg_us=%d p99_us=%d max_us=%d\n", $3 * 1000, $7 * 1000, $8 * 1000 }'
}
