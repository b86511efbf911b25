# Shared by the benchmark scripts (sourced): a temporary directory and the processes started,
# cleaned up on exit; servers; wrk runs with CPU accounting; paired ratios.
# The sourcing script sets DURATION, WARMUP, THREADS, CONNS, REPEAT, and EPX_PID once epoxy runs.

TMP=$(mktemp -d /tmp/epoxy-bench.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ $rc -ne 0 && -n ${KEEP_LOGS:-} ]]; then
        echo "logs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '== %s\n' "$*" >&2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
check_ports() { # PORT...
    local p
    for p in "$@"; do
        if port_busy "$p"; then echo "127.0.0.1:$p is already in use" >&2; exit 1; fi
    done
}

wait_http() { # URL NAME PID (HTTPS is not verified: the benchmark's own certificate)
    for _ in $(seq 100); do
        if [[ $(curl -sk -o /dev/null -w '%{http_code}' "$1" || true) == 200 ]]; then return 0; fi
        kill -0 "$3" 2>/dev/null || { echo "$2 exited; log:" >&2; cat "$TMP/$2.log" >&2 || true; exit 1; }
        sleep 0.1
    done
    echo "$2 did not answer 200 on $1; log:" >&2
    cat "$TMP/$2.log" >&2 || true
    exit 1
}

nginx_conf() { # NAME WORKERS SERVER-BLOCK [HTTP-EXTRA]
    local dir=$TMP/$1
    mkdir -p "$dir/logs" "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_requests 1000000;
    ${4:-}
    server {
$3
    }
}
EOF
}

start_nginx() { # NAME PORT (waits for 200 on /x; `https` as 3rd argument)
    nginx -t -q -p "$TMP/$1" -e "$TMP/$1/logs/error.log" -c "$TMP/$1/nginx.conf"
    nginx -p "$TMP/$1" -e "$TMP/$1/logs/error.log" -c "$TMP/$1/nginx.conf" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    wait_http "${3:-http}://127.0.0.1:$2/x" "$1" $!
}

# wrk prints latencies as 1.23us / 4.56ms / 1.20s; normalise to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000;
        else if (u == "m") f = 60000000; else f = 1
        printf "%.0f", n * f }'
}

# CPU accounting, to tell how much of the machine something else used during a measurement.
CLK_TCK=$(getconf CLK_TCK)
# user + nice + system + irq + softirq: per-process times include the softirq work done for them.
sys_busy() { local a; a=($(head -1 /proc/stat)); echo $((a[1] + a[2] + a[3] + a[6] + a[7])); }
proc_ticks() {
    local s=0 p
    for p in "$@"; do
        [[ -r /proc/$p/stat ]] && s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $s
}
ours() { local p; for p in "${PIDS[@]}"; do echo "$p"; pgrep -P "$p" || true; done; }

