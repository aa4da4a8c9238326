#!/usr/bin/env bash
# bench/run.sh: the gateway's performance run (DESIGN §12, issue 3 "Must
# reach"). Everything on loopback, each piece its own process:
#
#   fake provider  <- direct                     (aegisbench provider)
#   fake provider  <- httputil.ReverseProxy       (aegisbench proxy)
#   fake provider  <- takumo-aegis gateway        (the real binary: ext_proc
#                     in-process over gRPC, built-in detection catalog)
#
# and prints, side by side from the same run:
#   1. added latency, 64 KB prompts with 3 secrets, one request at a time
#      (p50/p99 direct vs gateway; first request of a session vs later);
#   2. requests/s at saturation, 16 connections (wrk if installed, else the
#      Go load generator), bare ReverseProxy vs gateway, and the CPU time
#      each process spent per request;
#   3. streaming rehydration MB/s and MB per CPU-second of the gateway, and
#      peak RSS with 50 concurrent 1 MB bodies (gateway and bare proxy).
#
# Environment: DUR (wrk duration per round, default 10s), ROUNDS (default
# 2), LAT_N (latency requests per side, default 2000), STREAM_BYTES
# (default 268435456), PORT_BASE (default 18080), GATEWAY=inproc to use
# the in-process gateway of aegisbench instead of the binary, BIN=path to
# use a prebuilt takumo-aegis (to compare two builds), SKIP3=1 to stop
# after the saturation run, ONLY3=1 for the streaming and RSS runs alone,
# GW_ENV="GOGC=100 ..." for environment given to the gateway process only.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-2}
LAT_N=${LAT_N:-2000}
STREAM_BYTES=${STREAM_BYTES:-268435456}
PORT_BASE=${PORT_BASE:-18080}
P_PROVIDER=$((PORT_BASE + 1))
P_PROXY=$((PORT_BASE + 2))
P_GATEWAY=$((PORT_BASE + 3))
P_ECHO=$((PORT_BASE + 4))
OUT=$(mktemp -d /tmp/aegis-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

# Fabricated keys (bench/benchkit/payload.go).
TAKUMO_KEY=tk_test_7c1e4b9a2f6d8e3c5a0b7f1d9e2c4a6b8d0f3e5c7a9b1d4f6e8c0a2b5d7f9e1c
PROVIDER_KEY=sk-ant-api03-Wb7Xc2Vn9Mq4Lk8Jh3Gf6Ds1Az5Sx0Dc7Fv2Gb9Hn4Jm8Kl3Pq6Rw1Te5Yu0Io7Pa2Sd9Fg4Hj8Kl3Zx6Cv1Bn5Mq0Wp7Er2Ty9Ui4Op8As-Dk3Lq5AA

echo "# building" >&2
go build -o "$OUT/aegisbench" ./bench/aegisbench
if [ -n "${BIN:-}" ]; then
	cp "$BIN" "$OUT/takumo-aegis"
elif [ "${GATEWAY:-bin}" != inproc ]; then
	go build -o "$OUT/takumo-aegis" ./cmd/takumo-aegis
fi

wait_up() { # url
	for _ in $(seq 1 200); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "not up: $1" >&2
	return 1
}

# The standalone org's plan (enterprise) allows 500 requests a minute, and
# TAKUMO_RATE_LIMIT_PER_ORG can only lower a plan's limit: the benchmark's
# gateway loads the embedded policy as a bundle whose enterprise plan is
# unlimited (-1), so the load runs measure the gateway, not the limiter.
make_bench_policy() {
	mkdir -p "$OUT/policy"
	for f in policy/rego/*.rego; do
		case "$f" in *_test.rego) ;; *) cp "$f" "$OUT/policy/" ;; esac
	done
	sed 's/rate_limits: {per_minute: 500, per_hour: 20000}/rate_limits: {per_minute: -1, per_hour: -1}/' \
		policy/data/plans.yaml >"$OUT/policy/data.yaml"
	grep -q 'per_minute: -1' "$OUT/policy/data.yaml" || { echo "bench policy: the enterprise limits were not replaced" >&2; exit 1; }
}

start_gateway() { # sets GW_PID
	if [ "${GATEWAY:-bin}" = inproc ]; then
		"$OUT/aegisbench" gateway -listen 127.0.0.1:$P_GATEWAY -upstream http://127.0.0.1:$P_PROVIDER >"$OUT/gateway.out" 2>"$OUT/gateway.log" &
	else
		TAKUMO_API_KEYS=$TAKUMO_KEY TAKUMO_ANTHROPIC_API_KEY=$PROVIDER_KEY \
			TAKUMO_ANTHROPIC_URL=http://127.0.0.1:$P_PROVIDER TAKUMO_LISTEN_ADDR=127.0.0.1:$P_GATEWAY \
			TAKUMO_RATE_LIMIT_PER_KEY=100000000 TAKUMO_RATE_LIMIT_PER_ORG=100000000 \
			TAKUMO_DATA_DIR="$OUT/data" TAKUMO_ADMIN_LISTEN=off TAKUMO_POLICY_BUNDLE="$OUT/policy" \
			env ${GW_ENV:-} "$OUT/takumo-aegis" gateway >"$OUT/gateway.out" 2>"$OUT/gateway.log" &
	fi
	GW_PID=$!
	PIDS+=("$GW_PID")
	wait_up http://127.0.0.1:$P_GATEWAY/readyz
}
start_proxy() { # sets PX_PID
	"$OUT/aegisbench" proxy -listen 127.0.0.1:$P_PROXY -upstream http://127.0.0.1:$P_PROVIDER >"$OUT/proxy.out" 2>&1 &
	PX_PID=$!
	PIDS+=("$PX_PID")
	wait_up http://127.0.0.1:$P_PROXY/stats
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

cpu_ticks() { # pid -> utime+stime in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

"$OUT/aegisbench" provider -listen 127.0.0.1:$P_PROVIDER >"$OUT/provider.out" 2>&1 &
PV_PID=$!
PIDS+=("$PV_PID")
wait_up http://127.0.0.1:$P_PROVIDER/stats
start_proxy
make_bench_policy
start_gateway

D=http://127.0.0.1:$P_PROVIDER
P=http://127.0.0.1:$P_PROXY
G=http://127.0.0.1:$P_GATEWAY
# The ceiling: the same gateway driving an ext_proc server that only
# echoes the body (aegisbench gateway -echo, benchkit/echo.go). Its
# requests go as "direct": nothing is tokenized, so the planted values
# reach the provider by design and must not count as leaks. It runs with
# the GC target takumo-aegis sets for itself (cli/gc.go).
GOGC=400 "$OUT/aegisbench" gateway -echo -listen 127.0.0.1:$P_ECHO -upstream http://127.0.0.1:$P_PROVIDER >"$OUT/echo.out" 2>"$OUT/echo.log" &
EC_PID=$!
PIDS+=("$EC_PID")
wait_up http://127.0.0.1:$P_ECHO/readyz
E=http://127.0.0.1:$P_ECHO
echo "machine: $(nproc) cores, $(uname -sr), $(go version | cut -d' ' -f3)"
echo "gateway: ${GATEWAY:-bin}"
echo

if [ "${ONLY3:-}" != 1 ]; then
echo "== 1. added latency (64 KB prompt, 3 secrets, one request at a time, $LAT_N per side)"
"$OUT/aegisbench" latency -direct "$D" -gateway "$G" -echo "$E" -n "$LAT_N" | tee "$OUT/latency.txt"
echo

echo "== 2. saturation (16 connections, $ROUNDS rounds of $DUR per side, alternating)"
"$OUT/aegisbench" prompt -size 65536 >"$OUT/prompt.json"
cat >"$OUT/post.lua" <<LUA
local f = io.open("$OUT/prompt.json", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "$TAKUMO_KEY"
wrk.headers["X-Claude-Code-Session-Id"] = "load"
LUA
rate() { # url via -> requests/s
	if command -v wrk >/dev/null; then
		wrk -t2 -c16 -d"$DUR" -s "$OUT/post.lua" -H "X-Bench-Path: $2" "$1/v1/messages" >"$OUT/wrk.txt"
		awk '/^Requests\/sec/ { print $2 }' "$OUT/wrk.txt"
		if grep -q "Non-2xx" "$OUT/wrk.txt"; then echo "non-2xx answers: $(grep Non-2xx "$OUT/wrk.txt")" >&2; exit 1; fi
	else
		"$OUT/aegisbench" load -url "$1" -c 16 -d "$DUR" -via "$2" | awk '/^requests_per_sec/ { print $2 }'
	fi
}
before=$(curl -fsS $D/stats | awk '/^requests/ { print $2 }')
tot_p=0; tot_g=0; cpu_p=0; cpu_g=0; cpu_vp=0; cpu_vg=0; n_p=0; n_g=0; tot_e=0; cpu_e=0; n_e=0
for r in $(seq 1 "$ROUNDS"); do
	r0=$(curl -fsS $D/stats | awk '/^requests/ { print $2 }')
	c0=$(cpu_ticks $PX_PID); v0=$(cpu_ticks $PV_PID)
	rp=$(rate "$P" direct)
	c1=$(cpu_ticks $PX_PID); v1=$(cpu_ticks $PV_PID)
	r1=$(curl -fsS $D/stats | awk '/^requests/ { print $2 }')
	g0=$(cpu_ticks $GW_PID); w0=$(cpu_ticks $PV_PID)
	rg=$(rate "$G" gateway)
	g1=$(cpu_ticks $GW_PID); w1=$(cpu_ticks $PV_PID)
	r2=$(curl -fsS $D/stats | awk '/^requests/ { print $2 }')
	e0=$(cpu_ticks $EC_PID)
	re=$(rate "$E" direct)
	e1=$(cpu_ticks $EC_PID)
	r3=$(curl -fsS $D/stats | awk '/^requests/ { print $2 }')
	echo "round $r: reverseproxy $rp req/s, gateway $rg req/s, echo ceiling $re req/s"
	tot_e=$(awk -v a="$tot_e" -v b="$re" 'BEGIN { print a + b }'); cpu_e=$((cpu_e + e1 - e0)); n_e=$((n_e + r3 - r2))
	tot_p=$(awk -v a="$tot_p" -v b="$rp" 'BEGIN { print a + b }'); tot_g=$(awk -v a="$tot_g" -v b="$rg" 'BEGIN { print a + b }')
	cpu_p=$((cpu_p + c1 - c0)); cpu_g=$((cpu_g + g1 - g0))
	cpu_vp=$((cpu_vp + v1 - v0)); cpu_vg=$((cpu_vg + w1 - w0))
	n_p=$((n_p + r1 - r0)); n_g=$((n_g + r2 - r1))
done
awk -v p="$tot_p" -v g="$tot_g" -v n="$ROUNDS" -v cp="$cpu_p" -v cg="$cpu_g" -v vp="$cpu_vp" -v vg="$cpu_vg" -v np="$n_p" -v ng="$n_g" \
	-v e="$tot_e" -v ce="$cpu_e" -v ne="$n_e" 'BEGIN {
	printf "reverseproxy_req_per_sec %.0f\ngateway_req_per_sec %.0f\ngateway_over_reverseproxy %.3f\n", p/n, g/n, g/p
	# clock ticks are 10 ms
	printf "reverseproxy_cpu_us_per_req %.0f\ngateway_cpu_us_per_req %.0f\n", cp*1e4/np, cg*1e4/ng
	printf "provider_cpu_us_per_req %.0f (behind the proxy) %.0f (behind the gateway)\n", vp*1e4/np, vg*1e4/ng
	printf "echo_ceiling_req_per_sec %.0f\necho_ceiling_over_reverseproxy %.3f\necho_ceiling_cpu_us_per_req %.0f\n", e/n, e/p, ce*1e4/ne
}' | tee "$OUT/load.txt"
curl -fsS $D/stats | awk '/^leaks/ { if ($2 != 0) { print "LEAK: " $2 " requests reached the provider with a planted value"; exit 1 } else print "provider_leaks 0" }'
echo

fi # ONLY3
if [ "${SKIP3:-}" = 1 ]; then echo "(SKIP3=1: no streaming or RSS run)"; exit 0; fi
echo "== 3a. streaming rehydration ($STREAM_BYTES bytes of Anthropic events with tokens)"
"$OUT/aegisbench" stream -direct "$D" -gateway "$G" -bytes "$STREAM_BYTES" -pid "$GW_PID" | tee "$OUT/stream.txt"
echo

echo "== 3b. peak RSS, 50 concurrent 1 MB bodies held 2 s by the provider (fresh processes)"
stop "$GW_PID"; start_gateway
"$OUT/aegisbench" rss -url "$G" -pid "$GW_PID" -c 50 -size 1048576 -via gateway -label gateway | tee "$OUT/rss.txt"
stop "$PX_PID"; start_proxy
"$OUT/aegisbench" rss -url "$P" -pid "$PX_PID" -c 50 -size 1048576 -via direct -label reverseproxy | tee -a "$OUT/rss.txt"
echo
echo "(raw output in $OUT)"
