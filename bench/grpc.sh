#!/usr/bin/env bash
# gRPC benchmark (issue #17), two parts:
#
# 1. Throughput: a gRPC function call (JSON in, JSON out: `destinationSpec.grpc`) against a
#    plain HTTP route, both through one `epoxy gateway --workers 2` to one upstream process
#    that gives the same answer either way (examples/grpc_upstream.rs: `bench.v1.Pets/GetPet`
#    over h2c, or `GET /pets/1` as JSON over HTTP/1.1). `wrk -t2 -c64 -d${DURATION}s` per target
#    after a warm-up, REPEAT interleaved rounds; the ratio is the median of the rounds' own
#    ratios. Target: the function call >= 0.7x the plain route's req/s.
# 2. Discovery: a new `epoxy discover grpc -o json` process, DISCOVERY_RUNS times, against a
#    server offering SERVICES services (50) of three methods each by reflection
#    (bench/grpc/many_services.py, grpcio), timed from start to exit. Target: under 1 s.
#
#   bash bench/grpc.sh            # EPOXY=path skips `cargo build --release` of epoxy
#   REPORT=0 bash bench/grpc.sh   # print the section without writing docs/benchmarks.md
#
# Needs: wrk, curl, python3 with grpcio, grpcio-tools, grpcio-reflection (what .ci/run
# installs). Ports: upstream :9120, epoxy :9420 (admin :9421).
set -euo pipefail

DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
REPEAT=${REPEAT:-3}
DISCOVERY_RUNS=${DISCOVERY_RUNS:-10}
REPORT=${REPORT:-1}
SERVICES=${SERVICES:-50}
WORKERS=2
UP_PORT=9120 EPX_PORT=9420 EPX_ADMIN=9421

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DOC=$ROOT/docs/benchmarks.md
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

check_ports $UP_PORT $EPX_PORT $EPX_ADMIN
log "building (cargo build --release, and the upstream example)"
if [[ -z ${EPOXY:-} ]]; then
    nice -n 10 cargo build --release --quiet
    EPOXY=$ROOT/target/release/epoxy
fi
nice -n 10 cargo build --release --quiet --example grpc_upstream

# ------------------------------------------------------------------------------ throughput
"$ROOT/target/release/examples/grpc_upstream" "127.0.0.1:$UP_PORT" >"$TMP/upstream.log" 2>&1 &
PIDS+=($!)
python3 -m grpc_tools.protoc -I"$ROOT/bench/grpc" --include_imports \
    --descriptor_set_out="$TMP/pets.pb" pets.proto
cat >"$TMP/resources.yaml" <<EOF
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: pets-http, namespace: gloo-system}
spec:
  static:
    hosts: [{addr: 127.0.0.1, port: $UP_PORT}]
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: pets-grpc, namespace: gloo-system}
spec:
  useHttp2: true
  static:
    hosts: [{addr: 127.0.0.1, port: $UP_PORT}]
    serviceSpec:
      grpc:
        descriptors: $(base64 -w0 <"$TMP/pets.pb")
        grpcServices: [{packageName: bench.v1, serviceName: Pets, functionNames: [GetPet]}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: pets, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{exact: /pets/1}]
      routeAction: {single: {upstream: {name: pets-http}}}
    - matchers: [{exact: /grpc/pet}]
      routeAction:
        single:
          upstream: {name: pets-grpc}
          destinationSpec: {grpc: {package: bench.v1, service: Pets, function: GetPet}}
EOF
"$EPOXY" --dir "$TMP/store" apply -f "$TMP/resources.yaml" >"$TMP/apply.log" 2>&1 \
    || { cat "$TMP/apply.log" >&2; exit 1; }
RUST_LOG=${RUST_LOG:-warn} "$EPOXY" --dir "$TMP/store" gateway --listen "127.0.0.1:$EPX_PORT" \
    --admin "127.0.0.1:$EPX_ADMIN" --workers $WORKERS --fds-mode disabled >"$TMP/epoxy.log" 2>&1 &
EPX_PID=$!
PIDS+=($EPX_PID)
PLAIN=http://127.0.0.1:$EPX_PORT/pets/1
FUNC=http://127.0.0.1:$EPX_PORT/grpc/pet
wait_http "$PLAIN" epoxy $EPX_PID
# Both answer the same pet: the function call's JSON comes from the gRPC message.
got=$(curl -s -m 5 -X POST -H 'content-type: application/json' -d '{"id": "1"}' "$FUNC")
python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["name"] == "Rex" and d["tags"] == ["good", "dog"], d' "$got" \
    || { echo "the function route answered: $got" >&2; cat "$TMP/epoxy.log" >&2; exit 1; }
cat >"$TMP/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"id": "1"}'
wrk.headers["Content-Type"] = "application/json"
EOF

