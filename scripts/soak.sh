#!/usr/bin/env bash
# The chaos soak (issue 12, item 4): the release gateway (`llm-fallback serve`) for $SOAK_DURATION seconds (10
# minutes by default) at no less than 1,000 requests/s, chat and `stream: true` mixed, against upstreams that
# inject every fault of the catalogue at random, and checks of what comes out.
#
#   - upstreams: $SOAK_UPSTREAMS processes of scripts/soak/chaos_upstream.py (Python asyncio streams, standard
#     library only), OpenAI chat completions streamed or not. Per request they draw a fault: 429 (Retry-After short,
#     negative, garbage; absurd values like 1e30 on the `delta` chain's primary), 500, 502, 503, 400, 401, HTML error
#     pages; hangs (no answer; a head and then nothing); resets; clean closes; streams cut (closed, cleanly ended,
#     reset), stalled, with garbage or truncated events, an error event or an early [DONE]; garbage, non-JSON,
#     truncated and wrongly shaped JSON bodies; bodies shorter than their Content-Length; huge header values and
#     thousands of headers (over the client's limits, and healthy answers just under them); bodies and streams over
#     the gateway's 32 MiB response limit; a 17 MiB stream without a newline. Healthy answers (most of them) carry a
#     fixed sentence with the request's marker. And an outage schedule: one upstream at a time is down for 90 s
#     every 150 s from 120 s on (connections refused, or 503 to everything), rotating over the upstreams.
#     Their capacity alone is measured first (wrk against their healthy profile for $SOAK_CAPACITY_SECONDS s).
#   - the gateway: scripts/soak/gateway.yaml.in, four chains (ordered, round robin, latency, weighted) of 2-3
#     providers over those upstreams, attempt timeout 1 s, first token and stall limits 1 s, retries, breakers; one
#     client key required.
#   - the load: wrk with scripts/soak/soak.lua, $SOAK_CONNS connections paced at $SOAK_RATE requests/s in all, which
#     checks every answer: a 200 chat carries the complete scripted text; a stream ends complete (the text,
#     finish_reason, then `data: [DONE]` last) or with an error event and no [DONE]; any other status is 429/503
#     (with Retry-After), 502 or 504 with an OpenAI error body, or the 400 the upstream injected.
#   - the watch: scripts/soak/monitor.py samples the gateway's VmRSS and open fds every $SOAK_INTERVAL s.
#
# At the end the gateway gets SIGTERM and must exit 0. scripts/soak/report.py prints the figures and the checks:
# the process never died, RSS and fds flat within 10% after the warm-up, zero truncated or wrong successes, every
# error status honest, no request past wrk's timeout, the rate achieved >= $SOAK_MIN_RATE. Exits 1 if any fails.
#
# Usage: scripts/soak.sh                      # 10 minutes
#        SOAK_DURATION=60 scripts/soak.sh     # the short run, to iterate
#
# Environment (all optional):
#   SOAK_DURATION=600     seconds of load               SOAK_WARMUP=60 (a quarter of a shorter run)
#   SOAK_RATE=1500        requests/s asked (paced)      SOAK_MIN_RATE=1000   the rate that must be achieved
#   SOAK_CONNS=512        wrk connections               SOAK_THREADS=1       wrk threads
#   SOAK_STREAM_SHARE=0.15 share of streams         SOAK_INTERVAL=5      seconds between samples
#                         (a stream costs the gateway about two chats' CPU)
#   SOAK_UPSTREAMS=3      chaos upstream processes      SOAK_SEED=1          the upstreams' random seed (+ index)
#   SOAK_DOWN_FIRST=120   when the first outage starts  SOAK_DOWN_FOR=90     seconds each outage lasts
#   SOAK_DOWN_EVERY=150   seconds between outage starts (runs under 300 s: D/4 + D/6, D/8, D/6); none in the last
#                         minute (D/6), whose samples are the end of the flatness check
#   SOAK_CAPACITY_SECONDS=5   the upstreams' capacity measurement (0: skip)
#   SOAK_LOG_LEVEL=critical  the gateway's --log-level (error logs every failed request: ~10% of its CPU here);
#                         a crash is seen either way (the runtime writes to stderr, kept in gateway.log)
#   SOAK_DISABLE_FAULTS=  faults to leave out, comma-separated (names in chaos_upstream.py), to look past a finding
#   GATEWAY_BIN=path      an already built llm-fallback (skips the build)
#   SOAK_SKIP_BUILD=1     use .build/release/llm-fallback as it is
#   SOAK_KEEP=1           keep the work folder (configs, logs, samples, violations, upstream request logs)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONDONTWRITEBYTECODE=1
here="$root/scripts/soak"

