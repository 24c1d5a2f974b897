#!/usr/bin/env bash
# RDB snapshots side by side: redis-server and cachette, same keyspace, same run.
#
# Fills each server with N keys of mixed types (by default 1,000,000: 60% strings of 32-100
# bytes, 10% each lists, hashes, sets and sorted sets of 8 elements, 10% of all keys with a
# TTL), then measures
#   - SAVE: wall time and file size,
#   - BGSAVE: time until INFO says it finished (the fork's cost shows up in the reply time),
#   - load at start-up: time from spawn until the server answers PING with PONG,
#   - BGSAVE under load: redis-benchmark GET/SET (50 clients, random keys of the keyspace) alone
#     and again with a BGSAVE started at the same moment: requests/s and the worst latency of
#     each run, and the peak memory of server plus child during the save (PSS, so pages the
#     fork shares are counted once, and RSS, which counts them twice as `top` would), how
#     long that save took, and the server's minor page faults during each run (during the save:
#     copy-on-write copies, plus one write-protect fault per page first written after it).
# The strings are named as redis-benchmark's `key:__rand_int__` expands (`key:%012d`, numbered
# 0..STRINGS-1) and its -r is STRINGS, so its GETs and SETs hit the filled strings (a GET on a
# list would end redis-benchmark with WRONGTYPE); the other types are named `other:N`.
# Pinning, as run.sh: both servers (and so their fork children, which inherit the affinity) on
# SERVER_CPU, redis-benchmark and the other clients on CLIENT_CPU; cachette runs one worker
# thread (`--threads 1`), as single-threaded as redis-server, so neither side shares its core
# with its own client or its own second thread.
# Everything runs in a temporary directory that is removed at the end; servers listen on
# 127.0.0.1 on free ports and are killed on exit.
#
#   benches/persist.sh            # 1,000,000 keys
#   KEYS=200000 benches/persist.sh
#   ONLY=cachette|redis-server     # one server only
#   SAVE_TIMES=0                   # only the BGSAVE-under-load lines
#   CACHETTE_ARGS='--x y'          # extra cachette options (A/B runs)
#   REDIS_ARGS='--x y'             # extra redis-server options, e.g. both with
#                                  # '--bgsave_cpulist 1' to keep the child off the server's core
#   BENCH_TESTS=get                # redis-benchmark -t (default get,set)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS=${KEYS:-1000000}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHETTE_BIN=${CACHETTE_BIN:-$CARGO_TARGET/release/cachette}
WORK=$(mktemp -d /tmp/cachette-persist-bench.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_CLIENT=(taskset -c "$CLIENT_CPU")
    echo "servers on cpu $SERVER_CPU, clients on cpu $CLIENT_CPU (taskset)" >&2
else
    PIN_SERVER=()
    PIN_CLIENT=()
    echo "NOT pinned (needs taskset and 2 cpus): clients and servers share cores" >&2
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }

