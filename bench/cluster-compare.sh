#!/usr/bin/env bash
# Redis Cluster throughput and Redis CPU per job: one scenario with `--queues 3` on a plain
# redis-server, a cluster of 1 primary and a cluster of 3 primaries (started here with
# bench/cluster.sh on free ports, removed on exit), alternated for ROUNDS rounds. Each run gets
# a fresh prefix chosen so that on the 3-primary cluster the three queues land on three
# different primaries. Per run: the rate and each primary's CPU (used_cpu_sys + used_cpu_user
# from INFO cpu) per job, in microseconds; then the medians.
#
#   bench/cluster-compare.sh 3 -- e2e --jobs 100000
#   REPLICAS=1 CONFIGS="c3 c3ack" bench/cluster-compare.sh 3 -- e2e --jobs 50000
#
# CONFIGS picks among: single (plain redis-server), c1 (1 primary), c3 (3 primaries), c3ack
# (3 primaries with --replicas-ack 1; needs REPLICAS=1). REPLICAS gives every cluster primary
# that many replicas.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
ROUNDS=$1
shift
[ "$1" = "--" ] || { echo "missing -- before the scenario" >&2; exit 2; }
shift
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-$here/../target/release/jobs-bench}
CONFIGS=${CONFIGS:-single c1 c3}
REPLICAS=${REPLICAS:-0}
tmp=$(mktemp -d)
trap 'for d in "$tmp"/*/; do "$here/cluster.sh" stop "$d" >/dev/null 2>&1 || true; done; rm -rf "$tmp"' EXIT

"$here/cluster.sh" start "$tmp/single" 0 >/dev/null
# redis-cli --cluster create needs 3 primaries, so a 1-primary cluster gets no replica.
case " $CONFIGS " in *" c1 "*) "$here/cluster.sh" start "$tmp/c1" 1 >/dev/null ;; esac
"$here/cluster.sh" start "$tmp/c3" 3 "$REPLICAS" >/dev/null
port=$(head -1 "$tmp/single/ports")
redis-benchmark -p "$port" -c 1 -n 10000 -t ping_mbulk --csv 2>/dev/null | tr -d '"' |
    awk -F, '$1 == "PING_MBULK" { printf "== round trip (redis-benchmark, 1 client): avg_us=%d p99_us=%d max_us=%d\n", $3 * 1000, $7 * 1000, $8 * 1000 }'

median() { sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# A prefix whose queues bench0..bench2 sit on three different primaries of the c3 cluster.
spread_prefix() {
    local c3port n p owners
    c3port=$(head -1 "$tmp/c3/ports")
    for n in $(seq 1 500); do
        p="cc-$$-$RANDOM-$n"
        owners=$(for q in 0 1 2; do
            slot=$(redis-cli -p "$c3port" CLUSTER KEYSLOT "{$p:bench$q}")
            redis-cli -p "$c3port" CLUSTER NODES | awk -v s="$slot" '$3 ~ /master/ {
                for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
                    if (s + 0 >= r[1] + 0 && s + 0 <= r[2] + 0) print $2 } }'
        done | sort -u | wc -l)
        if [ "$owners" = 3 ]; then echo "$p"; return; fi
    done
    echo "no spreading prefix found" >&2
    exit 1
}

declare -A rates cpus
for _ in $(seq "$ROUNDS"); do
    for config in $CONFIGS; do
        case $config in
        single) dir=$tmp/single; flags=() ;;
        c1) dir=$tmp/c1; flags=(--cluster) ;;
        c3) dir=$tmp/c3; flags=(--cluster) ;;
        c3ack) dir=$tmp/c3; flags=(--cluster --replicas-ack 1) ;;
        *) echo "unknown config $config" >&2; exit 2 ;;
        esac
        prefix=$(spread_prefix)
        before=$("$here/cluster.sh" cpu "$dir")
        line=$("$bench" "$@" --queues 3 --prefix "$prefix" --redis-url "$(cat "$dir/urls")" "${flags[@]}")
        after=$("$here/cluster.sh" cpu "$dir")
        jobs=$(sed -n 's/.* jobs=\([0-9]*\).*/\1/p' <<<"$line")
        rate=$(sed -n 's/.* jobs_per_s=\([0-9]*\).*/\1/p' <<<"$line")
        per_node=$(join <(sort <<<"$before") <(sort <<<"$after") |
            awk -v j="$jobs" '{ d = ($3 - $2) * 1e6 / j; t += d; printf "%s:%.1f ", $1, d } END { printf "total:%.1f", t }')
        total=${per_node##*total:}
        echo "$config jobs_per_s=$rate redis_cpu_us_per_job=[$per_node]"
        rates[$config]="${rates[$config]:-} $rate"
        cpus[$config]="${cpus[$config]:-} $total"
        # Keep the servers small between runs: drop this run's keys (all under its prefix).
        while read -r p; do
            redis-cli -p "$p" FLUSHALL >/dev/null 2>&1 || true
        done <"$dir/ports"
    done
done
for config in $CONFIGS; do
    echo "== $config: median jobs_per_s=$(tr ' ' '\n' <<<"${rates[$config]}" | median) (runs:${rates[$config]}) median redis_cpu_us_per_job=$(tr ' ' '\n' <<<"${cpus[$config]}" | median) (runs:${cpus[$config]})"
done
