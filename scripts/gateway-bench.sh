#!/usr/bin/env bash
# The gateway benchmark (issue 7): `llm-fallback serve` side by side, in one run, with the upstream alone (nginx
# answering a fixed OpenAI chat completion at once) and with LiteLLM's proxy configured the same way.
#
# It installs what it needs (nginx, wrk, curl from Debian; LiteLLM's proxy from PyPI into a venv of its own),
# builds the gateway in release mode, starts everything on free loopback ports, warms up, measures each target
# for a fixed short time, stops all it started (trap EXIT) and prints one table, then the failover and memory lines:
#
#   - max throughput: wrk -t$BENCH_THREADS -c$BENCH_CONNS for $BENCH_DURATION s
#   - p50/p99 at concurrency 1: wrk -t1 -c1 (exact percentiles from wrk's histogram, in microseconds), and the
#     latency added against direct nginx
#   - p99 at a paced $BENCH_RATE requests/s: wrk with a randomised per-connection pause (post.lua), or at 80% of the
#     target's max throughput when that is lower (the table says which, and the rate achieved)
#   - failover: the chain/model "failover" (primary answers 500 at once, backup nginx; no retries, no breaker or
#     cooldown) at concurrency 1, against the healthy one; for the gateway and for LiteLLM (its `fallbacks`)
#   - memory: the gateway's RSS idle, before and after a sustained run of $BENCH_SUSTAIN s at c=$BENCH_CONNS, and
#     with $BENCH_STREAMS concurrent `stream: true` requests held open against an upstream that streams slowly
#     (scripts/gateway-bench/slow_upstream.py); LiteLLM's the same way for comparison
#
# Both the gateway and LiteLLM run with one client API key (gateway: server.api_keys; LiteLLM: its master key) and
# log at their quietest usual level (gateway --log-level warning; LITELLM_LOG=ERROR). LiteLLM runs with
# --num_workers 1 (its default), as the gateway runs as one process.
#
# The measured phases take about 4 minutes with the defaults (plus LiteLLM's start-up and, the first time, the
# release build and the installs). The machine has 2 cores: load generator, target and upstream share them, as
# they would for anyone running this; a busy machine (another build) skews everything, so the load average at the
# start and the end is printed.
#
# Usage: scripts/gateway-bench.sh
#
# Environment (all optional):
#   BENCH_DURATION=8        seconds per measurement          BENCH_WARMUP=3       seconds of warm-up per target
#   BENCH_CONNS=64          connections for max throughput   BENCH_THREADS=2      wrk threads for max throughput
#   BENCH_RATE=1000         the paced rate, requests/s       BENCH_SUSTAIN=60     seconds of the sustained run
#                                                                                 (600: the issue's 10 minutes)
#   BENCH_STREAMS=1000      concurrent streams (0: skip)     BENCH_NGINX_WORKERS=auto
#   BENCH_LITELLM=1         0 to leave LiteLLM out           BENCH_LITELLM_SPEC='litellm[proxy]' (pip spec)
#   BENCH_VENV=~/.cache/llm-fallback-gateway-bench/venv      where LiteLLM is installed
#   GATEWAY_BIN=path        an already built llm-fallback (skips the build)
#   BENCH_SKIP_BUILD=1      use .build/release/llm-fallback as it is
#   BENCH_KEEP=1            keep the work folder (configs, logs, raw wrk output)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in scripts/gateway-bench/
here="$root/scripts/gateway-bench"

DURATION="${BENCH_DURATION:-8}"
WARMUP="${BENCH_WARMUP:-3}"
CONNS="${BENCH_CONNS:-64}"
THREADS="${BENCH_THREADS:-2}"
RATE="${BENCH_RATE:-1000}"
SUSTAIN="${BENCH_SUSTAIN:-60}"
STREAMS="${BENCH_STREAMS:-1000}"
NGINX_WORKERS="${BENCH_NGINX_WORKERS:-auto}"
WITH_LITELLM="${BENCH_LITELLM:-1}"
LITELLM_SPEC="${BENCH_LITELLM_SPEC:-litellm[proxy]}"
VENV="${BENCH_VENV:-$HOME/.cache/llm-fallback-gateway-bench/venv}"
# The client key both proxies require (wrk and the stream client send it; nginx ignores it).
export BENCH_KEY="bench-client-key"