if [[ ! -x $CACHETTE_BIN || ${BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin cachette >/dev/null 2>&1)
fi

echo "generating $KEYS keys of mixed types…" >&2
python3 - "$KEYS" >"$WORK/fill.resp" <<'EOF'
import random, sys
n = int(sys.argv[1])
rnd = random.Random(7)
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
strings = 0
for i in range(n):
    r = i % 10
    k = b"key:%012d" % strings if r < 6 else b"other:%d" % i
    if r < 6:
        strings += 1
        cmd(b"SET", k, b"v" * rnd.randint(32, 100))
    elif r == 6:
        cmd(b"RPUSH", k, *[b"item-%d" % j for j in range(8)])
    elif r == 7:
        cmd(b"HSET", k, *sum([[b"f%d" % j, b"value-%d" % j] for j in range(8)], []))
    elif r == 8:
        cmd(b"SADD", k, *[b"m%d" % j for j in range(8)])
    else:
        cmd(b"ZADD", k, *sum([[str(j * 1.5).encode(), b"m%d" % j] for j in range(8)], []))
    if i % 10 == 3:
        cmd(b"EXPIRE", k, 86400)
EOF

# The fill's string count: 6 of every 10 keys.
STRINGS=$((KEYS / 10 * 6 + (KEYS % 10 < 6 ? KEYS % 10 : 6)))

STARTED=
start() { # name args... (sets STARTED to the pid)
    local name=$1
    shift
    "${PIN_SERVER[@]}" "$@" >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

wait_pong() { # port -> ms waited
    local port=$1 t0
    t0=$(now_ms)
    for _ in $(seq 1 6000); do
        if [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]]; then
            echo $(($(now_ms) - t0))
            return
        fi
        sleep 0.01
    done
    echo "timeout"
}

wait_bgsave() { # port
    for _ in $(seq 1 60000); do
        if redis-cli -p "$1" INFO persistence | grep -q '^rdb_bgsave_in_progress:0'; then return; fi
        sleep 0.01
    done
}

# Peak PSS and RSS (kB) of $1 and its children, sampled every 20 ms until file $2 exists.
peak_mem() {
    local pid=$1 stop=$2 pss=0 rss=0
    while [[ ! -e $stop ]]; do
        local p=0 r=0 q
        for q in $pid $(pgrep -P "$pid" || true); do
            if [[ -r /proc/$q/smaps_rollup ]]; then
                p=$((p + $(awk '/^Pss:/{print $2}' "/proc/$q/smaps_rollup" 2>/dev/null || echo 0)))
                r=$((r + $(awk '/^Rss:/{print $2}' "/proc/$q/smaps_rollup" 2>/dev/null || echo 0)))
            fi
        done
        ((p > pss)) && pss=$p
        ((r > rss)) && rss=$r
        sleep 0.02
    done
    echo "$pss $rss"
}

# Minor page faults of process $1 so far (copy-on-write copies show up here during a save).
minflt() { awk '{print $10}' "/proc/$1/stat"; }

# redis-benchmark SET+GET on the keyspace: "set/s get/s max_latency_ms".
bench() {
    "${PIN_CLIENT[@]}" redis-benchmark -p "$1" -t "${BENCH_TESTS:-get,set}" -n "${BENCH_REQUESTS:-400000}" -c 50 -r "$STRINGS" -d 64 --csv 2>/dev/null |
        awk -F, 'NR>1 {gsub(/"/,""); rps[NR]=$2; if ($8+0 > max) max=$8+0} END {printf "%s %s %s", rps[2], rps[3], max}'
}

LOADLINES=()

run_one() { # name command...
    local name=$1
    shift
    local dir=$WORK/$name port pid t0 save_ms bg_ms load_ms size
    mkdir -p "$dir"
    port=$(free_port)
    start "$name" "$@" --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --dbfilename dump.rdb
    pid=$STARTED
    wait_pong "$port" >/dev/null
    "${PIN_CLIENT[@]}" redis-cli -p "$port" --pipe <"$WORK/fill.resp" >/dev/null
    if [[ ${BGSAVE_LOAD:-1} == 1 ]]; then
        local base during mem
        local alone_flt0
        alone_flt0=$(minflt "$pid")
        base=$(bench "$port")
        base="$base $(($(minflt "$pid") - alone_flt0))"
        rm -f "$WORK/stop"
        peak_mem "$pid" "$WORK/stop" >"$WORK/mem" &
        local sampler=$!
        local bg0 bg_load_ms flt0 faults
        flt0=$(minflt "$pid")
        bg0=$(now_ms)
        redis-cli -p "$port" BGSAVE >/dev/null
        during=$(bench "$port")
        wait_bgsave "$port"
        bg_load_ms=$(($(now_ms) - bg0))
        faults=$(($(minflt "$pid") - flt0))
        touch "$WORK/stop"
        wait "$sampler"
        mem=$(cat "$WORK/mem")
        LOADLINES+=("$(printf '%-14s %-28s %-28s %-18s %-10s %s' "$name" "$base" "$during" "$mem" "$bg_load_ms" "$faults")")
    fi
    if [[ ${SAVE_TIMES:-1} != 1 ]]; then
        kill -9 "$pid"
        wait "$pid" 2>/dev/null || true
        return
    fi
    t0=$(now_ms)
    redis-cli -p "$port" SAVE >/dev/null
    save_ms=$(($(now_ms) - t0))
    size=$(stat -c %s "$dir/dump.rdb")
    t0=$(now_ms)
    redis-cli -p "$port" BGSAVE >/dev/null
    wait_bgsave "$port"
    bg_ms=$(($(now_ms) - t0))
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    port=$(free_port)
    start "$name-load" "$@" --port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --dbfilename dump.rdb
    pid=$STARTED
    load_ms=$(wait_pong "$port")
    local keys
    keys=$(redis-cli -p "$port" DBSIZE)
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    printf '%-14s %10s %12s %12s %12s %10s\n' "$name" "$keys" "$save_ms" "$bg_ms" "$load_ms" "$size"
}

printf '%-14s %10s %12s %12s %12s %10s\n' server keys "SAVE ms" "BGSAVE ms" "load ms" "bytes"
[[ ${ONLY:-} == cachette ]] || run_one redis-server redis-server --appendonly no ${REDIS_ARGS:-}
[[ ${ONLY:-} == redis-server ]] || run_one cachette "$CACHETTE_BIN" --memcache-port 0 --threads 1 ${CACHETTE_ARGS:-}
if ((${#LOADLINES[@]})); then
    echo
    printf '%-14s %-28s %-28s %-18s %-10s %s\n' server "alone: set/s get/s max-ms faults" "during BGSAVE: same" "peak PSS/RSS kB" "BGSAVE ms" "server minor faults"
    printf '%s\n' "${LOADLINES[@]}"
fi