DURATION="${SOAK_DURATION:-600}"
RATE="${SOAK_RATE:-1500}"
MIN_RATE="${SOAK_MIN_RATE:-1000}"
CONNS="${SOAK_CONNS:-512}"
THREADS="${SOAK_THREADS:-1}"
STREAM_SHARE="${SOAK_STREAM_SHARE:-0.15}"
INTERVAL="${SOAK_INTERVAL:-5}"
UPSTREAMS="${SOAK_UPSTREAMS:-3}"
SEED="${SOAK_SEED:-1}"
CAPACITY_SECONDS="${SOAK_CAPACITY_SECONDS:-5}"
LOG_LEVEL="${SOAK_LOG_LEVEL:-critical}"
DISABLE_FAULTS="${SOAK_DISABLE_FAULTS:-}"
# The flatness check compares the medians of the first WINDOW seconds after the warm-up and of the last WINDOW
# seconds of the load; the outages fall between the two.
if ((DURATION >= 300)); then
    WARMUP="${SOAK_WARMUP:-60}"
    WINDOW=60
    DOWN_FIRST="${SOAK_DOWN_FIRST:-$((WARMUP + WINDOW))}"
    DOWN_EVERY="${SOAK_DOWN_EVERY:-150}"
    DOWN_FOR="${SOAK_DOWN_FOR:-90}"
else
    WARMUP="${SOAK_WARMUP:-$((DURATION / 4))}"
    WINDOW=$((DURATION / 6))
    DOWN_FIRST="${SOAK_DOWN_FIRST:-$((WARMUP + WINDOW))}"
    DOWN_EVERY="${SOAK_DOWN_EVERY:-$((DURATION / 6))}"
    DOWN_FOR="${SOAK_DOWN_FOR:-$((DURATION / 8))}"
fi
export SOAK_KEY="soak-client-key"
CHAINS="alpha,beta,gamma,delta"

log() { printf '== %s\n' "$*" >&2; }
warn() { printf '!! %s\n' "$*" >&2; }

((UPSTREAMS >= 3)) || { warn "SOAK_UPSTREAMS must be at least 3 (the chains use three)"; exit 2; }

# ---------------------------------------------------------------------------------------------------------------
# Installs (idempotent: only what is missing)

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
    log "Installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { as_root apt-get update -qq && as_root apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
# The helpers need only Python's standard library (3.8 or later).
python3 -c 'import sys; sys.exit(sys.version_info < (3, 8))' || { warn "python3 is older than 3.8"; exit 2; }

# ---------------------------------------------------------------------------------------------------------------
# The gateway binary

if [[ -n "${GATEWAY_BIN:-}" ]]; then
    gateway_bin="$GATEWAY_BIN"
elif [[ "${SOAK_SKIP_BUILD:-0}" == 1 ]]; then
    gateway_bin="$root/.build/release/llm-fallback"
else
    log "Building llm-fallback (release): swift build -c release --product llm-fallback"
    build_log="$(mktemp -t soak-build.XXXXXX.log)"
    build_start=$SECONDS
    if (cd "$root" && swift build -c release --product llm-fallback) >"$build_log" 2>&1; then
        gateway_bin="$root/.build/release/llm-fallback"
        log "built in $((SECONDS - build_start)) s"
        rm -f "$build_log"
    else
        tail -n 15 "$build_log" >&2
        warn "the release build failed (log: $build_log)"
        exit 1
    fi
