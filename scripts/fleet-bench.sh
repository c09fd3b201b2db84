#!/usr/bin/env bash
# The shared health store's benchmark (issue 16), in one run on this machine:
#
#   1. Gateway throughput with the store on versus off: two `llm-fallback serve` processes with the same chains,
#      one with a `health: { store: postgres }` section and one without, each in front of nginx answering a fixed
#      chat completion at once. wrk -t$BENCH_THREADS -c$BENCH_CONNS for $BENCH_DURATION s per measurement,
#      $BENCH_ROUNDS rounds, the order alternating between rounds (off/on, on/off, ...); the medians and their ratio
#      are printed, with the range of each round's own ratio. In a healthy fleet nothing is written to the store,
#      so this measures what the store costs the request path when it has nothing to say: the goal is >= 0.97x.
#   2. The propagation delay of a transition between two instances: a second gateway on the same store, and
#      scripts/fleet-bench/propagation.py timing $BENCH_SAMPLES Retry-After windows from a request to gateway A
#      until gateway B's /health/providers shows them (p50, p90, p99, max).
#
# It installs what is missing (nginx, wrk, curl, postgresql from Debian), builds the gateway in release mode
# (swift build -c release --product llm-fallback; the first time takes a while on 2 cores), starts a throwaway
# PostgreSQL cluster (initdb + pg_ctl in the work folder, on a free loopback port, as the postgres user when run as
# root), and stops everything it started when it ends (trap EXIT). Nothing here runs in `swift test`.
#
# Usage: scripts/fleet-bench.sh
#
# Environment (all optional):
#   BENCH_DURATION=5      seconds per throughput measurement   BENCH_WARMUP=2     seconds of warm-up per gateway
#   BENCH_ROUNDS=6        throughput rounds (each: off and on) BENCH_CONNS=64     wrk connections
#   BENCH_THREADS=2       wrk threads                          BENCH_SAMPLES=300  propagation samples
#   GATEWAY_BIN=path      an already built llm-fallback (skips the build)
#   BENCH_SKIP_BUILD=1    use .build/release/llm-fallback as it is
#   BENCH_KEEP=1          keep the work folder (configs, logs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONDONTWRITEBYTECODE=1
here="$root/scripts/fleet-bench"