log() { printf '== %s\n' "$*" >&2; }
warn() { printf '!! %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------------------------
# Installs (idempotent: only what is missing)

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3 python3-venv)
if ((${#missing[@]})); then
    log "Installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { as_root apt-get update -qq && as_root apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [[ "$WITH_LITELLM" == 1 && ! -x "$VENV/bin/litellm" ]]; then
    log "Installing LiteLLM's proxy ($LITELLM_SPEC) into $VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$LITELLM_SPEC"
fi

# ---------------------------------------------------------------------------------------------------------------
# The gateway binary

gateway_bin=""
gateway_reason=""
if [[ -n "${GATEWAY_BIN:-}" ]]; then
    gateway_bin="$GATEWAY_BIN"
elif [[ "${BENCH_SKIP_BUILD:-0}" == 1 ]]; then
    gateway_bin="$root/.build/release/llm-fallback"
else
    log "Building llm-fallback (release): swift build -c release --product llm-fallback"
    build_log="$(mktemp -t gateway-bench-build.XXXXXX.log)"
    build_start=$SECONDS
    if (cd "$root" && swift build -c release --product llm-fallback) >"$build_log" 2>&1; then
        gateway_bin="$root/.build/release/llm-fallback"
        log "built in $((SECONDS - build_start)) s"
        rm -f "$build_log"
    else
        tail -n 15 "$build_log" >&2
        gateway_reason="the release build failed (log: $build_log)"
    fi
fi
if [[ -z "$gateway_reason" ]]; then
    if [[ ! -x "$gateway_bin" ]]; then
        gateway_reason="no gateway binary at $gateway_bin"
    elif [[ "$("$gateway_bin" serve --help 2>&1 || true)" != *"llm-fallback serve"* ]]; then
        # (ArgumentParser answers an unknown subcommand followed by --help with the root help and status 0, so the
        # usage line is what tells.)
        gateway_reason="'llm-fallback serve' does not exist yet in this build"
    fi
fi
[[ -n "$gateway_reason" ]] && warn "gateway column unavailable: $gateway_reason"

# ---------------------------------------------------------------------------------------------------------------
# Work folder, results, clean-up

work="$(mktemp -d -t gateway-bench.XXXXXX)"
chmod 755 "$work"
mkdir -p "$work/nginx-tmp"
results="$work/results.txt"
: >"$results"
put() { printf '%s=%s\n' "$1" "$2" >>"$results"; }
get() { grep -m1 "^$1=" "$results" 2>/dev/null | cut -d= -f2- || true; }

pids=()
stop_all() {
    local status=$?
    local pid i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid="${pids[$i]}"
        kill -0 "$pid" 2>/dev/null || continue
        # Each service was started with setsid, so its process group is its own: stop it and its children.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
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

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

read -r p_ok p_fail p_slow p_gw p_lite p_proxy < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

fill() {
    sed -e "s#@WORK@#$work#g" -e "s#@OK_PORT@#$p_ok#g" -e "s#@FAIL_PORT@#$p_fail#g" -e "s#@SLOW_PORT@#$p_slow#g" \
        -e "s#@GATEWAY_PORT@#$p_gw#g" -e "s#@PROXY_PORT@#$p_proxy#g" -e "s#@WORKERS@#$NGINX_WORKERS#g" -e "s#@KEY@#$BENCH_KEY#g" "$1" >"$2"
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

rss() { python3 "$here/rss.py" "$1"; }

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; above ~0.5 the figures are skewed)" >&2
put config.conns "$CONNS"
put config.rate "$RATE"
put config.sustain "$SUSTAIN"
put config.streams "$STREAMS"
put config.load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------------------
# Start the upstreams, the gateway and LiteLLM

log "Starting nginx on :$p_ok (fixed completion) and :$p_fail (instant 500), workers: $NGINX_WORKERS"
fill "$here/nginx.conf.in" "$work/nginx.conf"
start nginx "$NGINX" -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log"
nginx_pid=$started_pid

log "Starting the slowly streaming upstream on :$p_slow"
start slow python3 "$here/slow_upstream.py" --port "$p_slow" --interval 1 --total 600
slow_pid=$started_pid

if [[ "$WITH_LITELLM" == 1 ]]; then
    log "Starting LiteLLM's proxy on :$p_lite ($("$VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p'), --num_workers 1)"
    fill "$here/litellm.yaml.in" "$work/litellm.yaml"
    # No network here: the local model cost map, no telemetry, errors only in the log.
    start litellm env LITELLM_LOCAL_MODEL_COST_MAP=True LITELLM_LOG=ERROR LITELLM_TELEMETRY=False \
        DISABLE_ADMIN_UI=True "$VENV/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$p_lite" \
        --num_workers 1
    lite_pid=$started_pid
else
    put litellm.unavailable "left out (BENCH_LITELLM=0)"
fi

if [[ -z "$gateway_reason" ]]; then
    log "Starting the gateway on :$p_gw: $gateway_bin serve --config $work/gateway.yaml --log-level warning"
    fill "$here/gateway.yaml.in" "$work/gateway.yaml"
    start gateway "$gateway_bin" serve --config "$work/gateway.yaml" --log-level warning
    gw_pid=$started_pid
fi

wait_http "$nginx_pid" "http://127.0.0.1:$p_ok/v1/models" 20 || { cat "$work/nginx.log" "$work/nginx-error.log" >&2; exit 1; }
wait_http "$slow_pid" "http://127.0.0.1:$p_slow/stats" 20 || { cat "$work/slow.log" >&2; exit 1; }
if [[ -z "$gateway_reason" ]]; then
    if ! wait_http "$gw_pid" "http://127.0.0.1:$p_gw/health" 30; then
        tail -n 20 "$work/gateway.log" >&2
        if kill -0 "$gw_pid" 2>/dev/null; then
            gateway_reason="the gateway did not answer GET /health within 30 s (log above)"
        else
            gateway_reason="the gateway exited at start-up (log above)"
        fi
    fi
fi
if [[ "$WITH_LITELLM" == 1 ]]; then
    if ! wait_http "$lite_pid" "http://127.0.0.1:$p_lite/health/liveliness" 180; then
        tail -n 30 "$work/litellm.log" >&2
        if kill -0 "$lite_pid" 2>/dev/null; then
            put litellm.unavailable "LiteLLM did not become live within 180 s (log above)"
        else
            put litellm.unavailable "LiteLLM exited at start-up (log above)"
        fi
    fi
fi

# One request each, checked, before anything is measured.
body='{"model":"MODEL","messages":[{"role":"user","content":"Say hello."}],"max_tokens":32}'
check() { # name url model
    local out code
    out="$work/check-$1.txt"
    code="$(curl -sS -o "$out" -D "$out.headers" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $BENCH_KEY" -d "${body/MODEL/$3}" "$2" 2>&1 || true)"
    if [[ "$code" == 200 ]] && grep -q '"choices"' "$out"; then
        return 0
    fi
    echo "HTTP $code: $(head -c 300 "$out" 2>/dev/null)"
    return 1
}
answer_headers() { # name: the headers that tell who answered
    grep -i -E '^x-(llm-fallback|litellm-(model-api-base|attempted)|attempts)' "$work/check-$1.txt.headers" |
        tr -d '\r' | tr '\n' ' ' || true
}
url_nginx="http://127.0.0.1:$p_ok/v1/chat/completions"
url_gateway="http://127.0.0.1:$p_gw/v1/chat/completions"
url_litellm="http://127.0.0.1:$p_lite/v1/chat/completions"
url_proxy="http://127.0.0.1:$p_proxy/v1/chat/completions"
# shellcheck disable=SC2034 # read through url_of/model_of
model_nginx=bench model_gateway=default model_litellm=bench model_proxy=bench
url_of() { local v="url_$1"; echo "${!v}"; }
model_of() { local v="model_$1"; echo "${!v}"; }
format_of() { case "$1" in messages_*) echo anthropic ;; *) echo openai ;; esac; }

if ! why="$(check nginx "$url_nginx" bench)"; then
    warn "nginx does not answer the fixed completion: $why"
    exit 1
fi
if [[ -z "$gateway_reason" ]]; then
    if why="$(check gateway "$url_gateway" default)"; then
        echo "   gateway's answer: $(head -c 160 "$work/check-gateway.txt")... headers: $(answer_headers gateway)" >&2
    else
        gateway_reason="POST /v1/chat/completions (model default) failed: $why"
    fi
fi
[[ -n "$gateway_reason" ]] && put gateway.unavailable "$gateway_reason"
if [[ -z "$(get litellm.unavailable)" ]]; then
    if ! why="$(check litellm "$url_litellm" bench)"; then
        tail -n 20 "$work/litellm.log" >&2
        put litellm.unavailable "POST /v1/chat/completions failed: $why"
    fi
fi

targets=(nginx)
# The reference: nginx's own proxy_pass in front of the same upstream (keep-alive), what a fast C proxy adds here.
if check proxy "$url_proxy" bench >/dev/null; then targets+=(proxy); else put proxy.unavailable "nginx proxy_pass did not answer"; fi
[[ -z "$(get gateway.unavailable)" ]] && targets+=(gateway)
# The Anthropic surface: passthrough (Anthropic client, Anthropic provider) and translated (Anthropic client, OpenAI
# provider), each compared with the OpenAI surface (gateway) in the same run.
# shellcheck disable=SC2034 # read through url_of/model_of
url_messages_pass="http://127.0.0.1:$p_gw/v1/messages" model_messages_pass=anthropic
# shellcheck disable=SC2034
url_messages_xlat="http://127.0.0.1:$p_gw/v1/messages" model_messages_xlat=default
if [[ -z "$(get gateway.unavailable)" ]]; then
    for t in messages_pass messages_xlat; do
        out="$work/check-$t.txt"
        code="$(curl -sS -o "$out" -w '%{http_code}' --max-time 30 -H 'Content-Type: application/json' \
            -H "x-api-key: $BENCH_KEY" -H 'anthropic-version: 2023-06-01' \
            -d "{\"model\":\"$(model_of "$t")\",\"max_tokens\":32,\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}" \
            "$(url_of "$t")" 2>&1 || true)"
        if [[ "$code" == 200 ]] && grep -q '"type":"message"' "$out"; then
            targets+=("$t")
        else
            put "$t.unavailable" "POST /v1/messages (model $(model_of "$t")) answered HTTP $code: $(head -c 200 "$out" 2>/dev/null)"
        fi
    done
fi
[[ -z "$(get litellm.unavailable)" ]] && targets+=(litellm)
has() { [[ " ${targets[*]} " == *" $1 "* ]]; }
log "Targets: ${targets[*]}"

if has gateway; then put gateway.rss.idle "$(rss "$gw_pid")"; fi
if has litellm; then put litellm.rss.idle "$(rss "$lite_pid")"; fi

# ---------------------------------------------------------------------------------------------------------------
# Measurements

# run_wrk KEY URL MODEL DELAY_MS WRK-OPTIONS...: runs wrk with post.lua and stores its RESULT line under KEY.
run_wrk() {
    local key="$1" url="$2" model="$3" delay="$4"
    shift 4
    local raw="$work/wrk-${key//./-}.txt"
    BENCH_MODEL="$model" BENCH_DELAY_MS="$delay" BENCH_FORMAT="$(format_of "${key%%.*}")" \
        wrk --timeout 30s -s "$here/post.lua" "$@" "$url" >"$raw" 2>&1 || true
    local line
    line="$(grep -m1 '^RESULT ' "$raw" || true)"
    if [[ -z "$line" ]]; then
        warn "$key: wrk printed no result: $(head -c 300 "$raw")"
        return 0
    fi
    local kv
    for kv in ${line#RESULT }; do put "$key.${kv%%=*}" "${kv#*=}"; done
    printf '   %-18s %s\n' "$key" "${line#RESULT }" >&2
}


log "Warm-up: ${WARMUP} s per target at c=$CONNS"
for t in "${targets[@]}"; do
    run_wrk "$t.warmup" "$(url_of "$t")" "$(model_of "$t")" 0 -t"$THREADS" -c"$CONNS" -d"${WARMUP}s"
done

log "Latency at concurrency 1: ${DURATION} s per target"
for t in "${targets[@]}"; do
    run_wrk "$t.c1" "$(url_of "$t")" "$(model_of "$t")" 0 -t1 -c1 -d"${DURATION}s"
done

log "Max throughput at c=$CONNS (wrk -t$THREADS): ${DURATION} s per target"
for t in "${targets[@]}"; do
    run_wrk "$t.tput" "$(url_of "$t")" "$(model_of "$t")" 0 -t"$THREADS" -c"$CONNS" -d"${DURATION}s"
done

log "p99 at a paced $RATE req/s (or 80% of the target's max, if lower): ${DURATION} s per target"
for t in "${targets[@]}"; do
    tput="$(get "$t.tput.rps")"
    p50="$(get "$t.c1.p50_us")"
    read -r target conns delay < <(python3 -c '
import math, sys
rate, tput, p50 = float(sys.argv[1]), float(sys.argv[2] or 0), float(sys.argv[3] or 0)
target = rate if tput <= 0 or 0.8 * tput >= rate else math.floor(0.8 * tput)
target = max(target, 1)
conns = max(1, math.ceil(target / 40))              # each connection paced at about 40 req/s
delay = max(0.0, conns * 1000.0 / target - p50 / 1000.0)
print(int(target), conns, round(delay, 2))' "$RATE" "$tput" "$p50")
    put "$t.rate.target" "$target"
    echo "   $t: asking $target req/s with $conns connections, mean pause $delay ms" >&2
    run_wrk "$t.rate" "$(url_of "$t")" "$(model_of "$t")" "$delay" -t1 -c"$conns" -d"${DURATION}s"
done

log "Failover at concurrency 1 (model 'failover': primary answers 500, backup nginx): ${DURATION} s per target"
for t in gateway litellm; do
    has "$t" || continue
    if why="$(check "$t-failover" "$(url_of "$t")" failover)"; then
        echo "   $t failover answer's headers: $(answer_headers "$t-failover")" >&2
        run_wrk "$t.failover" "$(url_of "$t")" failover 0 -t1 -c1 -d"${DURATION}s"
    else
        put "$t.failover.unavailable" "the failover chain did not answer: $why"
    fi
done
if has litellm; then put litellm.rss.after_runs "$(rss "$lite_pid")"; fi

if has gateway; then
    log "Sustained run for memory: ${SUSTAIN} s at c=$CONNS, RSS sampled every 5 s"
    put gateway.rss.before_sustain "$(rss "$gw_pid")"
    series="$(rss "$gw_pid")"
    run_wrk gateway.sustain "$url_gateway" default 0 -t"$THREADS" -c"$CONNS" -d"${SUSTAIN}s" &
    wrk_job=$!
    max_rss="$(rss "$gw_pid")"
    while kill -0 "$wrk_job" 2>/dev/null; do
        sleep 5
        kill -0 "$wrk_job" 2>/dev/null || break
        value="$(rss "$gw_pid")"
        series="$series $value"
        max_rss="$(python3 -c 'import sys; print(max(float(x) for x in sys.argv[1:] if x != "n/a"))' "$max_rss" "$value")"
    done
    wait "$wrk_job" || true
    sleep 1
    put gateway.rss.after_sustain "$(rss "$gw_pid")"
    put gateway.rss.sustain_max "$max_rss"
    put gateway.rss.sustain_series "$(echo "$series" | tr ' ' ',')"
fi

# run_streams KEY PORT MODEL PID
run_streams() {
    local key="$1" raw="$work/streams-$1.txt"
    python3 "$here/streams.py" --port "$2" --model "$3" -n "$STREAMS" --pid "$4" --open-timeout 30 --hold 5 \
        --stats-url "http://127.0.0.1:$p_slow/stats" >"$raw" 2>&1 || true
    local line kv
    line="$(grep -m1 '^RESULT ' "$raw" || true)"
    if [[ -z "$line" ]]; then
        put "$key.streams.skipped" "the stream client failed: $(tail -c 300 "$raw" | tr '\n' ' ')"
        return 0
    fi
    for kv in ${line#RESULT }; do put "$key.streams.${kv%%=*}" "${kv#*=}"; done
    printf '   %-18s %s\n' "$key" "${line#RESULT }" >&2
}
if ((STREAMS > 0)); then
    if has gateway; then
        log "$STREAMS concurrent streams through the gateway (chain 'slow')"
        run_streams gateway "$p_gw" slow "$gw_pid"
    fi
    if has litellm; then
        log "$STREAMS concurrent streams through LiteLLM (model 'slow')"
        run_streams litellm "$p_lite" slow "$lite_pid"
    fi
else
    put gateway.streams.skipped "BENCH_STREAMS=0"
    put litellm.streams.skipped "BENCH_STREAMS=0"
fi

# ---------------------------------------------------------------------------------------------------------------
# The table

echo
echo "Gateway benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; load average at the start $(get config.load_start), at the end $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Upstream: nginx $("$NGINX" -v 2>&1 | sed 's#.*/##') (worker_processes $NGINX_WORKERS) answering a fixed chat completion;" \
    "load: wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}'); ${DURATION} s per measurement;" \
    "LiteLLM $("$VENV/bin/pip" show litellm 2>/dev/null | sed -n 's/^Version: //p') with --num_workers 1; both proxies require one API key."
echo
python3 "$here/report.py" "$results"