fi
if [[ ! -x "$gateway_bin" ]] || [[ "$("$gateway_bin" serve --help 2>&1 || true)" != *"llm-fallback serve"* ]]; then
    warn "no gateway binary with 'serve' at $gateway_bin"
    exit 1
fi

# ---------------------------------------------------------------------------------------------------------------
# Work folder, clean-up

work="$(mktemp -d -t soak.XXXXXX)"
results="$work/results.txt"
: >"$results"
put() { printf '%s=%s\n' "$1" "$2" >>"$results"; }

pids=()
stop_all() {
    local status=$?
    local pid i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid="${pids[$i]}"
        kill -0 "$pid" 2>/dev/null || continue
        # Each was started with setsid, so its process group is its own: stop it and its children.
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
    if [[ "${SOAK_KEEP:-0}" == 1 || $status -ne 0 ]]; then
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
forget() { # pid: no longer stopped by stop_all (it was stopped and waited for)
    local keep=() p
    for p in "${pids[@]}"; do [[ "$p" == "$1" ]] || keep+=("$p"); done
    pids=("${keep[@]}")
}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

read -r -a ports < <(python3 -c '
import socket, sys
n = int(sys.argv[1])
socks = [socket.socket() for _ in range(n)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()' "$((UPSTREAMS + 1))")
p_gw="${ports[0]}"
up_ports=("${ports[@]:1}")

wait_http() { # pid url seconds: until url answers (curl), while pid lives
    local pid="$1" url="$2" limit="$3" t0=$SECONDS
    while ((SECONDS - t0 < limit)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 2 -H "Authorization: Bearer $SOAK_KEY" "$url" 2>/dev/null && return 0
        sleep 0.25
    done
    return 1
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
put config.duration "$DURATION"
put config.rate "$RATE"
put config.min_rate "$MIN_RATE"
put config.interval "$INTERVAL"
put config.load_start "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------------------------
# The chaos upstreams, and what they can do alone

up_pids=()
for i in "${!up_ports[@]}"; do
    start "upstream-$((i + 1))" python3 "$here/chaos_upstream.py" --port "${up_ports[$i]}" --seed "$((SEED + i))" \
        --name "u$((i + 1))" --log "$work/upstream-$((i + 1))-requests.log" --disable "$DISABLE_FAULTS"
    up_pids+=("$started_pid")
done
for i in "${!up_ports[@]}"; do
    wait_http "${up_pids[$i]}" "http://127.0.0.1:${up_ports[$i]}/v1/models" 20 ||
        { cat "$work/upstream-$((i + 1)).log" >&2; exit 1; }
done
log "Chaos upstreams on :${up_ports[*]} (seeds $SEED..$((SEED + UPSTREAMS - 1)))"

if ((CAPACITY_SECONDS > 0)); then
    log "The upstreams' capacity alone: wrk on their healthy profile, all at once, ${CAPACITY_SECONDS} s"
    cap_jobs=()
    for i in "${!up_ports[@]}"; do
        SOAK_PATH=/healthy/v1/chat/completions SOAK_MARKER_PREFIX=cap SOAK_THREADS=1 SOAK_CONNS=32 SOAK_STREAM_SHARE="$STREAM_SHARE" \
            SOAK_VIOLATIONS="$work/capacity-violations-$i" \
            wrk -t1 -c32 -d"${CAPACITY_SECONDS}s" --timeout 10s -s "$here/soak.lua" "http://127.0.0.1:${up_ports[$i]}" \
            >"$work/capacity-$i.txt" 2>&1 &
        cap_jobs+=($!)
    done
    for job in "${cap_jobs[@]}"; do wait "$job" || true; done
    capacity="$(cat "$work"/capacity-*.txt | python3 -c '
import sys
total, checked, bad = 0.0, 0, 0
for line in sys.stdin:
    if line.startswith("RESULT "):
        total += float(dict(kv.split("=", 1) for kv in line.split()[1:])["rps"])
    elif line.startswith("COUNT "):
        key, value = line[6:].strip().split("=")
        if key in ("chat_ok", "stream_ok"): checked += int(value)
        if key == "violation": bad += int(value)
print(f"{total:.0f} {checked} {bad}")')"
    read -r cap_rps cap_checked cap_bad <<<"$capacity"
    put upstream.capacity_rps "$cap_rps"
    echo "   $UPSTREAMS upstreams together: $cap_rps req/s (stream share $STREAM_SHARE; $cap_checked answers checked, $cap_bad bad)" >&2
    for port in "${up_ports[@]}"; do curl -fsS -o /dev/null -X POST "http://127.0.0.1:$port/control/reset"; done
fi

# ---------------------------------------------------------------------------------------------------------------
# The gateway

sed -e "s#@U1@#${up_ports[0]}#g" -e "s#@U2@#${up_ports[1]}#g" -e "s#@U3@#${up_ports[2]}#g" \
    -e "s#@GATEWAY_PORT@#$p_gw#g" -e "s#@KEY@#$SOAK_KEY#g" "$here/gateway.yaml.in" >"$work/gateway.yaml"
log "Starting the gateway on :$p_gw: $gateway_bin serve --config $work/gateway.yaml --log-level $LOG_LEVEL"
start gateway "$gateway_bin" serve --config "$work/gateway.yaml" --log-level "$LOG_LEVEL"
gw_pid=$started_pid
if ! wait_http "$gw_pid" "http://127.0.0.1:$p_gw/health" 30; then
    tail -n 20 "$work/gateway.log" >&2
    warn "the gateway did not answer GET /health within 30 s"
    exit 1
fi
code="$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"model":"alpha","messages":[]}' \
    "http://127.0.0.1:$p_gw/v1/chat/completions")"
[[ "$code" == 401 ]] || { warn "a request without the key got $code, not 401"; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
# The soak

outages=()
desc=()
t=$DOWN_FIRST
k=0
quiet_end=$((DURATION - WINDOW - 5))
while ((t + DOWN_FOR <= quiet_end)); do
    idx=$((k % UPSTREAMS))
    mode=refuse
    ((k % 2)) && mode=503
    outages+=(--down "$t:$DOWN_FOR:${up_ports[$idx]}:$mode")
    desc+=("u$((idx + 1)) $mode ${t}-$((t + DOWN_FOR)) s")
    t=$((t + DOWN_EVERY))
    k=$((k + 1))
done
put config.outages "$(IFS=';'; echo "${desc[*]}" | sed 's/;/; /g')"

log "Soak: ${DURATION} s, $CONNS connections, $RATE req/s asked (stream share $STREAM_SHARE), chains $CHAINS"
log "Outages: ${desc[*]:-none}"
monitor_args=(--pid "$gw_pid" --duration "$((DURATION + 2))" --interval "$INTERVAL" --out "$work/samples.csv"
    --events "$work/events.log")
for port in "${up_ports[@]}"; do monitor_args+=(--upstream "$port"); done
start monitor python3 "$here/monitor.py" "${monitor_args[@]}" "${outages[@]}"
monitor_pid=$started_pid

SOAK_CHAINS="$CHAINS" SOAK_STREAM_SHARE="$STREAM_SHARE" SOAK_RATE="$RATE" SOAK_THREADS="$THREADS" SOAK_CONNS="$CONNS" \
    SOAK_VIOLATIONS="$work/violations" \
    wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 20s -s "$here/soak.lua" "http://127.0.0.1:$p_gw" \
    >"$work/wrk.txt" 2>&1 &
wrk_job=$!
pids+=("$wrk_job")
t0=$SECONDS
while kill -0 "$wrk_job" 2>/dev/null; do
    sleep 10
    kill -0 "$wrk_job" 2>/dev/null || break
    last="$(tail -n 1 "$work/samples.csv" 2>/dev/null || true)"
    IFS=, read -r st alive rss fds threads cpu ureq <<<"$last"
    printf '   %4d s: gateway alive=%s rss=%s KiB fds=%s threads=%s cpu=%s s; upstream requests %s; load %s\n' \
        "$((SECONDS - t0))" "${alive:-?}" "${rss:-?}" "${fds:-?}" "${threads:-?}" "${cpu:-?}" "${ureq:-?}" \
        "$(cut -d' ' -f1 /proc/loadavg)" >&2
done
wait "$wrk_job" || true
forget "$wrk_job"
cat "$work/events.log" 2>/dev/null | sed 's/^/   /' >&2 || true

# Drained: every request the gateway still had (hangs) is past its 6 s request timeout.
sleep 8
if kill -0 "$gw_pid" 2>/dev/null; then
    put gateway.alive_at_end 1
    put gateway.rss_after_drain "$(awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status")"
    put gateway.fds_after_drain "$(ls "/proc/$gw_pid/fd" | wc -l)"
else
    put gateway.alive_at_end 0
fi
kill -TERM "$monitor_pid" 2>/dev/null || true
wait "$monitor_pid" 2>/dev/null || true
forget "$monitor_pid"

cpu_of() { awk '{ split($0, a, ") "); split(a[2], f, " "); printf "%.1f", (f[12] + f[13]) / 100 }' "/proc/$1/stat" 2>/dev/null || echo "?"; }
up_cpu=()
for pid in "${up_pids[@]}"; do up_cpu+=("$(cpu_of "$pid")"); done
put upstream.cpu_s "$(IFS=+; echo "${up_cpu[*]}")"
for i in "${!up_ports[@]}"; do
    curl -fsS -o "$work/upstream-$((i + 1))-stats.json" "http://127.0.0.1:${up_ports[$i]}/stats" || true
done

# SIGTERM: the gateway must shut down and exit 0.
if kill -0 "$gw_pid" 2>/dev/null; then
    kill -TERM "$gw_pid"
    for ((i = 0; i < 150; i++)); do kill -0 "$gw_pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$gw_pid" 2>/dev/null && { warn "the gateway did not exit within 30 s of SIGTERM"; kill -KILL "$gw_pid"; }
fi
set +e
wait "$gw_pid"
put gateway.exit_status "$?"
set -e
forget "$gw_pid"
put gateway.crash_lines "$(grep -c -E 'Fatal error|Segmentation fault|Illegal instruction|SIGSEGV|SIGILL|SIGABRT|Current stack trace|Crash' "$work/gateway.log" || true)"

# ---------------------------------------------------------------------------------------------------------------
# The figures

echo
echo "Chaos soak, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores; load average at the start $(grep -m1 '^config.load_start=' "$results" | cut -d= -f2), at the end $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Gateway: $gateway_bin, chains $CHAINS over $UPSTREAMS chaos upstreams (capacity alone $(grep -m1 '^upstream.capacity_rps=' "$results" | cut -d= -f2 || echo '?') req/s);" \
    "load: wrk $(wrk -v 2>&1 | head -n1 | awk '{print $2}') -t$THREADS -c$CONNS, stream share $STREAM_SHARE${DISABLE_FAULTS:+; faults left out: $DISABLE_FAULTS}."
echo
stats_args=()
for i in "${!up_ports[@]}"; do stats_args+=(--upstream-stats "$work/upstream-$((i + 1))-stats.json"); done
set +e
python3 "$here/report.py" --results "$results" --wrk "$work/wrk.txt" --samples "$work/samples.csv" --warmup "$WARMUP" \
    --window "$WINDOW" \
    "${stats_args[@]}"
verdict=$?
set -e
if compgen -G "$work/violations-*.txt" >/dev/null; then
    echo
    echo "First violations (all in $work/violations-*.txt; the upstreams' draws per marker in $work/upstream-*-requests.log):"
    head -c 6000 "$(ls "$work"/violations-*.txt | head -n1)"
    SOAK_KEEP=1
fi
((verdict == 0)) || SOAK_KEEP=1
exit "$verdict"
