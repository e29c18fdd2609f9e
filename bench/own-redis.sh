# Sourced by the bench scripts. Starts a redis-server of the script's own on a free port (nothing
# kept on disk; the scripts flush it between runs, so never a shared one), stops it on exit, and
# sets PORT. Also defines `median`: the median of the numbers on stdin, one per line.

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --save "" --appendonly no --daemonize no >/dev/null &
REDIS_PID=$!
trap 'kill $REDIS_PID 2>/dev/null || true' EXIT
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done

median() {
  sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
