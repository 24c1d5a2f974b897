#!/usr/bin/env bash
# benches/memcached.sh — cachette against memcached, protocol by protocol, at 1 and 2 threads.
#
# For each thread count N, starts `memcached -t N` and `cachette --threads N` (memcached port
# only) on free loopback ports and drives the same loadgen runs at both, interleaved cell by
# cell: text get/set, meta mg/ms, binary get/set and a 100-key multi-get in each of the three
# protocols, each without and with pipelining, 50 connections. Every cell is repeated and the
# table shows medians and the ratio cachette / memcached (target: at least 1.00x everywhere).
# Servers this script started are killed on exit, however it exits. See benches/README.md.
#
#   benches/memcached.sh            full run (3 repeats x 5 s per cell, about 25 minutes)
#   QUICK=1 benches/memcached.sh    smoke run (1 repeat x 1 s per cell, about 2 minutes)
#
# Knobs (environment): REPEATS DURATION THREADS PIPELINES CELLS CONNS VALUE_SIZE KEYS MGET_KEYS
# SKIP_BUILD=1 CACHETTE_BIN LOADGEN_TARGET_DIR OUT.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ${QUICK:-0} == 1 ]]; then
    REPEATS=${REPEATS:-1}
    DURATION=${DURATION:-1}
else
    REPEATS=${REPEATS:-3}
    DURATION=${DURATION:-5}
fi
THREADS=${THREADS:-"1 2"}
PIPELINES=${PIPELINES:-"1 16"}
# protocol:operation; mget is a multi-get of MGET_KEYS keys.
CELLS=${CELLS:-"text:get text:set meta:get meta:set binary:get binary:set text:mget meta:mget binary:mget"}
CONNS=${CONNS:-50}
VALUE_SIZE=${VALUE_SIZE:-32}
KEYS=${KEYS:-100000}
MGET_KEYS=${MGET_KEYS:-100}
SKIP_BUILD=${SKIP_BUILD:-0}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHETTE_BIN=${CACHETTE_BIN:-$CARGO_TARGET/release/cachette}
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-$ROOT/benches/loadgen/target}
LOADGEN=$LOADGEN_TARGET_DIR/release/loadgen
OUT=${OUT:-$ROOT/target/bench-results/memcached-$(date +%Y%m%d-%H%M%S)}

mkdir -p "$OUT/logs"
RESULTS=$OUT/results.txt
: >"$RESULTS"

say() { printf '%s\n' "$*" >&2; }
die() { say "memcached.sh: $*"; exit 1; }

