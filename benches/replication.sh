#!/usr/bin/env bash
# Replication side by side: redis-server → redis-server and cachette → cachette, same run.
#
# For each kind, a primary pinned to core 0 is filled with KEYS string keys (`key:%d`, VALUE-byte
# values), then measures
#   - full sync: time from REPLICAOF on an empty replica until its link is up and it holds every
#     key, diskless (the Redis 7 default, with repl-diskless-sync-delay 0) and disk-based;
#   - lag under load: redis-benchmark SET with 50 clients on random keys of the keyspace while a
#     sampler reads the primary's master_repl_offset and the replica's slave_repl_offset every
#     50 ms: the median and worst distance in bytes, and how long the replica takes to reach the
#     primary's final offset once the load stops;
#   - primary throughput with 0, 1 and 2 replicas attached (SET, 50 clients, pipelined by
#     PIPELINE so the load generator is not the bottleneck), median of REPEAT runs.
# cachette runs one worker thread (--threads 1), as in the other benches: its default of one
# worker per core would put two busy-polling workers on the one pinned core.
# Replicas and the load generator share core 1 (two cores here); the primary never waits for its
# replicas, so what the ratio shows is what feeding replicas costs the primary.
#
#   benches/replication.sh                   # 1,000,000 keys of 32 bytes
#   KEYS=200000 REPEAT=1 benches/replication.sh
#   ONLY=redis-server benches/replication.sh   # or ONLY=cachette
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS=${KEYS:-1000000}
VALUE=${VALUE:-32}
REPEAT=${REPEAT:-3}
PIPELINE=${PIPELINE:-16}
REQUESTS=${REQUESTS:-1000000}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHETTE_BIN=${CACHETTE_BIN:-$CARGO_TARGET/release/cachette}
WORK=$(mktemp -d /tmp/cachette-repl-bench.XXXXXX)
PIDS=()

cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
field() { # port section name
    redis-cli -p "$1" INFO "$2" | tr -d '\r' | awk -F: -v k="$3" '$1 == k {print $2}'
}

if [[ ! -x $CACHETTE_BIN || ${BUILD:-1} == 1 ]]; then
    (cd "$ROOT" && cargo build --release --bin cachette >/dev/null 2>&1)
fi

python3 - "$KEYS" "$VALUE" >"$WORK/fill.resp" <<'EOF'
import sys
n, size = int(sys.argv[1]), int(sys.argv[2])
out = sys.stdout.buffer
v = b"v" * size
for i in range(n):
    k = b"key:%d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v))
EOF

STARTED=
start() { # name core args...
    local name=$1 core=$2
    shift 2
    taskset -c "$core" "$@" >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
}

wait_pong() {
    for _ in $(seq 1 3000); do
        [[ $(redis-cli -p "$1" PING 2>/dev/null) == PONG ]] && return
        sleep 0.01
    done
    echo "server on $1 did not answer" >&2
    exit 1
}

wait_synced() { # replica-port keys -> ms since $2's start (caller measures)
    for _ in $(seq 1 30000); do
        if [[ $(field "$1" replication master_link_status) == up &&
            $(redis-cli -p "$1" DBSIZE 2>/dev/null) == "$2" ]]; then
            return
        fi
        sleep 0.01
    done
    echo "replica on $1 did not sync" >&2
    exit 1
}