declare -A RPS P50 P99 ERRS OTHER
WIN=$((DURATION > 3 ? DURATION - 2 : 1))
run_wrk() { # KEY URL ROUND [WRK-ARG...]
    local key=$1 url=$2 r=$3 out=$TMP/wrk-$1-$3.txt
    local extra=("${@:4}")
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${extra[@]}" "$url" >/dev/null 2>&1 || true
    log "load $key (round $r/$REPEAT): wrk -t$THREADS -c$CONNS -d${DURATION}s --latency ${extra[*]} $url"
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${extra[@]}" "$url" >"$out" 2>&1 &
    local wpid=$! mine a0 a1 b0 b1
    sleep 1
    mine=($(ours) "$wpid")
    a0=$(sys_busy) a1=$(proc_ticks "${mine[@]}")
    sleep "$WIN"
    b0=$(sys_busy) b1=$(proc_ticks "${mine[@]}")
    wait "$wpid" || { cat "$out" >&2; exit 1; }
    # CPU used by everything but the servers and wrk, in % of the whole machine.
    OTHER[$key,$r]=$(awk -v o=$(((b0 - a0) - (b1 - a1))) -v w="$WIN" -v hz="$CLK_TCK" -v n="$(nproc)" \
        'BEGIN { v = 100 * o / w / hz / n; printf "%.0f", (v < 0 ? 0 : v) }')
    RPS[$key,$r]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
    P50[$key,$r]=$(to_us "$(awk '$1 == "50%" {print $2}' "$out")")
    P99[$key,$r]=$(to_us "$(awk '$1 == "99%" {print $2}' "$out")")
    local non2xx sock errs=()
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sock=$(sed -n 's/^ *Socket errors: *//p' "$out")
    [[ -z $non2xx ]] || errs+=("non-2xx: $non2xx")
    [[ -z $sock ]] || errs+=("socket errors: $sock")
    ERRS[$key,$r]=
    if [[ ${#errs[@]} -gt 0 ]]; then ERRS[$key,$r]="round $r: $(IFS=';'; echo "${errs[*]}")"; fi
    if ! kill -0 "$EPX_PID" 2>/dev/null; then
        echo "epoxy died during the $key run; log:" >&2
        cat "$TMP/epoxy.log" >&2
        exit 1
    fi
}

# Share of the CPUs that were idle over one second (other work on the machine skews the results).
idle_pct() {
    local a b
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    awk -v i=$((b[4] + b[5] - a[4] - a[5])) \
        -v t=$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7] - a[8])) \
        'BEGIN { printf "%.0f", (t > 0 ? 100 * i / t : 100) }'
}
# Waits (up to QUIET_WAIT tries) for the machine to be mostly idle before loading it; sets IDLE.
wait_quiet() {
    IDLE=$(idle_pct)
    for _ in $(seq "${QUIET_WAIT:-120}"); do
        [[ $IDLE -lt 90 ]] || break
        log "machine busy ($IDLE% idle), waiting"
        sleep 4
        IDLE=$(idle_pct)
    done
    [[ $IDLE -ge 90 ]] || log "machine still busy ($IDLE% idle): results will be noisy"
}
# The median of the numbers on standard input, one a line.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# For each KEY: RPS, P50 and P99 of the round with the median req/s, SPREAD the req/s range
# over the rounds, ERRS every round's errors (or "none").
declare -A SPREAD
median_round() { # KEY...
    local k m e r sorted
    for k in "$@"; do
        mapfile -t sorted < <(for r in $(seq "$REPEAT"); do echo "${RPS[$k,$r]} $r"; done | sort -n)
        m=${sorted[$(((REPEAT - 1) / 2))]##* }
        SPREAD[$k]="${sorted[0]%% *}–${sorted[$((REPEAT - 1))]%% *}"
        RPS[$k]=${RPS[$k,$m]} P50[$k]=${P50[$k,$m]} P99[$k]=${P99[$k,$m]}
        e=""
        for r in $(seq "$REPEAT"); do [[ -z ${ERRS[$k,$r]} ]] || e+="${e:+; }${ERRS[$k,$r]}"; done
        ERRS[$k]=${e:-none}
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
verdict() { if "$@"; then echo "met"; else echo "NOT met"; fi; }

# The median over the rounds of A/B (FIELD of each), then the lowest and highest round, and in
# how many rounds the ratio was >= 1: "median min max count".
paired() { # FIELD A B
    local -n field=$1
    local r
    for r in $(seq "$REPEAT"); do ratio "${field[$2,$r]}" "${field[$3,$r]}"; echo; done | sort -n |
        awk '{ v[NR] = $1; if ($1 >= 1) n++ }
             END { printf "%s %s %s %d\n", v[int((NR + 1) / 2)], v[1], v[NR], n }'
}

# Puts SECTION (whose first line is "## TITLE") into DOC in place of the section of that
# title (up to the next "## " heading), or appends it.
write_section() { # DOC SECTION
    local doc=$1 section=$2 title
    title=$(head -1 <<<"$section")
    mkdir -p "$(dirname "$doc")"
    [[ -f $doc ]] || printf '# Benchmarks\n' >"$doc"
    printf '%s\n' "$section" >"$TMP/section.md"
    awk -v secfile="$TMP/section.md" -v title="$title" '
        function emit() { while ((getline l < secfile) > 0) print l; print ""; done = 1 }
        $0 == title { emit(); skip = 1; next }
        skip && /^## / { skip = 0 }
        skip { next }
        { print }
        END { if (!done) { print ""; emit() } }
    ' "$doc" | cat -s >"$TMP/doc.md"
    # Drop a trailing blank line.
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$TMP/doc.md" >"$doc"
    log "wrote $doc"
}
