#!/usr/bin/env bash
# Local Redis servers for jobs-bench, on free ports in a directory of their own:
#
#   bench/cluster.sh start DIR MASTERS [REPLICAS]   # a cluster of MASTERS primaries, each with
#                                                   # REPLICAS replicas (default 0); MASTERS=0
#                                                   # starts one plain redis-server instead
#   bench/cluster.sh urls DIR                       # the --redis-url list (comma-separated)
#   bench/cluster.sh pids DIR                       # the servers' pids (for `ps -o`)
#   bench/cluster.sh cpu DIR                        # used_cpu_sys+used_cpu_user of each primary
#   bench/cluster.sh stop DIR                       # stops them and removes DIR
#
# A cluster of one primary is a real cluster (all 16384 slots on it), so "1 master vs 3 masters"
# compares the same client code. Persistence is off (`--save "" --appendonly no`).
set -euo pipefail

cmd=${1:?usage: cluster.sh start|urls|pids|cpu|stop DIR ...}
dir=${2:?a directory}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_node() { # port dir [cluster]
    local port=$1 nd=$2 cluster=${3:-}
    mkdir -p "$nd"
    local extra=()
    if [ -n "$cluster" ]; then
        extra=(--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000
               --cluster-port "$(free_port)")
    fi
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --maxmemory-policy noeviction --dir "$nd" --logfile "$nd/redis.log" \
        --pidfile "$nd/redis.pid" --daemonize yes "${extra[@]}"
    for _ in $(seq 1 100); do
        redis-cli -p "$port" PING >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "redis-server on $port did not start" >&2
    exit 1
}

case "$cmd" in
start)
    masters=${3:?how many masters (0: one plain redis-server)}
    replicas=${4:-0}
    mkdir -p "$dir"
    : >"$dir/ports"
    if [ "$masters" = 0 ]; then
        port=$(free_port)
        start_node "$port" "$dir/node-$port"
        echo "$port" >>"$dir/ports"
        echo "redis://127.0.0.1:$port" >"$dir/urls"
    else
        total=$((masters * (1 + replicas)))
        addrs=()
        for _ in $(seq 1 "$total"); do
            port=$(free_port)
            start_node "$port" "$dir/node-$port" cluster
            echo "$port" >>"$dir/ports"
            addrs+=("127.0.0.1:$port")
        done
        if [ "$masters" = 1 ] && [ "$replicas" = 0 ]; then
            # redis-cli --cluster create wants 3 primaries: give the one node every slot.
            port=${addrs[0]#127.0.0.1:}
            redis-cli -p "$port" CLUSTER ADDSLOTSRANGE 0 16383 >/dev/null
        else
            redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
                --cluster-yes >/dev/null
        fi
        for _ in $(seq 1 200); do
            ok=1
            while read -r port; do
                redis-cli -p "$port" CLUSTER INFO | grep -q 'cluster_state:ok' || ok=0
            done <"$dir/ports"
            [ "$ok" = 1 ] && break
            sleep 0.1
        done
        [ "$ok" = 1 ] || { echo "the cluster did not become ok" >&2; exit 1; }
        sed 's|^|redis://127.0.0.1:|' "$dir/ports" | paste -sd, >"$dir/urls"
    fi
    cat "$dir/urls"
    ;;
urls) cat "$dir/urls" ;;
pids) cat "$dir"/node-*/redis.pid ;;
cpu)
    while read -r port; do
        role=$(redis-cli -p "$port" INFO replication | tr -d '\r' | sed -n 's/^role://p')
        [ "$role" = master ] || continue
        redis-cli -p "$port" INFO cpu | tr -d '\r' |
            awk -v p="$port" -F: '/^used_cpu_sys:/{s=$2} /^used_cpu_user:/{u=$2} END{printf "%s %.6f\n", p, s+u}'
    done <"$dir/ports"
    ;;
stop)
    if [ -f "$dir/ports" ]; then
        for f in "$dir"/node-*/redis.pid; do
            [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
        done
        sleep 0.3
    fi
    rm -rf "$dir"
    ;;
*) echo "unknown command $cmd" >&2; exit 2 ;;
esac
