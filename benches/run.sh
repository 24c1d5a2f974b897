#!/usr/bin/env bash
# benches/run.sh — the side-by-side load harness.
#
# Builds cachette and benches/loadgen in release, starts redis-server, memcached and cachette
# on free loopback ports pinned to one core, drives the same loads at each from the other core,
# repeats every measurement and prints medians side by side (plus redis-benchmark for RESP).
# Servers this script started are killed on exit, however it exits. See benches/README.md.
#
#   benches/run.sh            full run (3 repeats x 5 s per cell, about 6 minutes)
#   QUICK=1 benches/run.sh    smoke run (1 repeat x 1 s per cell, under a minute)
#
# Knobs (environment): REPEATS DURATION KEYS CONNS VALUE_SIZE PIPELINES OPS SERVER_CPU
# CLIENT_CPU RB_REQUESTS_P1 RB_REQUESTS_PN REDIS_BENCHMARK=0 SKIP_BUILD=1 CACHETTE_BIN
# LOADGEN_TARGET_DIR OUT.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ ${QUICK:-0} == 1 ]]; then
    REPEATS=${REPEATS:-1}
    DURATION=${DURATION:-1}
    RB_REQUESTS_P1=${RB_REQUESTS_P1:-100000}
    RB_REQUESTS_PN=${RB_REQUESTS_PN:-400000}
else
    REPEATS=${REPEATS:-3}
    DURATION=${DURATION:-5}
    # redis-benchmark has no duration flag; these counts take a few seconds each at the
    # rates a single core reaches (about 100k/s unpipelined, 700k/s at -P 16).
    RB_REQUESTS_P1=${RB_REQUESTS_P1:-400000}
    RB_REQUESTS_PN=${RB_REQUESTS_PN:-2000000}
fi
KEYS=${KEYS:-100000}
CONNS=${CONNS:-50}
VALUE_SIZE=${VALUE_SIZE:-32}
PIPELINES=${PIPELINES:-"1 16"}
OPS=${OPS:-"get set"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-1}
SKIP_BUILD=${SKIP_BUILD:-0}
CARGO_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CACHETTE_BIN=${CACHETTE_BIN:-$CARGO_TARGET/release/cachette}
# The load generator is its own workspace with its own target dir, so building it never
# waits on the server build's lock.
LOADGEN_TARGET_DIR=${LOADGEN_TARGET_DIR:-$ROOT/benches/loadgen/target}
LOADGEN=$LOADGEN_TARGET_DIR/release/loadgen
OUT=${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}