stop() {
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

set_rps() { # port -> SET requests/s
    redis-benchmark -p "$1" -t set -n "$REQUESTS" -c 50 -P "$PIPELINE" -r "$KEYS" -d "$VALUE" --csv 2>/dev/null |
        awk -F, 'NR == 2 {gsub(/"/, ""); print int($2)}'
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# server name, then the command line of one instance without its port.
run_kind() {
    local name=$1
    shift
    local pport rport rport2 ppid rpid rpid2 t0 diskless disk
    pport=$(free_port)
    start "$name-primary" 0 "$@" --port "$pport" --dir "$WORK" --dbfilename "$name-p.rdb" \
        --repl-diskless-sync yes --repl-diskless-sync-delay 0 --repl-backlog-size 64mb
    ppid=$STARTED
    wait_pong "$pport"
    redis-cli -p "$pport" --pipe <"$WORK/fill.resp" >/dev/null

    # Full sync, diskless then disk-based, each into a fresh empty replica.
    for mode in yes no; do
        redis-cli -p "$pport" CONFIG SET repl-diskless-sync "$mode" >/dev/null
        rport=$(free_port)
        start "$name-replica-$mode" 1 "$@" --port "$rport" --dir "$WORK" --dbfilename "$name-r-$mode.rdb"
        rpid=$STARTED
        wait_pong "$rport"
        t0=$(now_ms)
        redis-cli -p "$rport" REPLICAOF 127.0.0.1 "$pport" >/dev/null
        wait_synced "$rport" "$KEYS"
        if [[ $mode == yes ]]; then diskless=$(($(now_ms) - t0)); else disk=$(($(now_ms) - t0)); fi
        [[ $mode == yes ]] && stop "$rpid"
    done
    redis-cli -p "$pport" CONFIG SET repl-diskless-sync yes >/dev/null

    # Lag under a 50-client SET load (the disk-synced replica is still attached).
    rm -f "$WORK/stop"
    (
        while [[ ! -e $WORK/stop ]]; do
            # The replica first: read the other way round, the replica could pass the value read.
            r=$(field "$rport" replication slave_repl_offset)
            p=$(field "$pport" replication master_repl_offset)
            [[ -n $p && -n $r ]] && echo $((p - r))
            sleep 0.05
        done
    ) >"$WORK/$name.lag" &
    local sampler=$!
    redis-benchmark -p "$pport" -t set -n "$REQUESTS" -c 50 -r "$KEYS" -d "$VALUE" -q >/dev/null 2>&1
    touch "$WORK/stop"
    wait "$sampler"
    local final catchup lagmed lagmax
    final=$(field "$pport" replication master_repl_offset)
    t0=$(now_ms)
    for _ in $(seq 1 30000); do
        (($(field "$rport" replication slave_repl_offset) >= final)) && break
        sleep 0.01
    done
    catchup=$(($(now_ms) - t0))
    lagmed=$(median <"$WORK/$name.lag")
    lagmax=$(sort -n "$WORK/$name.lag" | tail -1)

    # Throughput with 2, 1 and 0 replicas attached.
    rport2=$(free_port)
    start "$name-replica-2" 1 "$@" --port "$rport2" --dir "$WORK" --dbfilename "$name-r2.rdb"
    rpid2=$STARTED
    wait_pong "$rport2"
    redis-cli -p "$rport2" REPLICAOF 127.0.0.1 "$pport" >/dev/null
    wait_synced "$rport2" "$(redis-cli -p "$pport" DBSIZE)"
    local r2 r1 r0
    r2=$(for _ in $(seq "$REPEAT"); do set_rps "$pport"; done | median)
    stop "$rpid2"
    r1=$(for _ in $(seq "$REPEAT"); do set_rps "$pport"; done | median)
    stop "$rpid"
    r0=$(for _ in $(seq "$REPEAT"); do set_rps "$pport"; done | median)
    stop "$ppid"
    printf '%-14s %12s %12s %12s %12s %12s %10s %10s %10s  %.2f %.2f\n' "$name" "$diskless" "$disk" \
        "$lagmed" "$lagmax" "$catchup" "$r0" "$r1" "$r2" \
        "$(echo "$r1 / $r0" | bc -l)" "$(echo "$r2 / $r0" | bc -l)"
}

printf '%-14s %12s %12s %12s %12s %12s %10s %10s %10s  %s\n' server "diskless ms" "disk ms" \
    "lag med B" "lag max B" "catch-up ms" "SET/s 0r" "1r" "2r" "1r/0r 2r/0r"
[[ ${ONLY:-} == cachette ]] || run_kind redis-server redis-server --save '' --appendonly no --bind 127.0.0.1
[[ ${ONLY:-} == redis-server ]] || run_kind cachette "$CACHETTE_BIN" --save '' --bind 127.0.0.1 --memcache-port 0 --threads 1
