#!/usr/bin/env bash
# TLS benchmark: epoxy vs nginx terminating TLS in front of the same upstream, same certificate.
#
#   bash bench/tls.sh                 # DURATION=10, REPEAT=5
#   DURATION=2 REPEAT=1 bash bench/tls.sh   # a quick check that the script works
#
# Needs: nginx, wrk, h2load (nghttp2-client), curl, openssl. All on 127.0.0.1:
#   :9100  upstream  nginx, 1 worker, `return 200 "ok"`
#   :9210  nginx     TLS (1.3, ECDSA P-256, no session cache or tickets), proxy to :9100, 2 workers
#   :9310  epoxy     `epoxy gateway --listen-tls`, the virtual service's sslConfig from a Secret
# Three loads, each target in turn, REPEAT interleaved rounds (every other one reversed):
#   keep-alive    wrk -t2 -c64 over HTTPS/1.1 (one handshake per connection)
#   handshakes    wrk -t2 -c64 with `Connection: close`: a full handshake per request (wrk does
#                 not resume sessions)
#   h2            h2load -t2 -c64 -m10 over TLS (HTTP/2 by ALPN)
# Results go to stdout and to docs/benchmarks.md (the "## TLS benchmark" section is replaced).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
REPEAT=${REPEAT:-5}
WORKERS=2
UP_PORT=9100 NGX_PORT=9210 EPX_PORT=9300 EPX_TLS=9310 EPX_ADMIN=9301

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DOC=$ROOT/docs/benchmarks.md

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
check_ports $UP_PORT $NGX_PORT $EPX_PORT $EPX_TLS $EPX_ADMIN
for tool in nginx wrk h2load curl openssl; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: apt-get install -y nginx wrk nghttp2-client curl openssl" >&2
        exit 1
    }
done

log "building (cargo build --release)"
nice -n 10 cargo build --release --quiet
EPOXY=$ROOT/target/release/epoxy

# -------------------------------------------------------------------------------- certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=bench.local -addext subjectAltName=DNS:bench.local,IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# ------------------------------------------------------------------------------------ servers
nginx_conf upstream 1 "        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        location / { return 200 \"ok\"; }"
nginx_conf nginx $WORKERS "        listen 127.0.0.1:$NGX_PORT ssl http2 reuseport backlog=4096;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }" "upstream backend { server 127.0.0.1:$UP_PORT; keepalive 64; keepalive_requests 1000000; }
    http2_max_concurrent_streams 128;"
log "starting upstream nginx :$UP_PORT and TLS nginx :$NGX_PORT"
start_nginx upstream $UP_PORT
start_nginx nginx $NGX_PORT https

b64() { base64 -w0 <"$1"; }
cat >"$TMP/resources.yaml" <<EOF
apiVersion: v1
kind: Secret
metadata: {name: bench-tls, namespace: gloo-system}
type: kubernetes.io/tls
data:
  tls.crt: $(b64 "$TMP/cert.pem")
  tls.key: $(b64 "$TMP/key.pem")
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: up, namespace: gloo-system}
spec:
  static:
    hosts: [{addr: 127.0.0.1, port: $UP_PORT}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: secure, namespace: gloo-system}
spec:
  sslConfig:
    secretRef: {name: bench-tls, namespace: gloo-system}
    parameters: {minimumProtocolVersion: TLSv1_3}
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: up}}}
EOF
log "starting epoxy gateway, TLS on :$EPX_TLS ($WORKERS workers)"
"$EPOXY" --dir "$TMP/store" apply -f "$TMP/resources.yaml" >"$TMP/apply.log" 2>&1 \
    || { cat "$TMP/apply.log" >&2; exit 1; }
RUST_LOG=${RUST_LOG:-warn} "$EPOXY" --dir "$TMP/store" gateway \
    --listen "127.0.0.1:$EPX_PORT" --listen-tls "127.0.0.1:$EPX_TLS" \
    --admin "127.0.0.1:$EPX_ADMIN" --workers $WORKERS --fds-mode disabled >"$TMP/epoxy.log" 2>&1 &