mkdir -p "$OUT/logs"
RESULTS=$OUT/results.txt
: >"$RESULTS"

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# ---- cleanup: every server we start is recorded here and killed on any exit -----------------
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Give each up to 2 s to exit cleanly, then insist.
        for _ in $(seq 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- pinning ---------------------------------------------------------------------------------
# Servers share SERVER_CPU (only one is under load at a time), the client gets CLIENT_CPU, so
# the load generator never steals cycles from the server it measures.
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_CLIENT=(taskset -c "$CLIENT_CPU")
    PINNING="servers on cpu $SERVER_CPU, load generators on cpu $CLIENT_CPU (taskset)"
else
    PIN_SERVER=()
    PIN_CLIENT=()
    PINNING="NOT pinned (needs taskset and 2 cpus): client and server share cores"
fi

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
mapfile -t PORTS < <("$LOADGEN" free-ports 4)
REDIS_PORT=${PORTS[0]}
MC_PORT=${PORTS[1]}
CA_RESP_PORT=${PORTS[2]}
CA_MC_PORT=${PORTS[3]}

# start NAME CMD... : runs CMD pinned to the server core in the background, logging to
# $OUT/logs/NAME.log; sets STARTED_PID.
start() {
    local name=$1
    shift
    "${PIN_SERVER[@]}" "$@" >"$OUT/logs/$name.log" 2>&1 </dev/null &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

# ready PROTO PORT PID : waits up to 10 s until the server answers on PORT (printing its
# answer); fails at once if the process has died.
ready() {
    local proto=$1 port=$2 pid=$3
    local until=$((SECONDS + 10))
    while ((SECONDS < until)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if "$LOADGEN" ping --proto "$proto" --port "$port" --wait 0.2 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize no --logfile ''
REDIS_PID=$STARTED_PID
MC_USER=()
# memcached refuses to run as root without being told which user to be.
if [[ $EUID == 0 ]]; then MC_USER=(-u root); fi
start memcached memcached "${MC_USER[@]}" -l 127.0.0.1 -p "$MC_PORT" -U 0 -t 1 -m 1024
MC_PID=$STARTED_PID
ready resp "$REDIS_PORT" "$REDIS_PID" >/dev/null ||
    die "redis-server did not start: $(tail -5 "$OUT/logs/redis.log")"
ready mc-text "$MC_PORT" "$MC_PID" >/dev/null ||
    die "memcached did not start: $(tail -5 "$OUT/logs/memcached.log")"

CA_RESP=0
CA_MC=0
if [[ -z $CACHETTE_SKIP ]]; then
    start cachette "$CACHETTE_BIN" --bind 127.0.0.1 --port "$CA_RESP_PORT" \
        --memcache-port "$CA_MC_PORT" --threads 1 --save ''
    CA_PID=$STARTED_PID
    if ready resp "$CA_RESP_PORT" "$CA_PID" >/dev/null; then CA_RESP=1; fi
    if ready mc-text "$CA_MC_PORT" "$CA_PID" >/dev/null; then CA_MC=1; fi
    if ((CA_RESP == 0 && CA_MC == 0)); then
        if kill -0 "$CA_PID" 2>/dev/null; then
            CACHETTE_SKIP="cachette started but answered on neither port"
        else
            wait "$CA_PID" && rc=0 || rc=$?
            CACHETTE_SKIP="cachette exited at startup (status $rc)"
        fi
        last=$(tail -3 "$OUT/logs/cachette.log" | tr '\n' ' ')
        if [[ -n $last ]]; then CACHETTE_SKIP+=": $last"; fi
    fi
fi

# ---- header ----------------------------------------------------------------------------------
# version_of CMD… : first line of CMD's output; bounded, in case a binary ignores --version
# and starts serving instead.
version_of() {
    local v
    v=$(timeout 5 "$@" 2>/dev/null | head -1) || true
    echo "${v:-unknown}"
}
CPU_MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
{
    echo "# cachette side-by-side benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu:            $CPU_MODEL, $(nproc) cpus; kernel $(uname -r)"
    echo "load average:   $(cut -d' ' -f1-3 /proc/loadavg) at start (anything else running adds noise)"
    echo "pinning:        $PINNING"
    echo "redis-server:   $(version_of redis-server --version)"
    echo "memcached:      $(version_of memcached -V)"
    echo "redis-benchmark: $(version_of redis-benchmark --version)"
    if [[ -z $CACHETTE_SKIP ]]; then
        echo "cachette:       $(version_of "$CACHETTE_BIN" --version) ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))"
    else
        echo "cachette:       SKIPPED — $CACHETTE_SKIP"
    fi
    echo "load:           $CONNS connections, ${VALUE_SIZE}-byte values, $KEYS keys (key:%08d), pipelines: $PIPELINES"
    echo "repeats:        $REPEATS x ${DURATION} s per cell, medians shown; raw results in $OUT"
} | tee "$OUT/header.txt"
if ((CA_RESP != CA_MC)); then
    say "note: cachette answered on only one port (resp=$CA_RESP memcache=$CA_MC); the other is skipped"
fi

# ---- measurements ----------------------------------------------------------------------------
# measure LABEL PROTO PORT PID OP PIPELINE REP : one loadgen run against the server process PID;
# its RESULT line goes to $RESULTS, a failure is recorded as a FAIL line so the table says so.
measure() {
    local label=$1 proto=$2 port=$3 pid=$4 op=$5 pl=$6 rep=$7
    local log=$OUT/logs/loadgen-$label-$op-p$pl-r$rep.log
    local warm=()
    [[ $op == set ]] || warm=(--warmup)
    local rc=0
    timeout $((DURATION + 60)) "${PIN_CLIENT[@]}" "$LOADGEN" --proto "$proto" --port "$port" \
        --conns "$CONNS" --pipeline "$pl" --op "$op" --value-size "$VALUE_SIZE" --keys "$KEYS" \
        --duration "$DURATION" "${warm[@]}" --label "$label" --server-pid "$pid" \
        >"$log.out" 2>"$log" || rc=$?
    if grep -q '^RESULT ' "$log.out"; then
        cat "$log.out" >>"$RESULTS"
        ((rc == 0)) || say "  $label $op p$pl: finished with errors (exit $rc), see $log"
    else
        echo "FAIL label=$label op=$op pipeline=$pl rep=$rep exit=$rc" >>"$RESULTS"
        say "  $label $op p$pl: FAILED (exit $rc): $(tail -1 "$log")"
    fi
}

# cpu_ns PID : CPU time all threads of PID have run, in ns (the kernel's scheduler counters,
# as loadgen --server-pid reads them).
cpu_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'
}

# redis_bench LABEL PORT PID PIPELINE REP : redis-benchmark -t set,get; one RB line per test,
# with the server's and redis-benchmark's cpu use over the whole run (both tests).
redis_bench() {
    local label=$1 port=$2 pid=$3 pl=$4 rep=$5
    local n=$RB_REQUESTS_P1
    ((pl == 1)) || n=$RB_REQUESTS_PN
    local log=$OUT/logs/redis-benchmark-$label-p$pl-r$rep.csv
    local rc=0 before after
    before=$(cpu_ns "$pid")
    # -r spreads keys over the same keyspace size; timeout bounds a server that stops answering.
    local TIMEFORMAT='%U %S %R'
    { time timeout 300 "${PIN_CLIENT[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -t set,get \
        -d "$VALUE_SIZE" -c "$CONNS" -P "$pl" -n "$n" -r "$KEYS" --csv >"$log" 2>"$log.err" ||
        rc=$?; } 2>"$log.time"
    after=$(cpu_ns "$pid")
    # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95…","p99…","max…"
    tr -d '"' <"$log" | awk -F, -v l="$label" -v p="$pl" -v rc="$rc" -v b="$before" -v a="$after" \
        -v t="$(tail -1 "$log.time")" '
        BEGIN {
            split(t, tm, " ")
            wall = tm[3] + 0
            sc = wall > 0 ? sprintf("%.0f", (a - b) / 1e9 / wall * 100) : "-"
            cc = wall > 0 ? sprintf("%.0f", (tm[1] + tm[2]) / wall * 100) : "-"
        }
        $1 == "SET" || $1 == "GET" {
            printf "RB label=%s test=%s pipeline=%s rps=%.0f p50_ms=%s p99_ms=%s", l, $1, p, $2, $5, $7
            printf " server_cpu_pct=%s client_cpu_pct=%s\n", sc, cc
            n++
        }
        END { if (n == 0) printf "FAIL label=%s rb=1 pipeline=%s exit=%s\n", l, p, rc }' >>"$RESULTS"
    ((rc == 0)) || say "  redis-benchmark $label p$pl: exit $rc, see $log.err"
}

cells=0
for _ in $OPS; do for _ in $PIPELINES; do cells=$((cells + 1)); done; done
targets=$((2 + CA_RESP + CA_MC))
say "running $((cells * targets * REPEATS)) loadgen runs of ${DURATION} s (plus redis-benchmark unless REDIS_BENCHMARK=0)…"

for rep in $(seq "$REPEATS"); do
    say "repeat $rep/$REPEATS"
    for op in $OPS; do
        for pl in $PIPELINES; do
            # Reference and cachette back to back, so drift in the machine's load hits both.
            measure redis resp "$REDIS_PORT" "$REDIS_PID" "$op" "$pl" "$rep"
            if ((CA_RESP == 1)); then
                measure cachette-resp resp "$CA_RESP_PORT" "$CA_PID" "$op" "$pl" "$rep"
            fi
            measure memcached mc-text "$MC_PORT" "$MC_PID" "$op" "$pl" "$rep"
            if ((CA_MC == 1)); then
                measure cachette-mc mc-text "$CA_MC_PORT" "$CA_PID" "$op" "$pl" "$rep"
            fi
        done
    done
    if ((REDIS_BENCHMARK == 1)); then
        for pl in $PIPELINES; do
            redis_bench redis "$REDIS_PORT" "$REDIS_PID" "$pl" "$rep"
            if ((CA_RESP == 1)); then
                redis_bench cachette-resp "$CA_RESP_PORT" "$CA_PID" "$pl" "$rep"
            fi
        done
    fi
done

# ---- report ----------------------------------------------------------------------------------
# med KIND LABEL SELECTOR_KEY SELECTOR_VALUE PIPELINE FIELD : median of FIELD over matching
# lines ("-" when none, "fail" when every run failed). SELECTOR is op=… or test=….
med() {
    local kind=$1 label=$2 skey=$3 sval=$4 pl=$5 field=$6
    awk -v kind="$kind" -v l="$label" -v sk="$skey" -v sv="$sval" -v p="$pl" -v f="$field" '
        function get(k,   i, kv) {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
            return ""
        }
        $1 == kind && get("label") == l && get(sk) == sv && get("pipeline") == p { print get(f) }
    ' "$RESULTS" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "-"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# errs LABEL OP PIPELINE : "!" when any run of the cell reported errors or failed.
errs() {
    awk -v l="label=$1" -v o="op=$2" -v p="pipeline=$3" '
        ($1 == "RESULT" || $1 == "FAIL") && index($0, " " l " ") && index($0, " " o " ") &&
        index($0, " " p " ") && ($1 == "FAIL" || $0 !~ / errors=0 /) { bad = 1 }
        END { if (bad) printf "!" }' "$RESULTS"
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", b / a; else printf "-" }'
}

# fmt_ops N : thousands, as "123.4k".
fmt_ops() {
    awk -v n="$1" 'BEGIN { if (n == "-" || n == "") print "-"; else printf "%.1fk", n / 1000 }'
}

lat() {
    local a b
    a=$(med RESULT "$1" op "$2" "$3" p50_us)
    b=$(med RESULT "$1" op "$2" "$3" p99_us)
    if [[ $a == - ]]; then echo "-"; else printf '%.0f / %.0f' "$a" "$b"; fi
}

# table TITLE REF_LABEL REF_NAME CACHETTE_LABEL AVAILABLE
table() {
    local title=$1 ref=$2 refname=$3 ca=$4 avail=$5
    echo
    echo "## $title (loadgen, median ops/s; ratio = cachette / $refname; p50/p99 in us)"
    printf '%-4s %3s | %12s %12s %7s | %17s %17s\n' op P "$refname" cachette ratio \
        "$refname p50/p99" "cachette p50/p99"
    local op pl r c cmark clat
    for op in $OPS; do
        for pl in $PIPELINES; do
            r=$(med RESULT "$ref" op "$op" "$pl" ops_per_sec)
            c=- cmark="" clat=-
            if ((avail == 1)); then
                c=$(med RESULT "$ca" op "$op" "$pl" ops_per_sec)
                cmark=$(errs "$ca" "$op" "$pl")
                clat=$(lat "$ca" "$op" "$pl")
            fi
            printf '%-4s %3s | %12s %12s %7s | %17s %17s\n' "${op^^}" "$pl" \
                "$(fmt_ops "$r")$(errs "$ref" "$op" "$pl")" "$(fmt_ops "$c")$cmark" \
                "$(ratio "$r" "$c")" "$(lat "$ref" "$op" "$pl")" "$clat"
        done
    done
}

{
    echo
    echo "# results"
    if [[ -n $CACHETTE_SKIP ]]; then echo "cachette skipped: $CACHETTE_SKIP"; fi
    table "RESP: redis-server vs cachette" redis redis cachette-resp "$CA_RESP"
    table "memcached text: memcached vs cachette" memcached memcached cachette-mc "$CA_MC"

    if ((REDIS_BENCHMARK == 1)); then
        echo
        echo "## RESP: redis-benchmark -t set,get -d $VALUE_SIZE -c $CONNS -r $KEYS (median rps; p50/p99 in ms)"
        printf '%-4s %3s | %12s %12s %7s | %17s %17s\n' test P redis cachette ratio \
            "redis p50/p99" "cachette p50/p99"
        for t in GET SET; do
            for pl in $PIPELINES; do
                r=$(med RB redis test "$t" "$pl" rps)
                rl="$(med RB redis test "$t" "$pl" p50_ms) / $(med RB redis test "$t" "$pl" p99_ms)"
                c=- cl=-
                if ((CA_RESP == 1)); then
                    c=$(med RB cachette-resp test "$t" "$pl" rps)
                    cl="$(med RB cachette-resp test "$t" "$pl" p50_ms) / $(med RB cachette-resp test "$t" "$pl" p99_ms)"
                fi
                printf '%-4s %3s | %12s %12s %7s | %17s %17s\n' "$t" "$pl" "$(fmt_ops "$r")" \
                    "$(fmt_ops "$c")" "$(ratio "$r" "$c")" "$rl" "$cl"
            done
        done

        # The harness checks itself: loadgen and redis-benchmark drive redis-server with the
        # same connections, pipeline and value size, so their rates should roughly agree.
        echo
        echo "## harness check: loadgen / redis-benchmark on redis-server (near 1.0 is expected)"
        for op in $OPS; do
            for pl in $PIPELINES; do
                l=$(med RESULT redis op "$op" "$pl" ops_per_sec)
                b=$(med RB redis test "${op^^}" "$pl" rps)
                printf '%-4s %3s | loadgen %10s  redis-benchmark %10s  ratio %s\n' "${op^^}" "$pl" \
                    "$(fmt_ops "$l")" "$(fmt_ops "$b")" "$(ratio "$b" "$l")"
            done
        done
    fi

    echo
    echo "## reference servers under the same load: memcached (text) / redis-server (RESP)"
    for op in $OPS; do
        for pl in $PIPELINES; do
            r=$(med RESULT redis op "$op" "$pl" ops_per_sec)
            m=$(med RESULT memcached op "$op" "$pl" ops_per_sec)
            printf '%-4s %3s | redis %10s  memcached %10s  ratio %s\n' "${op^^}" "$pl" \
                "$(fmt_ops "$r")" "$(fmt_ops "$m")" "$(ratio "$r" "$m")"
        done
    done

    # Who was the bottleneck: the server's core should be near 100 % in every cell; a server
    # well below that with the client near 100 % means the client limited the rate.
    echo
    echo "## cpu use during the runs (median % of one core: server / client)"
    printf '%-4s %3s |' op P
    labels=(redis memcached)
    if ((CA_RESP == 1)); then labels+=(cachette-resp); fi
    if ((CA_MC == 1)); then labels+=(cachette-mc); fi
    for l in "${labels[@]}"; do printf ' %15s' "$l"; done
    echo
    busy=0
    for op in $OPS; do
        for pl in $PIPELINES; do
            printf '%-4s %3s |' "${op^^}" "$pl"
            for l in "${labels[@]}"; do
                sc=$(med RESULT "$l" op "$op" "$pl" server_cpu_pct)
                cc=$(med RESULT "$l" op "$op" "$pl" client_cpu_pct)
                printf ' %15s' "$sc / $cc"
                # Neither side near a full core: something else had the cpus.
                if [[ $sc != - && $cc != - ]] && ((${sc%.*} < 70 && ${cc%.*} < 70)); then busy=1; fi
            done
            echo
        done
    done
    if ((REDIS_BENCHMARK == 1)); then
        for pl in $PIPELINES; do
            # One figure per redis-benchmark run (its SET and GET tests together).
            printf '%-4s %3s |' rb "$pl"
            for l in "${labels[@]}"; do
                sc=$(med RB "$l" test GET "$pl" server_cpu_pct)
                cc=$(med RB "$l" test GET "$pl" client_cpu_pct)
                printf ' %15s' "$sc / $cc"
                if [[ $sc != - && $cc != - ]] && ((${sc%.*} < 70 && ${cc%.*} < 70)); then busy=1; fi
            done
            echo
        done
    fi
    if ((busy == 1)); then
        echo "WARNING: in some cells neither the server nor the client used 70 % of its core:"
        echo "  other processes were competing for the cpus, so those numbers are not reliable."
    fi

    if grep -q '^FAIL\|errors=[1-9]' "$RESULTS"; then
        echo
        echo "! marks a cell where a run failed or reported errors (misses after preload, wrong"
        echo "  values, error replies); see the logs in $OUT/logs."
    fi
} | tee "$OUT/table.txt"
