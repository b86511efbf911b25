#!/usr/bin/env bash
# Gateway benchmark: epoxy vs nginx as a reverse proxy, plus the route-matching micro-benchmark.
#
#   bash bench/gateway.sh            # DURATION=10 by default (seconds of load per target)
#   DURATION=30 bash bench/gateway.sh
#
# Needs: nginx, wrk, curl (apt-get install -y nginx wrk curl). Everything runs on 127.0.0.1:
#   :9100  upstream   nginx, 1 worker, `return 200 "ok"`
#   :9200  nginx      reverse proxy to :9100 (keepalive 64, HTTP/1.1), 2 workers
#   :9300  epoxy      `epoxy gateway --workers 2` (admin :9301), routes / and /fn/ (REST function)
# Load: `wrk -t2 -c64 -d${DURATION}s --latency`, after a ${WARMUP}s warm-up, one target at a time,
# ${REPEAT:-7} interleaved rounds, every other one in reverse order (the median round is reported,
# and each ratio is the median of the rounds' own ratios). The load waits (up to QUIET_WAIT=120
# tries) for the machine to be >= 90% idle. KEEP_LOGS=1 keeps the temp dir when the script fails.
# Then `cargo bench --bench matching`. Results go to stdout and to docs/benchmarks.md (the
# "## Gateway benchmark" section is replaced; other sections are kept).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
REPEAT=${REPEAT:-7}
WORKERS=2
UP_PORT=9100 NGX_PORT=9200 EPX_PORT=9300 EPX_ADMIN=9301

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DOC=$ROOT/docs/benchmarks.md

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
check_ports $UP_PORT $NGX_PORT $EPX_PORT $EPX_ADMIN

for tool in nginx wrk curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y nginx wrk curl" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------- build
log "building (cargo build --release)"
nice -n 10 cargo build --release --quiet
EPOXY=$ROOT/target/release/epoxy

# ------------------------------------------------------------------------------------- servers
nginx_conf upstream 1 "        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        location / { return 200 \"ok\"; }"
nginx_conf nginx $WORKERS "        listen 127.0.0.1:$NGX_PORT reuseport backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }" "upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; keepalive_requests 1000000; }"

log "starting upstream nginx :$UP_PORT and proxy nginx :$NGX_PORT"
start_nginx upstream $UP_PORT
start_nginx nginx $NGX_PORT

cat >"$TMP/resources.yaml" <<EOF
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: fast, namespace: gloo-system}
spec:
  static:
    hosts: [{addr: 127.0.0.1, port: $UP_PORT}]
    serviceSpec:
      rest:
        transformations:
          getItem:
            body: {}
            headers:
              ':method': {text: GET}
              ':path': {text: '/items/{{ default(id, "") }}'}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: default, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{prefix: /fn/}]
      routeAction: {single: {upstream: {name: fast}, destinationSpec: {rest: {functionName: getItem, parameters: {headers: {':path': '/fn/{id}'}}}}}}
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: fast}}}
EOF
log "starting epoxy gateway :$EPX_PORT ($WORKERS workers)"
"$EPOXY" --dir "$TMP/store" apply -f "$TMP/resources.yaml" >"$TMP/apply.log" 2>&1 \
    || { cat "$TMP/apply.log" >&2; exit 1; }
# Function discovery is off so that it does not poll the upstream during the measurements.
RUST_LOG=${RUST_LOG:-warn} "$EPOXY" --dir "$TMP/store" gateway \
    --listen "127.0.0.1:$EPX_PORT" --admin "127.0.0.1:$EPX_ADMIN" \
    --workers $WORKERS --fds-mode disabled >"$TMP/epoxy.log" 2>&1 &
EPX_PID=$!
PIDS+=($EPX_PID)
wait_http "http://127.0.0.1:$EPX_PORT/x" epoxy $EPX_PID
wait_http "http://127.0.0.1:$EPX_PORT/fn/7" epoxy $EPX_PID

# ----------------------------------------------------------------------------------------- load
wait_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
KEYS=(upstream nginx epoxy epoxy_fn)
declare -A URL=(
    [upstream]="http://127.0.0.1:$UP_PORT/x"
    [nginx]="http://127.0.0.1:$NGX_PORT/x"
    [epoxy]="http://127.0.0.1:$EPX_PORT/x"
    [epoxy_fn]="http://127.0.0.1:$EPX_PORT/fn/7"
)
declare -A LABEL=(
    [upstream]="direct upstream (nginx :$UP_PORT) /x"
    [nginx]="nginx proxy /x"
    [epoxy]="epoxy /x (plain route)"
    [epoxy_fn]="epoxy /fn/7 (function route)"
)
# REPEAT interleaved rounds, every other one in reverse order (so that a drift in the machine's
# speed during a round favours neither proxy); for each target the round with the median req/s
# is reported, and each ratio is the median of the rounds' own ratios (paired, round by round).
for r in $(seq "$REPEAT"); do
    if ((r % 2)); then order=("${KEYS[@]}"); else order=(epoxy_fn epoxy nginx upstream); fi
    for k in "${order[@]}"; do run_wrk "$k" "${URL[$k]}" "$r"; done
