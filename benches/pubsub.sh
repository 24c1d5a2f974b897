#!/usr/bin/env bash
# benches/pubsub.sh — PUBLISH throughput to 1 and to 100 subscribers, redis-server and cachette
# side by side.
#
# For each server and each subscriber count, benches/pubsub_drain.py subscribes N connections to
# one channel and drains them; redis-benchmark then sends PUBLISH from 50 connections. The table
# shows redis-benchmark's requests per second and checks that every subscriber received every
# message (each message is the same size, so bytes tell the count). Both servers run with
# `client-output-buffer-limit pubsub 0 0 0`, so a drainer that falls behind slows the run
# instead of being disconnected; the drainer shares the client core with redis-benchmark.
#
#   benches/pubsub.sh                 full run (3 repeats, 1,000,000 publishes per cell)
#   QUICK=1 benches/pubsub.sh         smoke run (1 repeat, 20,000 publishes per cell)
#
# Knobs: REPEATS REQUESTS CONNS PIPELINE SUBSCRIBERS SERVER_CPU CLIENT_CPU SKIP_BUILD CACHETTE_BIN

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ ${QUICK:-0} == 1 ]]; then
    REPEATS=${REPEATS:-1}
    REQUESTS=${REQUESTS:-20000}
else
    REPEATS=${REPEATS:-3}
    REQUESTS=${REQUESTS:-1000000}
fi
CONNS=${CONNS:-50}
PIPELINE=${PIPELINE:-1}
SUBSCRIBERS=${SUBSCRIBERS:-"1 100"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHETTE_BIN=${CACHETTE_BIN:-$CARGO_TARGET/release/cachette}
PAYLOAD=$(printf 'x%.0s' $(seq 1 32))
CHANNEL=bench

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [[ -n $p ]] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$ROOT" && cargo build --release --quiet)
fi

start_server() { # name -> sets PORT, appends the pid to PIDS
    local name=$1 port
    port=$(free_port)
    if [[ $name == redis ]]; then
        taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --client-output-buffer-limit "pubsub 0 0 0" >/dev/null 2>&1 &
    else
        taskset -c "$SERVER_CPU" "$CACHETTE_BIN" --bind 127.0.0.1 --port "$port" --memcache-port 0 --threads 1 \
            --client-output-buffer-limit "pubsub 0 0 0" --save '' >/dev/null 2>&1 &
    fi
    PIDS+=($!)
    wait_port "$port" || { echo "pubsub.sh: $name did not start" >&2; exit 1; }
    PORT=$port
}

# One cell: subscribers + redis-benchmark PUBLISH; prints "rps ok|LOST".
cell() {
    local port=$1 subs=$2 rps line fifo drain
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    taskset -c "$CLIENT_CPU" python3 "$ROOT/benches/pubsub_drain.py" "$port" "$subs" "$CHANNEL" 600 <"$fifo" >"$fifo.out" &
    drain=$!
    exec 9>"$fifo"
    for _ in $(seq 1 300); do grep -q READY "$fifo.out" 2>/dev/null && break; sleep 0.1; done
    line=$(taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -c "$CONNS" -P "$PIPELINE" -n "$REQUESTS" --csv \
        PUBLISH "$CHANNEL" "$PAYLOAD" | tail -n 1)
    rps=$(echo "$line" | cut -d, -f2 | tr -d '"')
    echo >&9
    exec 9>&-
    wait "$drain" || true
    # Bytes per message: *3\r\n $7\r\n message\r\n $<len>\r\n <channel>\r\n $<len>\r\n <payload>\r\n
    local cl=${#CHANNEL} pl=${#PAYLOAD}
    local per=$((4 + 4 + 9 + 3 + ${#cl} + cl + 2 + 3 + ${#pl} + pl + 2))
    local want=$((REQUESTS * per)) got
    got=$(awk '/^BYTES/ {print $2}' "$fifo.out")
    rm -f "$fifo" "$fifo.out"
    if [[ $got == "$want" ]]; then echo "$rps ok"; else echo "$rps LOST($got/$want bytes)"; fi
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-12s %-10s %14s %14s %8s\n' "publish" "subs" "redis rps" "cachette rps" "ratio"
for subs in $SUBSCRIBERS; do
    declare -a r=() c=()
    for _ in $(seq 1 "$REPEATS"); do
        for name in redis cachette; do
            start_server $name
            res=$(cell "$PORT" "$subs")
            kill "${PIDS[-1]}" 2>/dev/null || true
            wait "${PIDS[-1]}" 2>/dev/null || true
            [[ $res == *ok ]] || echo "pubsub.sh: $name, $subs subscriber(s): $res" >&2
            if [[ $name == redis ]]; then r+=("${res%% *}"); else c+=("${res%% *}"); fi
        done
    done
    rm=$(printf '%s\n' "${r[@]}" | median)
    cm=$(printf '%s\n' "${c[@]}" | median)
    ratio=$(awk -v a="$cm" -v b="$rm" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    printf '%-12s %-10s %14s %14s %8s\n' "P$PIPELINE c$CONNS" "$subs" "$rm" "$cm" "${ratio}x"
done