EPX_PID=$!
PIDS+=($EPX_PID)
wait_http "https://127.0.0.1:$EPX_TLS/x" epoxy $EPX_PID

# Both must speak TLS 1.3 with the P-256 certificate, and HTTP/2 by ALPN.
for port in $NGX_PORT $EPX_TLS; do
    v=$(curl -sk -o /dev/null -w '%{http_version}' --http2 "https://127.0.0.1:$port/x")
    [[ $v == 2 ]] || { echo "127.0.0.1:$port did not answer HTTP/2 (got $v)" >&2; exit 1; }
    openssl s_client -connect "127.0.0.1:$port" -tls1_3 </dev/null 2>/dev/null | grep -q 'TLSv1.3' \
        || { echo "127.0.0.1:$port did not speak TLS 1.3" >&2; exit 1; }
done

# ---------------------------------------------------------------------------------------- load
run_h2load() { # KEY URL ROUND
    local key=$1 url=$2 r=$3 out=$TMP/h2load-$1-$3.txt
    h2load -t"$THREADS" -c"$CONNS" -m10 -D"$WARMUP" "$url" >/dev/null 2>&1 || true
    log "load $key (round $r/$REPEAT): h2load -t$THREADS -c$CONNS -m10 -D$DURATION $url"
    h2load -t"$THREADS" -c"$CONNS" -m10 -D"$DURATION" "$url" >"$out" 2>&1 || { cat "$out" >&2; exit 1; }
    # "finished in 10.00s, 81234.50 req/s, ..."; latencies: "time for request: min max mean sd"
    RPS[$key,$r]=$(awk '/^finished in/ {gsub(",", "", $4); printf "%.0f", $4}' "$out")
    P50[$key,$r]=$(to_us "$(awk '/^time for request:/ {print $6}' "$out")")
    P99[$key,$r]=0
    local failed
    failed=$(awk '/^requests:/ {for (i = 1; i <= NF; i++) if ($(i + 1) == "failed,") print $i}' "$out")
    ERRS[$key,$r]=
    [[ ${failed:-0} == 0 ]] || ERRS[$key,$r]="round $r: $failed failed"
    OTHER[$key,$r]=0
}

wait_quiet
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
NGX=https://127.0.0.1:$NGX_PORT/x
EPX=https://127.0.0.1:$EPX_TLS/x
for r in $(seq "$REPEAT"); do
    if ((r % 2)); then order=(nginx epoxy); else order=(epoxy nginx); fi
    for t in "${order[@]}"; do
        url=$([[ $t == nginx ]] && echo "$NGX" || echo "$EPX")
        run_wrk "ka_$t" "$url" "$r"
        run_wrk "hs_$t" "$url" "$r" -H "Connection: close"
        run_h2load "h2_$t" "$url" "$r"
    done
done

KEYS=(ka_nginx ka_epoxy hs_nginx hs_epoxy h2_nginx h2_epoxy)
median_round "${KEYS[@]}"
EPX_RSS=$(awk '/^VmHWM/ {print $2 " " $3}' "/proc/$EPX_PID/status" 2>/dev/null || echo "?")
read -r KA KA_MIN KA_MAX KA_WINS < <(paired RPS ka_epoxy ka_nginx)
read -r KA_P99 KA_P99_MIN KA_P99_MAX _ < <(paired P99 ka_epoxy ka_nginx)
read -r HS HS_MIN HS_MAX HS_WINS < <(paired RPS hs_epoxy hs_nginx)
read -r H2 H2_MIN H2_MAX H2_WINS < <(paired RPS h2_epoxy h2_nginx)