wait_quiet
LOAD_IDLE=$IDLE
for r in $(seq "$REPEAT"); do
    if ((r % 2)); then order=(plain grpc); else order=(grpc plain); fi
    for k in "${order[@]}"; do
        if [[ $k == plain ]]; then
            run_wrk plain "$PLAIN" "$r"
        else
            run_wrk grpc "$FUNC" "$r" -s "$TMP/post.lua"
        fi
    done
done
median_round plain grpc
read -r CALL CALL_MIN CALL_MAX _ < <(paired RPS grpc plain)
CALL_VERDICT=$(verdict ge "$CALL" 0.7)

# ------------------------------------------------------------------------------- discovery
mkfifo "$TMP/server.in"
SERVICES=$SERVICES python3 bench/grpc/many_services.py <"$TMP/server.in" >"$TMP/server.out" 2>"$TMP/server.err" &
PIDS+=($!)
exec 3>"$TMP/server.in"
for _ in $(seq 100); do
    grep -q '^PORT ' "$TMP/server.out" 2>/dev/null && break
    sleep 0.1
done
PORT=$(awk '/^PORT / {print $2}' "$TMP/server.out")
[[ -n $PORT ]] || { cat "$TMP/server.err" >&2; exit 1; }
log "server with $SERVICES services on 127.0.0.1:$PORT"

wait_quiet
TIMES=()
for r in $(seq "$DISCOVERY_RUNS"); do
    t0=$(date +%s%N)
    "$EPOXY" --dir "$TMP/store" discover grpc -o json "127.0.0.1:$PORT" >"$TMP/found.json"
    t1=$(date +%s%N)
    TIMES+=($(((t1 - t0) / 1000000)))
    read -r nsvc nfn < <(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["grpcServices"] if x.get("packageName") == "bench.v1"]
print(len(s), sum(len(x.get("functionNames", [])) for x in s))' "$TMP/found.json")
    ((nsvc == SERVICES)) || { echo "run $r found $nsvc services, expected $SERVICES" >&2; head -c 2000 "$TMP/found.json" >&2; exit 1; }
done
MED=$(printf '%s\n' "${TIMES[@]}" | median)
read -r MIN MAX < <(printf '%s\n' "${TIMES[@]}" | sort -n | awk 'NR == 1 { a = $1 } { b = $1 } END { print a, b }')
VERDICT=$(verdict le "$MED" 1000)
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
GRPC_V=$(python3 -c 'import grpc; print(grpc.__version__)')
EPX_REV=$(git rev-parse --short HEAD 2>/dev/null || echo "?")

SECTION=$(cat <<EOF
## gRPC benchmark

Command: \`bash bench/grpc.sh\` (DURATION=$DURATION, REPEAT=$REPEAT, SERVICES=$SERVICES). Run on
$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($CPU), ${LOAD_IDLE}% idle before the load;
epoxy $EPX_REV (release).

### A gRPC function call against a plain route

One \`epoxy gateway --workers $WORKERS\`, one upstream process (examples/grpc_upstream.rs, one
thread) that answers the same pet as gRPC (\`bench.v1.Pets/GetPet\`, h2c) and as JSON
(\`GET /pets/1\`, HTTP/1.1). The function route turns \`POST {"id": "1"}\` into the gRPC call
and the answer back into JSON; the plain route forwards. \`wrk -t$THREADS -c$CONNS -d${DURATION}s\`
after a ${WARMUP}s warm-up, $REPEAT interleaved rounds; each row is the round with the median req/s.

| route | req/s | req/s, all rounds | p50 (µs) | p99 (µs) | errors |
|---|---:|---:|---:|---:|---|
| plain (\`GET /pets/1\`, HTTP/1.1 upstream) | ${RPS[plain]} | ${SPREAD[plain]} | ${P50[plain]} | ${P99[plain]} | ${ERRS[plain]} |
| gRPC function (\`POST /grpc/pet\`, JSON to gRPC and back, h2c upstream) | ${RPS[grpc]} | ${SPREAD[grpc]} | ${P50[grpc]} | ${P99[grpc]} | ${ERRS[grpc]} |

The function call / the plain route: **${CALL}x** (rounds ${CALL_MIN}–${CALL_MAX}x); target ≥ 0.7x:
**$CALL_VERDICT**.

### Discovery of $SERVICES services by reflection

grpcio $GRPC_V with grpcio-reflection (Python) as the server, ${IDLE}% idle before the runs.
Each run is a new \`epoxy discover grpc -o json 127.0.0.1:PORT\` process against a server
offering $SERVICES services of three unary methods each, timed from start to exit (process
start, connection, the list call and the descriptors of every service); every run found all
$SERVICES services ($nfn methods).

| runs | median | fastest | slowest | target | verdict |
|---:|---:|---:|---:|---|---|
| $DISCOVERY_RUNS | ${MED} ms | ${MIN} ms | ${MAX} ms | < 1 s | $VERDICT |
EOF
)
echo
echo "$SECTION"
if [[ $REPORT != 1 ]]; then
    log "REPORT=$REPORT: $DOC left alone"
    exit 0
fi
write_section "$DOC" "$SECTION"