# ---- cleanup: every server we start is recorded here and killed on any exit -----------------
PIDS=()
stop() {
    local pid
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        # Give each up to 2 s to exit cleanly, then insist.
        for _ in $(seq 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
cleanup() { stop "${PIDS[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

proto_of() {
    case $1 in
    text) echo mc-text ;;
    meta) echo mc-meta ;;
    binary) echo mc-binary ;;
    *) die "unknown protocol in CELLS: $1" ;;
    esac
}
for cell in $CELLS; do
    proto_of "${cell%%:*}" >/dev/null
    case ${cell#*:} in get | set | mget) ;; *) die "unknown operation in CELLS: $cell" ;; esac
done

# ---- pinning ---------------------------------------------------------------------------------
# One thread: the server gets core 0 and the load generator core 1, so the client never takes
# the server's cycles. Two threads on a two-core machine: the server needs both cores, so
# nothing is pinned and the (single-threaded) client shares them with the server; the client's
# cost then shows in the server's rate, equally for both servers.
HAVE_TASKSET=0
if command -v taskset >/dev/null && (($(nproc) >= 2)); then HAVE_TASKSET=1; fi
PIN_SERVER=()
PIN_CLIENT=()
PINNING=""
pin_for() {
    local t=$1
    PIN_SERVER=()
    PIN_CLIENT=()
    if ((HAVE_TASKSET == 1 && t == 1)); then
        PIN_SERVER=(taskset -c 0)
        PIN_CLIENT=(taskset -c 1)
        PINNING="servers on cpu 0, loadgen on cpu 1 (taskset)"
    elif ((t == 1)); then
        PINNING="NOT pinned (needs taskset and 2 cpus): client and server share cores"
    elif (($(nproc) <= t)); then
        PINNING="not pinned: the servers' $t threads use all $(nproc) cpus and loadgen shares them"
    else
        PINNING="not pinned: $(nproc) cpus shared by the servers' $t threads and loadgen"
    fi
}

# ---- build -----------------------------------------------------------------------------------
CACHETTE_SKIP=""
if [[ $SKIP_BUILD != 1 ]]; then
    say "building loadgen (release)…"
    CARGO_TARGET_DIR=$LOADGEN_TARGET_DIR cargo build --release --quiet \
        --manifest-path "$ROOT/benches/loadgen/Cargo.toml" >"$OUT/logs/loadgen-build.log" 2>&1 ||
        { cat "$OUT/logs/loadgen-build.log" >&2; die "loadgen failed to build"; }
    say "building cachette (release)…"
    if ! (cd "$ROOT" && cargo build --release --bin cachette) >"$OUT/logs/cachette-build.log" 2>&1; then
        CACHETTE_SKIP="cargo build --release failed: $(grep -m1 '^error' "$OUT/logs/cachette-build.log" || true) (see $OUT/logs/cachette-build.log)"
    fi
fi
[[ -x $LOADGEN ]] || die "no loadgen binary at $LOADGEN (build it or unset SKIP_BUILD)"
if [[ -z $CACHETTE_SKIP && ! -x $CACHETTE_BIN ]]; then
    CACHETTE_SKIP="no binary at $CACHETTE_BIN"
fi

# ---- servers ---------------------------------------------------------------------------------
# start NAME CMD... : runs CMD (pinned as PIN_SERVER says) in the background, logging to
# $OUT/logs/NAME.log; sets STARTED_PID.
start() {
    local name=$1
    shift
    "${PIN_SERVER[@]}" "$@" >"$OUT/logs/$name.log" 2>&1 </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# ready PORT PID : waits up to 10 s until a memcached `version` is answered on PORT, in text
# and in binary (both must work on an auto-detecting port); fails at once if PID died.
ready() {
    local port=$1 pid=$2 proto
    local until=$((SECONDS + 10))
    for proto in mc-text mc-binary; do
        while :; do
            kill -0 "$pid" 2>/dev/null || return 1
            ((SECONDS < until)) || return 1
            if "$LOADGEN" ping --proto "$proto" --port "$port" --wait 0.2 >/dev/null 2>&1; then break; fi
        done
    done
}

MC_USER=()
# memcached refuses to run as root without being told which user to be.
if [[ $EUID == 0 ]]; then MC_USER=(-u root); fi

# start_servers N : memcached -t N and cachette --threads N on fresh ports; sets MC_PORT MC_PID
# CA_PORT CA_PID CA_OK (0 when cachette is skipped, with the reason in CA_WHY).
start_servers() {
    local t=$1 ports
    mapfile -t ports < <("$LOADGEN" free-ports 2)
    MC_PORT=${ports[0]}
    CA_PORT=${ports[1]}
    start "memcached-t$t" memcached "${MC_USER[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -t "$t" -m 1024
    MC_PID=$STARTED_PID
    ready "$MC_PORT" "$MC_PID" || die "memcached -t $t did not start: $(tail -5 "$OUT/logs/memcached-t$t.log")"
    CA_OK=0
    CA_WHY=$CACHETTE_SKIP
    CA_PID=
    if [[ -n $CACHETTE_SKIP ]]; then return; fi
    # RESP and metrics listeners off (port 0): only the memcached port, as memcached has.
    start "cachette-t$t" "$CACHETTE_BIN" --bind 127.0.0.1 --port 0 --memcache-port "$CA_PORT" \
        --metrics-port 0 --threads "$t" --memcache-protocol auto --save ''
    CA_PID=$STARTED_PID
    if ready "$CA_PORT" "$CA_PID"; then
        CA_OK=1
    else
        local rc=running last
        if ! kill -0 "$CA_PID" 2>/dev/null; then wait "$CA_PID" && rc=0 || rc=$?; fi
        last=$(tail -3 "$OUT/logs/cachette-t$t.log" | tr '\n' ' ')
        CA_WHY="cachette --threads $t did not answer in text and binary within 10 s (status $rc): $last"
    fi
}

# ---- header ----------------------------------------------------------------------------------
version_of() {
    local v
    v=$(timeout 5 "$@" 2>/dev/null | head -1) || true
    echo "${v:-unknown}"
}
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "# cachette vs memcached, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu:          $CPU_MODEL, $(nproc) cpus; kernel $(uname -r)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) at start (anything else running adds noise)"
    echo "memcached:    $(version_of memcached -V) (-t N -m 1024 -U 0)"
    if [[ -z $CACHETTE_SKIP ]]; then
        echo "cachette:     $(version_of "$CACHETTE_BIN" --version) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')) (--threads N, memcached port only, protocol auto)"
    else
        echo "cachette:     SKIPPED — $CACHETTE_SKIP"
    fi
    for t in $THREADS; do
        pin_for "$t"
        echo "pinning t=$t:  $PINNING"
    done
    echo "load:         $CONNS connections, ${VALUE_SIZE}-byte values, $KEYS keys (key:%08d, all preloaded"
    echo "              before every get), pipelines: $PIPELINES; mget = one multi-get of $MGET_KEYS keys"
    echo "              (text get k1…kN; meta N x mg k v + mn; binary N x GETKQ + NOOP), its ops/s"
    echo "              counts multi-gets"
    echo "repeats:      $REPEATS x ${DURATION} s per cell, memcached and cachette interleaved cell by"
    echo "              cell (order alternating per repeat), medians shown; raw results in $OUT"
} | tee "$OUT/header.txt"

# ---- measurements ----------------------------------------------------------------------------
# measure LABEL PORT PID PROTO OP PIPELINE REP : one loadgen run; its RESULT line goes to
# $RESULTS, a failure becomes a FAIL line so the table says so.
measure() {
    local label=$1 port=$2 pid=$3 proto=$4 op=$5 pl=$6 rep=$7
    local log=$OUT/logs/loadgen-$label-$proto-$op-p$pl-r$rep.log
    local warm=()
    [[ $op == set ]] || warm=(--warmup)
    local rc=0
    timeout $((DURATION + 60)) "${PIN_CLIENT[@]}" "$LOADGEN" --proto "$proto" --port "$port" \
        --conns "$CONNS" --pipeline "$pl" --op "$op" --mget-keys "$MGET_KEYS" \
        --value-size "$VALUE_SIZE" --keys "$KEYS" --duration "$DURATION" "${warm[@]}" \
        --label "$label" --server-pid "$pid" >"$log.out" 2>"$log" || rc=$?
    if grep -q '^RESULT ' "$log.out"; then
        cat "$log.out" >>"$RESULTS"
        ((rc == 0)) || say "  $label $proto $op p$pl: finished with errors (exit $rc), see $log"
    else
        echo "FAIL label=$label proto=$proto op=$op pipeline=$pl rep=$rep exit=$rc" >>"$RESULTS"
        say "  $label $proto $op p$pl: FAILED (exit $rc): $(tail -1 "$log")"
    fi
}

ncells=0
for _ in $CELLS; do for _ in $PIPELINES; do ncells=$((ncells + 1)); done; done
declare -A CA_OK_FOR CA_WHY_FOR
for t in $THREADS; do
    pin_for "$t"
    start_servers "$t"
    CA_OK_FOR[$t]=$CA_OK
    CA_WHY_FOR[$t]=$CA_WHY
    say "threads $t: $((ncells * (1 + CA_OK) * REPEATS)) loadgen runs of ${DURATION} s ($PINNING)"
    [[ $CA_OK == 1 ]] || say "  cachette skipped: $CA_WHY"
    for rep in $(seq "$REPEATS"); do
        say "  repeat $rep/$REPEATS"
        for cell in $CELLS; do
            proto=$(proto_of "${cell%%:*}")
            op=${cell#*:}
            for pl in $PIPELINES; do
                # Back to back, first one then the other, swapping who goes first each repeat,
                # so a drift in the machine's load falls on both.
                if ((rep % 2 == 1)) || ((CA_OK == 0)); then
                    measure "memcached-t$t" "$MC_PORT" "$MC_PID" "$proto" "$op" "$pl" "$rep"
                    if ((CA_OK == 1)); then
                        measure "cachette-t$t" "$CA_PORT" "$CA_PID" "$proto" "$op" "$pl" "$rep"
                    fi
                else
                    measure "cachette-t$t" "$CA_PORT" "$CA_PID" "$proto" "$op" "$pl" "$rep"
                    measure "memcached-t$t" "$MC_PORT" "$MC_PID" "$proto" "$op" "$pl" "$rep"
                fi
            done
        done
    done
    stop "$MC_PID" ${CA_PID:+"$CA_PID"}
    # Both are gone: forget them, so the exit trap never signals a reused pid.
    PIDS=()
done

# ---- report ----------------------------------------------------------------------------------
# med LABEL PROTO OP PIPELINE FIELD : median of FIELD over the matching RESULT lines ("-" when
# none).
med() {
    awk -v l="$1" -v pr="$2" -v o="$3" -v p="$4" -v f="$5" '
        function get(k,   i, kv) {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
            return ""
        }
        $1 == "RESULT" && get("label") == l && get("proto") == pr && get("op") == o &&
            get("pipeline") == p { print get(f) }
    ' "$RESULTS" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# errs LABEL PROTO OP PIPELINE : "!" when any run of the cell reported errors or failed.
errs() {
    awk -v l=" label=$1 " -v pr=" proto=$2 " -v o=" op=$3 " -v p=" pipeline=$4 " '
        ($1 == "RESULT" || $1 == "FAIL") && index($0, l) && index($0, pr) && index($0, o) &&
        index($0, p) && ($1 == "FAIL" || $0 !~ / errors=0 /) { bad = 1 }
        END { if (bad) printf "!" }' "$RESULTS"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", b / a; else printf "-" }'
}

fmt_ops() {
    awk -v n="$1" 'BEGIN { if (n == "-" || n == "") print "-"; else printf "%.1fk", n / 1000 }'
}

lat() {
    local a b
    a=$(med "$1" "$2" "$3" "$4" p50_us)
    b=$(med "$1" "$2" "$3" "$4" p99_us)
    if [[ $a == - ]]; then echo "-"; else printf '%.0f / %.0f' "$a" "$b"; fi
}

cpu() {
    local s c
    s=$(med "$1" "$2" "$3" "$4" server_cpu_pct)
    c=$(med "$1" "$2" "$3" "$4" client_cpu_pct)
    echo "$s / $c"
}

{
    echo
    echo "# results (median ops/s; ratio = cachette / memcached; latency p50 / p99 in us;"
    echo "#  cpu = server / loadgen, % of one core)"
    below=0 total=0 lowest="" lowest_r=""
    for t in $THREADS; do
        pin_for "$t"
        echo
        echo "## threads $t: memcached -t $t vs cachette --threads $t ($PINNING)"
        [[ ${CA_OK_FOR[$t]} == 1 ]] || echo "cachette skipped: ${CA_WHY_FOR[$t]}"
        printf '%-6s %-4s %3s | %10s %10s %6s | %15s %15s | %11s %11s\n' proto op P memcached \
            cachette ratio "mc p50/p99" "ca p50/p99" "mc cpu" "ca cpu"
        for cell in $CELLS; do
            p=${cell%%:*}
            proto=$(proto_of "$p")
            op=${cell#*:}
            for pl in $PIPELINES; do
                m=$(med "memcached-t$t" "$proto" "$op" "$pl" ops_per_sec)
                c=$(med "cachette-t$t" "$proto" "$op" "$pl" ops_per_sec)
                r=$(ratio "$m" "$c")
                printf '%-6s %-4s %3s | %10s %10s %6s | %15s %15s | %11s %11s\n' "$p" "$op" "$pl" \
                    "$(fmt_ops "$m")$(errs "memcached-t$t" "$proto" "$op" "$pl")" \
                    "$(fmt_ops "$c")$(errs "cachette-t$t" "$proto" "$op" "$pl")" "$r" \
                    "$(lat "memcached-t$t" "$proto" "$op" "$pl")" \
                    "$(lat "cachette-t$t" "$proto" "$op" "$pl")" \
                    "$(cpu "memcached-t$t" "$proto" "$op" "$pl")" \
                    "$(cpu "cachette-t$t" "$proto" "$op" "$pl")"
                if [[ $r != - ]]; then
                    total=$((total + 1))
                    if awk -v r="${r%x}" 'BEGIN { exit !(r < 1.0) }'; then below=$((below + 1)); fi
                    if [[ -z $lowest_r ]] || awk -v a="${r%x}" -v b="$lowest_r" 'BEGIN { exit !(a < b) }'; then
                        lowest_r=${r%x}
                        lowest="t=$t $p $op P=$pl"
                    fi
                fi
            done
        done
    done
    echo
    if ((total > 0)); then
        echo "target >= 1.00x: $((total - below)) of $total cells meet it; lowest ${lowest_r}x ($lowest)"
    else
        echo "no ratios: cachette was not measured"
    fi
    if grep -q '^FAIL\|errors=[1-9]' "$RESULTS"; then
        echo "! marks a cell where a run failed or reported errors (misses after the preload, wrong"
        echo "  values, error replies); see the logs in $OUT/logs."
    fi
} | tee "$OUT/table.txt"