declare -A LABEL=(
    [ka_nginx]="keep-alive, nginx" [ka_epoxy]="keep-alive, epoxy"
    [hs_nginx]="a handshake per request, nginx" [hs_epoxy]="a handshake per request, epoxy"
    [h2_nginx]="HTTP/2 (h2load -m10), nginx" [h2_epoxy]="HTTP/2 (h2load -m10), epoxy"
)
LOAD_TABLE=$(
    echo "| load, target | req/s | req/s, all rounds | p50 (µs) | p99 (µs) | errors |"
    echo "|---|---:|---:|---:|---:|---|"
    for k in "${KEYS[@]}"; do
        p99=${P99[$k]}
        [[ $k != h2_* ]] || p99="—"
        p50=${P50[$k]}
        [[ $k != h2_* ]] || p50="${P50[$k]} (mean)"
        echo "| ${LABEL[$k]} | ${RPS[$k]} | ${SPREAD[$k]} | $p50 | $p99 | ${ERRS[$k]} |"
    done
)

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
NGINX_V=$( (nginx -v 2>&1 || true) | sed 's/^nginx version: nginx\///')
OPENSSL_V=$(openssl version | awk '{print $2}')
H2LOAD_V=$(h2load --version | awk '{print $2}')
EPX_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
EPX_DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)

SECTION=$(cat <<EOF
## TLS benchmark

Command: \`bash bench/tls.sh\` (DURATION=$DURATION, REPEAT=$REPEAT). Run on $(date -u '+%Y-%m-%d %H:%M UTC'),
$(nproc) CPUs ($CPU), ${IDLE}% idle just before the load (load average $LOAD_BEFORE); nginx $NGINX_V
with OpenSSL $OPENSSL_V, h2load $H2LOAD_V, epoxy $EPX_REV$EPX_DIRTY (rustls, ring).

Setup, all on 127.0.0.1, one certificate for both (ECDSA P-256, made by \`openssl\`), TLS 1.3
only: nginx (:$NGX_PORT, $WORKERS workers, \`listen ... ssl http2\`, no session cache or tickets) and epoxy
(:$EPX_TLS, \`--workers $WORKERS\`, the certificate from a \`kubernetes.io/tls\` Secret) terminate TLS in
front of the same upstream (nginx, \`return 200 "ok"\`, HTTP/1.1 keep-alive behind both).
Loads: \`wrk -t$THREADS -c$CONNS\` keep-alive; the same with \`Connection: close\` (a full
handshake per request: wrk does not resume sessions); \`h2load -t$THREADS -c$CONNS -m10\` (HTTP/2 by
ALPN). ${DURATION}s each after a ${WARMUP}s warm-up, $REPEAT interleaved rounds; each row is the
round with the median req/s.

### Load

$LOAD_TABLE

epoxy peak RSS: $EPX_RSS.

| ratio (paired by round) | median | rounds | target | verdict |
|---|---:|---:|---|---|
| keep-alive, epoxy / nginx req/s | ${KA}x | ${KA_MIN}–${KA_MAX}x (≥ 1.0 in $KA_WINS of $REPEAT) | ≥ 1.0x | $(verdict ge "$KA" 1.0) |
| keep-alive, epoxy / nginx p99 | ${KA_P99}x | ${KA_P99_MIN}–${KA_P99_MAX}x | ≤ 1.0x | $(verdict le "$KA_P99" 1.0) |
| handshakes, epoxy / nginx req/s | ${HS}x | ${HS_MIN}–${HS_MAX}x (≥ 1.0 in $HS_WINS of $REPEAT) | ≥ 1.0x | $(verdict ge "$HS" 1.0) |
| HTTP/2, epoxy / nginx req/s | ${H2}x | ${H2_MIN}–${H2_MAX}x (≥ 1.0 in $H2_WINS of $REPEAT) | ≥ 1.0x | $(verdict ge "$H2" 1.0) |
EOF
)
echo "$SECTION"
if [[ -z ${NO_DOC:-} ]]; then
    python3 - "$DOC" "$SECTION" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n"
pat = re.compile(r"^## TLS benchmark\n.*?(?=^## |\Z)", re.S | re.M)
text = pat.sub(lambda _: section + "\n", text) if pat.search(text) else text.rstrip() + "\n\n" + section
open(path, "w").write(text)
PY
    log "wrote $DOC"
fi