done
declare -A SPREAD
for k in "${KEYS[@]}"; do
    mapfile -t order < <(for r in $(seq "$REPEAT"); do echo "${RPS[$k,$r]} $r"; done | sort -n)
    m=${order[$(((REPEAT - 1) / 2))]##* }
    SPREAD[$k]="${order[0]%% *}–${order[$((REPEAT - 1))]%% *}"
    RPS[$k]=${RPS[$k,$m]} P50[$k]=${P50[$k,$m]} P99[$k]=${P99[$k,$m]} OTHER[$k]=${OTHER[$k,$m]}
    e=""
    for r in $(seq "$REPEAT"); do [[ -z ${ERRS[$k,$r]} ]] || e+="${e:+; }${ERRS[$k,$r]}"; done
    ERRS[$k]=${e:-none}
done
EPX_RSS=$(awk '/^VmHWM/ {print $2 " " $3}' "/proc/$EPX_PID/status" 2>/dev/null || echo "?")
EPX_WARN=$(grep -ciE 'warn|error' "$TMP/epoxy.log" || true)

read -r R_RPS R_RPS_MIN R_RPS_MAX R_RPS_WINS < <(paired RPS epoxy nginx)
read -r R_P99 R_P99_MIN R_P99_MAX _ < <(paired P99 epoxy nginx)
read -r R_FN R_FN_MIN R_FN_MAX _ < <(paired RPS epoxy_fn epoxy)
read -r R_FN_P99 R_FN_P99_MIN R_FN_P99_MAX _ < <(paired P99 epoxy_fn epoxy)

LOAD_TABLE=$(
    echo "| target | req/s | req/s, all rounds | p50 (µs) | p99 (µs) | errors | other CPU |"
    echo "|---|---:|---:|---:|---:|---|---:|"
    for k in "${KEYS[@]}"; do
        echo "| ${LABEL[$k]} | ${RPS[$k]} | ${SPREAD[$k]} | ${P50[$k]} | ${P99[$k]} | ${ERRS[$k]} | ${OTHER[$k]}% |"
    done
)

# --------------------------------------------------------------------------------- stop servers
# The matching benchmark should not share the CPUs with idle-but-running servers.
cleanup_servers() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
EPX_LOG_TAIL=$(tail -n 5 "$TMP/epoxy.log")
cleanup_servers

# ------------------------------------------------------------------------------------ matching
log "route matching: nice -n 10 cargo bench --bench matching"
nice -n 10 cargo bench --quiet --bench matching >"$TMP/matching.txt" 2>&1 \
    || { cat "$TMP/matching.txt" >&2; exit 1; }
# Criterion prints `name  time: [low est high]`, the name sometimes on the line before.
declare -A MNS
while read -r name est; do MNS[$name]=$est; done < <(awk '
    function ns(v, u) { return u == "ps" ? v / 1000 : u == "ns" ? v : u == "µs" || u == "us" ? v * 1000 : u == "ms" ? v * 1e6 : v * 1e9 }
    /^Benchmarking / { next }
    /time:/ {
        if ($1 != "time:") name = $1
        for (i = 1; i <= NF; i++) if ($i == "time:") { printf "%s %.1f\n", name, ns($(i + 3) + 0, $(i + 4)) }
        next
    }
    NF == 1 { name = $1 }
' "$TMP/matching.txt")
[[ ${#MNS[@]} -gt 0 ]] || { echo "could not parse the matching benchmark:" >&2; cat "$TMP/matching.txt" >&2; exit 1; }

MATCH_TABLE=$(
    echo "| table | lookup | 10 routes (ns) | 1,000 routes (ns) | 10,000 routes (ns) | 10,000 / 10 |"
    echo "|---|---|---:|---:|---:|---:|"
    for kind in exact prefix; do
        for look in last miss; do
            a=${MNS[$kind/$look/10]:-?} b=${MNS[$kind/$look/1000]:-?} c=${MNS[$kind/$look/10000]:-?}
            desc=$([[ $look == last ]] && echo "path of the last route" || echo "no route matches")
            echo "| $kind | $desc | $a | $b | $c | $(ratio "$c" "$a") |"
        done
    done
)
MIXED_TABLE=$(
    echo "| 7-route mixed table: request | ns |"
    echo "|---|---:|"
    for c in exact prefix regex fallthrough; do echo "| $c | ${MNS[mixed/$c/7]:-?} |"; done
)
MATCH_VERDICT=met
MATCH_DETAIL=()
for kind in exact prefix; do
    for look in last miss; do
        r=$(ratio "${MNS[$kind/$look/10000]:-0}" "${MNS[$kind/$look/10]:-0}")
        MATCH_DETAIL+=("$kind/$look ${r}x")
        le "$r" 2 || MATCH_VERDICT="NOT met"
    done
done

# -------------------------------------------------------------------------------------- report
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
NGINX_V=$( (nginx -v 2>&1 || true) | sed 's/^nginx version: nginx\///')
WRK_V=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')
EPX_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
EPX_DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
RUSTC_V=$(rustc --version 2>/dev/null || echo "?")

SECTION=$(cat <<EOF
## Gateway benchmark

Command: \`bash bench/gateway.sh\` (DURATION=$DURATION, REPEAT=$REPEAT). Run on $(date -u '+%Y-%m-%d %H:%M UTC'),
$(nproc) CPUs ($CPU), ${IDLE}% idle just before the load (load average $LOAD_BEFORE); nginx $NGINX_V, wrk $WRK_V,
$RUSTC_V, epoxy $EPX_REV$EPX_DIRTY.

Setup, all on 127.0.0.1: the upstream is nginx with 1 worker answering \`return 200 "ok"\` on
:$UP_PORT; nginx (:$NGX_PORT, $WORKERS workers, \`keepalive 64\` to the upstream, HTTP/1.1,
\`access_log off\`) and epoxy (:$EPX_PORT, \`epoxy gateway --workers $WORKERS --fds-mode disabled\`)
proxy to it. \`/fn/7\` goes through the REST function \`getItem\` (a \`:path\` template,
\`/items/7\`). Load: \`wrk -t$THREADS -c$CONNS -d${DURATION}s --latency\` after a ${WARMUP}s warm-up,
one target at a time, $REPEAT interleaved rounds (every other one in reverse order); each row is
the round with the median req/s
(its p50/p99), with the range of req/s over the rounds. "Other CPU" is what the rest of the machine
used during that round (% of all CPUs): above a few %, the row is disturbed. Load generator,
proxy and upstream share the same $(nproc) CPUs, so the figures compare the proxies with each other
on this machine, not absolute capacity.

### Load

$LOAD_TABLE

epoxy peak RSS: $EPX_RSS; warning/error lines in its log: $EPX_WARN.

Ratios are paired: each round's own ratio (the two targets ran back to back), the median over
the $REPEAT rounds, and the lowest and highest round.

| ratio | median | rounds | target | verdict |
|---|---:|---:|---|---|
| epoxy / nginx, req/s | ${R_RPS}x | ${R_RPS_MIN}–${R_RPS_MAX}x (≥ 1.0 in $R_RPS_WINS of $REPEAT) | ≥ 1.0x | $(verdict ge "$R_RPS" 1.0) |
| epoxy / nginx, p99 | ${R_P99}x | ${R_P99_MIN}–${R_P99_MAX}x | ≤ 1.2x | $(verdict le "$R_P99" 1.2) |
| function / plain route, req/s | ${R_FN}x | ${R_FN_MIN}–${R_FN_MAX}x | ≥ 0.8x | $(verdict ge "$R_FN" 0.8) |
| function / plain route, p99 | ${R_FN_P99}x | ${R_FN_P99_MIN}–${R_FN_P99_MAX}x | — | — |

### Route matching

\`cargo bench --bench matching\` (benches/matching.rs): \`RouteTable::route\` on a table compiled
beforehand, one virtual host with \`domains: ['*']\`; exact tables have routes \`exact: /svc{i}/item\`,
prefix tables \`prefix: /svc{i}/\`. Criterion's point estimate, nanoseconds per lookup.

$MATCH_TABLE

$MIXED_TABLE

Target: a 10,000-route lookup within 2x of the 10-route one (exact and prefix tables):
**$MATCH_VERDICT** ($(IFS=,; echo "${MATCH_DETAIL[*]}" | sed "s/,/, /g")).
EOF
)

echo
echo "$SECTION"

write_section "$DOC" "$SECTION"