DURATION="${BENCH_DURATION:-5}"
WARMUP="${BENCH_WARMUP:-2}"
ROUNDS="${BENCH_ROUNDS:-6}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-2}"
SAMPLES="${BENCH_SAMPLES:-300}"
CHAINS=40          # rate-limited chains the propagation samples take turns on
WINDOW_MS=250      # their Retry-After window
export BENCH_KEY="bench-client-key"

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------------------------------------------------------
# Installs (only what is missing)

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
if ((${#missing[@]})); then
    log "Installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { as_root apt-get update -qq && as_root apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
pgbin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# ---------------------------------------------------------------------------------------------------------------
# The gateway binary

if [[ -n "${GATEWAY_BIN:-}" ]]; then
    gateway_bin="$GATEWAY_BIN"
elif [[ "${BENCH_SKIP_BUILD:-0}" == 1 ]]; then
    gateway_bin="$root/.build/release/llm-fallback"
else
    log "Building llm-fallback (release): swift build -c release --product llm-fallback"
    (cd "$root" && swift build -c release --product llm-fallback) >&2
    gateway_bin="$root/.build/release/llm-fallback"
fi
[[ -x "$gateway_bin" ]] || { echo "no gateway binary at $gateway_bin" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# Work folder, clean-up

work="$(mktemp -d -t fleet-bench.XXXXXX)"
chmod 755 "$work"
mkdir -p "$work/nginx-tmp" "$work/pg"
pg_user=""
if [[ $(id -u) -eq 0 ]]; then
    pg_user=postgres
    chown postgres: "$work/pg"
fi
as_pg() { if [[ -n "$pg_user" ]]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi; }

pids=()
pg_started=0
stop_all() {
    local status=$?
    local pid i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid="${pids[$i]}"
        kill -0 "$pid" 2>/dev/null && { kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; }
    done
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.2
    done
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2>/dev/null && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
    done
    if ((pg_started)); then
        as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    if [[ "${BENCH_KEEP:-0}" == 1 || $status -ne 0 ]]; then
        echo "(work folder kept: $work)" >&2
    else
        rm -rf "$work"
    fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Starts "$@" in a session of its own, output to $work/$name.log; sets $started_pid.
start() {
    local name="$1"
    shift
    setsid "$@" >"$work/$name.log" 2>&1 </dev/null &
    started_pid=$!
    pids+=("$started_pid")
}

# Waits until $2 answers 200 (curl), at most $3 seconds, while process $1 lives.
wait_http() {
    local pid="$1" url="$2" limit="$3" t0=$SECONDS
    while ((SECONDS - t0 < limit)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
        sleep 0.25
    done
    return 1
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

read -r p_ok p_limit p_pg p_off p_a p_b < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; above ~0.5 the figures are skewed)" >&2

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL, nginx, three gateways

log "Starting PostgreSQL ($pgbin) on :$p_pg"
as_pg "$pgbin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 >"$work/initdb.log" 2>&1 ||
    { cat "$work/initdb.log" >&2; exit 1; }
as_pg "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -t 30 \
    -o "-p $p_pg -k $work/pg -c listen_addresses=127.0.0.1" start >"$work/pg_ctl.log" 2>&1 ||
    { cat "$work/pg_ctl.log" "$work/pg/log" >&2; exit 1; }
pg_started=1
database_url="postgres://postgres@127.0.0.1:$p_pg/postgres?sslmode=disable"

log "Starting nginx on :$p_ok (fixed completion) and :$p_limit (instant 429, retry-after-ms $WINDOW_MS)"
sed -e "s#@WORK@#$work#g" -e "s#@OK_PORT@#$p_ok#g" -e "s#@LIMIT_PORT@#$p_limit#g" -e "s#@WINDOW_MS@#$WINDOW_MS#g" \
    "$here/nginx.conf.in" >"$work/nginx.conf"
start nginx "$NGINX" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log"
nginx_pid=$started_pid

# The same chains for every gateway: "default" (measured), and the rate-limited chains of the propagation samples.
# $1: the port; $2: the health section (empty for none).
gateway_config() {
    cat <<YAML
chains:
  default:
    strategy: ordered
    timeout: 30s
    providers:
      - { name: openai, model: bench, api_key: test, base_url: "http://127.0.0.1:$p_ok/v1" }
YAML
    local i
    for ((i = 0; i < CHAINS; i++)); do
        cat <<YAML
  lim$i:
    strategy: ordered
    max_retries: 0
    providers:
      - { name: openai, model: lim$i, label: lim$i, api_key: test, base_url: "http://127.0.0.1:$p_limit/v1" }
      - { name: openai, model: bench, label: backup, api_key: test, base_url: "http://127.0.0.1:$p_ok/v1" }
YAML
    done
    echo "server: { host: 127.0.0.1, port: $1, api_keys: [\"$BENCH_KEY\"] }"
    [[ -n "$2" ]] && echo "$2"
    return 0
}
gateway_config "$p_off" "" >"$work/off.yaml"
gateway_config "$p_a" "health: { store: postgres, url: \"\${DATABASE_URL}\", instance: bench-a }" >"$work/a.yaml"
gateway_config "$p_b" "health: { store: postgres, url: \"\${DATABASE_URL}\", instance: bench-b }" >"$work/b.yaml"

log "Starting three gateways: store off on :$p_off, store on (A) on :$p_a, store on (B) on :$p_b"
start gw-off "$gateway_bin" serve --config "$work/off.yaml" --log-level warning
off_pid=$started_pid
start gw-a env DATABASE_URL="$database_url" "$gateway_bin" serve --config "$work/a.yaml" --log-level warning
a_pid=$started_pid
start gw-b env DATABASE_URL="$database_url" "$gateway_bin" serve --config "$work/b.yaml" --log-level warning
b_pid=$started_pid

wait_http "$nginx_pid" "http://127.0.0.1:$p_ok/v1/chat/completions" 20 || { cat "$work/nginx-error.log" >&2; exit 1; }
for pair in "$off_pid:$p_off:gw-off" "$a_pid:$p_a:gw-a" "$b_pid:$p_b:gw-b"; do
    IFS=: read -r pid port name <<<"$pair"
    wait_http "$pid" "http://127.0.0.1:$port/health" 30 || { tail -n 20 "$work/$name.log" >&2; exit 1; }
done
# Both store-on gateways connected (their gauge says so) before anything is measured.
for port in "$p_a" "$p_b"; do
    t0=$SECONDS
    until curl -fsS -H "Authorization: Bearer $BENCH_KEY" "http://127.0.0.1:$port/metrics" 2>/dev/null |
        grep -Eq '^llm_fallback_health_store_connected 1(\.0)?$'; do
        ((SECONDS - t0 < 30)) || { echo "the gateway on :$port did not connect to PostgreSQL" >&2; exit 1; }
        sleep 0.2
    done
done

# ---------------------------------------------------------------------------------------------------------------
# 1. Throughput, store on versus off

# Prints the requests per second of one wrk run against port $1 for $2 seconds (and fails on any error).
measure() {
    local output
    output="$(BENCH_MODEL=default wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency -s "$root/scripts/gateway-bench/post.lua" \
        "http://127.0.0.1:$1/v1/chat/completions" 2>&1)"
    local result
    result="$(grep '^RESULT' <<<"$output")" || { echo "$output" >&2; return 1; }
    if ! grep -q 'connect=0 read=0 write=0 status=0 timeout=0' <<<"$result"; then
        echo "errors in a measurement: $result" >&2
        return 1
    fi
    sed -E 's/.* rps=([0-9.]+) p50_us=([0-9]+) .* p99_us=([0-9]+) .*/\1 \2 \3/' <<<"$result"
}

log "Warming up both gateways (${WARMUP} s each)"
measure "$p_off" "$WARMUP" >/dev/null
measure "$p_a" "$WARMUP" >/dev/null

off_rates=()
on_rates=()
ratios=()
for ((round = 0; round < ROUNDS; round++)); do
    if ((round % 2 == 0)); then order=(off on); else order=(on off); fi
    for which in "${order[@]}"; do
        if [[ $which == off ]]; then
            read -r rps p50 p99 < <(measure "$p_off" "$DURATION")
            off_rps=$rps
            off_rates+=("$rps")
        else
            read -r rps p50 p99 < <(measure "$p_a" "$DURATION")
            on_rps=$rps
            on_rates+=("$rps")
        fi
        log "round $((round + 1)), store $which: $rps req/s (p50 ${p50} us, p99 ${p99} us)"
    done
    ratios+=("$(python3 -c "print(f'{$on_rps / $off_rps:.3f}')")")
done

# Nothing was written to the store while healthy (the request path never writes).
published="$(curl -fsS -H "Authorization: Bearer $BENCH_KEY" "http://127.0.0.1:$p_a/metrics" |
    sed -nE 's/^llm_fallback_health_store_published_total ([0-9.]+)$/\1/p')"

# ---------------------------------------------------------------------------------------------------------------
# 2. Propagation of a transition from A to B

log "Timing $SAMPLES transitions from gateway A to gateway B"
propagation="$(python3 "$here/propagation.py" --a "$p_a" --b "$p_b" --key "$BENCH_KEY" --chains "$CHAINS" \
    --samples "$SAMPLES")" || { echo "$propagation" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# Report

python3 - "$DURATION" "$CONNS" "${published:-0}" "$propagation" "${off_rates[*]}" "${on_rates[*]}" "${ratios[*]}" <<'PY'
import statistics, sys
duration, conns, published, propagation = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
off = [float(x) for x in sys.argv[5].split()]
on = [float(x) for x in sys.argv[6].split()]
ratios = [float(x) for x in sys.argv[7].split()]
fields = dict(item.split("=") for item in propagation.split()[1:])
print()
print(f"Throughput, wrk c={conns}, {len(off)} rounds of {duration} s each, order alternating:")
print(f"  store off: median {statistics.median(off):,.0f} req/s  (rounds: {', '.join(f'{x:,.0f}' for x in off)})")
print(f"  store on:  median {statistics.median(on):,.0f} req/s  (rounds: {', '.join(f'{x:,.0f}' for x in on)})")
print(f"  on / off:  {statistics.median(on) / statistics.median(off):.3f}x of the medians; "
      f"per round {min(ratios):.3f}x to {max(ratios):.3f}x (goal >= 0.97x)")
print(f"  transitions written by the store-on gateway meanwhile: {published}")
print(f"Propagation A -> B over {fields['samples']} transitions ({fields['lost']} lost): p50 {fields['p50_ms']} ms, "
      f"p90 {fields['p90_ms']} ms, p99 {fields['p99_ms']} ms, max {fields['max_ms']} ms")
PY
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
